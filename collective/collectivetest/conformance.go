package collectivetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

// MakeTransports builds a fresh group of n connected transports, rank i
// at index i. The suite closes them; register any other cleanup with t.
type MakeTransports func(t *testing.T, n int) []collective.Transport

// conformanceWait bounds every wait in the suite: a hang fails the test.
const conformanceWait = 20 * time.Second

// TestTransport runs the collective.Transport conformance suite against
// the transports mk builds: ranks and sizes, per-tag ordering, tag
// independence, zero-length messages, size mismatches, concurrent use,
// all-pairs traffic, 8 MiB messages and Close semantics.
func TestTransport(t *testing.T, mk MakeTransports) {
	t.Run("RankSize", func(t *testing.T) { testRankSize(t, mk) })
	t.Run("OrderPerTag", func(t *testing.T) { testOrder(t, mk) })
	t.Run("TagsIndependent", func(t *testing.T) { testTagsIndependent(t, mk) })
	t.Run("ZeroLength", func(t *testing.T) { testZeroLength(t, mk) })
	t.Run("SizeMismatch", func(t *testing.T) { testSizeMismatch(t, mk) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, mk) })
	t.Run("AllPairs", func(t *testing.T) { testAllPairs(t, mk) })
	t.Run("Large", func(t *testing.T) { testLarge(t, mk) })
	t.Run("CloseFailsPending", func(t *testing.T) { testClosePending(t, mk) })
	t.Run("CloseThenUse", func(t *testing.T) { testCloseThenUse(t, mk) })
}

func group(t *testing.T, mk MakeTransports, n int) []collective.Transport {
	t.Helper()
	ts := mk(t, n)
	if len(ts) != n {
		t.Fatalf("made %d transports, want %d", len(ts), n)
	}
	t.Cleanup(func() {
		for _, tr := range ts {
			tr.Close()
		}
	})
	return ts
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), conformanceWait)
	t.Cleanup(cancel)
	return ctx
}

func mustWait(t *testing.T, ctx context.Context, what string, r collective.Request, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: start: %v", what, err)
	}
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func pattern(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 77))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func testRankSize(t *testing.T, mk MakeTransports) {
	for _, n := range []int{1, 2, 3} {
		ts := group(t, mk, n)
		for i, tr := range ts {
			if tr.Rank() != i || tr.Size() != n {
				t.Errorf("transport %d of %d: Rank %d Size %d", i, n, tr.Rank(), tr.Size())
			}
		}
	}
}

func testOrder(t *testing.T, mk MakeTransports) {
	ts := group(t, mk, 2)
	ctx := waitCtx(t)
	const count = 64
	const tag = collective.Tag(7)
	msgs := make([][]byte, count)
	for i := range msgs {
		msgs[i] = pattern(uint64(i), 1+i*37%500)
	}
	// Half the receives are posted before the sends, half after.
	var recvs []collective.Request
	got := make([][]byte, count)
	for i := 0; i < count/2; i++ {
		got[i] = make([]byte, len(msgs[i]))
		r, err := ts[1].Irecv(0, tag, got[i])
		if err != nil {
			t.Fatalf("irecv %d: %v", i, err)
		}
		recvs = append(recvs, r)
	}
	var sends []collective.Request
	for i := range msgs {
		s, err := ts[0].Isend(1, tag, msgs[i])
		if err != nil {
			t.Fatalf("isend %d: %v", i, err)
		}
		sends = append(sends, s)
	}
	for i := count / 2; i < count; i++ {
		got[i] = make([]byte, len(msgs[i]))
		r, err := ts[1].Irecv(0, tag, got[i])
		if err != nil {
			t.Fatalf("irecv %d: %v", i, err)
		}
		recvs = append(recvs, r)
	}
	for i, r := range recvs {
		mustWait(t, ctx, fmt.Sprintf("receive %d", i), r, nil)
		if !bytes.Equal(got[i], msgs[i]) {
			t.Fatalf("message %d arrived out of order or corrupted", i)
		}
	}
	for i, s := range sends {
		mustWait(t, ctx, fmt.Sprintf("send %d", i), s, nil)
	}
}

func testTagsIndependent(t *testing.T, mk MakeTransports) {
	ts := group(t, mk, 2)
	ctx := waitCtx(t)
	a, b := []byte("first, tag 1"), []byte("second, tag 2")
	sa, err := ts[0].Isend(1, 1, a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ts[0].Isend(1, 2, b)
	if err != nil {
		t.Fatal(err)
	}
	// Receive tag 2 first: it must not wait behind tag 1.
	gb := make([]byte, len(b))
	r, err := ts[1].Irecv(0, 2, gb)
	mustWait(t, ctx, "receive tag 2 before tag 1", r, err)
	ga := make([]byte, len(a))
	r, err = ts[1].Irecv(0, 1, ga)
	mustWait(t, ctx, "receive tag 1", r, err)
	mustWait(t, ctx, "send tag 1", sa, nil)
	mustWait(t, ctx, "send tag 2", sb, nil)
	if !bytes.Equal(ga, a) || !bytes.Equal(gb, b) {
		t.Fatalf("got %q and %q, want %q and %q", ga, gb, a, b)
	}
	// Large tags (top bits set) are tags like any other.
	for _, tag := range []collective.Tag{1 << 62, 1<<63 | 5, ^collective.Tag(0)} {
		msg := []byte{byte(tag), 1, 2}
		got := make([]byte, 3)
		r, err := ts[0].Irecv(1, tag, got)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ts[1].Isend(0, tag, msg)
		mustWait(t, ctx, fmt.Sprintf("send tag %#x", uint64(tag)), s, err)
		mustWait(t, ctx, fmt.Sprintf("receive tag %#x", uint64(tag)), r, nil)
		if !bytes.Equal(got, msg) {
			t.Fatalf("tag %#x: got %v want %v", uint64(tag), got, msg)
		}
	}
}

func testZeroLength(t *testing.T, mk MakeTransports) {
	ts := group(t, mk, 2)
	ctx := waitCtx(t)
	for i := range 3 {
		r, err := ts[1].Irecv(0, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A zero-length receive still waits for its message.
		time.Sleep(10 * time.Millisecond)
		if done, err := r.Test(); done {
			t.Fatalf("zero-length receive %d completed before any send (err %v)", i, err)
		}
		s, err := ts[0].Isend(1, 3, []byte{})
		mustWait(t, ctx, "zero-length send", s, err)
		mustWait(t, ctx, "zero-length receive", r, nil)
	}
	// A zero-length message followed by data on the same tag.
	s, err := ts[0].Isend(1, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := ts[0].Isend(1, 4, []byte{9})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ts[1].Irecv(0, 4, []byte{})
	mustWait(t, ctx, "zero-length receive", r, err)
	one := []byte{0}
	r, err = ts[1].Irecv(0, 4, one)
	mustWait(t, ctx, "receive after zero-length", r, err)
	mustWait(t, ctx, "send", s, nil)
	mustWait(t, ctx, "send", s2, nil)
	if one[0] != 9 {
		t.Fatalf("got %d want 9", one[0])
	}
}

func testSizeMismatch(t *testing.T, mk MakeTransports) {
	ts := group(t, mk, 2)
	ctx := waitCtx(t)
	for i, c := range []struct{ send, recv int }{{10, 8}, {8, 16}, {0, 4}, {4, 0}} {
		tag := collective.Tag(100 + i)
		r, err := ts[1].Irecv(0, tag, make([]byte, c.recv))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts[0].Isend(1, tag, make([]byte, c.send)); err != nil {
			t.Fatalf("send %d bytes: %v", c.send, err)
		}
		err = r.Wait(ctx)
		if !errors.Is(err, collective.ErrSizeMismatch) {
			t.Errorf("%d-byte message into %d-byte receive: got %v, want ErrSizeMismatch", c.send, c.recv, err)
		}
	}
}

func testConcurrent(t *testing.T, mk MakeTransports) {
	const n, perTag, tags = 3, 40, 8
	ts := group(t, mk, n)
	ctx := waitCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n*n*tags)
	for src := 0; src < n; src++ {
		for dst := 0; dst < n; dst++ {
			if src == dst {
				continue
			}
			for tag := 0; tag < tags; tag++ {
				wg.Add(2)
				go func() {
					defer wg.Done()
					for i := range perTag {
						msg := pattern(uint64(src<<24|dst<<16|tag<<8|i), 1+i*13%300)
						s, err := ts[src].Isend(dst, collective.Tag(tag), msg)
						if err == nil {
							err = s.Wait(ctx)
						}
						if err != nil {
							errs <- fmt.Errorf("send %d->%d tag %d #%d: %w", src, dst, tag, i, err)
							return
						}
					}
				}()
				go func() {
					defer wg.Done()
					for i := range perTag {
						want := pattern(uint64(src<<24|dst<<16|tag<<8|i), 1+i*13%300)
						got := make([]byte, len(want))
						r, err := ts[dst].Irecv(src, collective.Tag(tag), got)
						if err == nil {
							err = r.Wait(ctx)
						}
						if err != nil {
							errs <- fmt.Errorf("receive %d->%d tag %d #%d: %w", src, dst, tag, i, err)
							return
						}
						if !bytes.Equal(got, want) {
							errs <- fmt.Errorf("receive %d->%d tag %d #%d: wrong bytes", src, dst, tag, i)
							return
						}
					}
				}()
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testAllPairs(t *testing.T, mk MakeTransports) {
	const n = 4
	ts := group(t, mk, n)
	ctx := waitCtx(t)
	var recvs []collective.Request
	var sends []collective.Request
	got := map[[2]int][]byte{}
	for dst := 0; dst < n; dst++ {
		for src := 0; src < n; src++ {
			if src == dst {
				continue
			}
			b := make([]byte, 100+src*10+dst)
			got[[2]int{src, dst}] = b
			r, err := ts[dst].Irecv(src, 42, b)
			if err != nil {
				t.Fatal(err)
			}
			recvs = append(recvs, r)
		}
	}
	for src := 0; src < n; src++ {
		for dst := 0; dst < n; dst++ {
			if src != dst {
				s, err := ts[src].Isend(dst, 42, pattern(uint64(src*n+dst), 100+src*10+dst))
				if err != nil {
					t.Fatal(err)
				}
				sends = append(sends, s)
			}
		}
	}
	for _, r := range append(recvs, sends...) {
		mustWait(t, ctx, "all pairs", r, nil)
	}
	for k, b := range got {
		if !bytes.Equal(b, pattern(uint64(k[0]*n+k[1]), len(b))) {
			t.Errorf("message %d->%d corrupted", k[0], k[1])
		}
	}
}

func testLarge(t *testing.T, mk MakeTransports) {
	ts := group(t, mk, 2)
	ctx := waitCtx(t)
	msg := pattern(99, 8<<20+3)
	got := make([]byte, len(msg))
	r, err := ts[1].Irecv(0, 5, got)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ts[0].Isend(1, 5, msg)
	mustWait(t, ctx, "send 8 MiB", s, err)
	mustWait(t, ctx, "receive 8 MiB", r, nil)
	if !bytes.Equal(got, msg) {
		t.Fatal("8 MiB message corrupted")
	}
	// And back, both directions at once.
	back := make([]byte, len(msg))
	r1, err := ts[0].Irecv(1, 6, back)
	if err != nil {
		t.Fatal(err)
	}
	got2 := make([]byte, len(msg))
	r2, err := ts[1].Irecv(0, 6, got2)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := ts[1].Isend(0, 6, got)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := ts[0].Isend(1, 6, msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []collective.Request{s1, s2, r1, r2} {
		mustWait(t, ctx, "8 MiB both ways", q, nil)
	}
	if !bytes.Equal(back, msg) || !bytes.Equal(got2, msg) {
		t.Fatal("8 MiB exchange corrupted")
	}
}

func testClosePending(t *testing.T, mk MakeTransports) {
	ts := group(t, mk, 3)
	ctx := waitCtx(t)
	// Rank 1 waits for rank 0 (which never sends); rank 0 waits for
	// rank 1; rank 2 waits for rank 1.
	r1, err := ts[1].Irecv(0, 9, make([]byte, 4))
	if err != nil {
		t.Fatal(err)
	}
	r0, err := ts[0].Irecv(1, 9, make([]byte, 4))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := ts[2].Irecv(1, 9, make([]byte, 4))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := ts[1].Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := r1.Wait(ctx); !errors.Is(err, collective.ErrClosed) {
		t.Errorf("pending receive on the closed rank: got %v, want ErrClosed", err)
	}
	if err := r0.Wait(ctx); !errors.Is(err, collective.ErrPeerLost) {
		t.Errorf("rank 0's pending receive from the closed rank: got %v, want ErrPeerLost", err)
	}
	if err := r2.Wait(ctx); !errors.Is(err, collective.ErrPeerLost) {
		t.Errorf("rank 2's pending receive from the closed rank: got %v, want ErrPeerLost", err)
	}
	// Ranks 0 and 2 still talk.
	got := make([]byte, 2)
	r, err := ts[2].Irecv(0, 10, got)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ts[0].Isend(2, 10, []byte{4, 2})
	mustWait(t, ctx, "send between survivors", s, err)
	mustWait(t, ctx, "receive between survivors", r, nil)
}

func testCloseThenUse(t *testing.T, mk MakeTransports) {
	ts := group(t, mk, 2)
	ctx := waitCtx(t)
	if err := ts[0].Close(); err != nil {
		t.Fatal(err)
	}
	// On the closed rank: an error at the call or at the wait.
	if r, err := ts[0].Isend(1, 1, []byte{1}); err == nil {
		if err := r.Wait(ctx); !errors.Is(err, collective.ErrClosed) {
			t.Errorf("send after close: got %v, want ErrClosed", err)
		}
	} else if !errors.Is(err, collective.ErrClosed) {
		t.Errorf("send after close: got %v, want ErrClosed", err)
	}
	if r, err := ts[0].Irecv(1, 1, make([]byte, 1)); err == nil {
		if err := r.Wait(ctx); !errors.Is(err, collective.ErrClosed) {
			t.Errorf("receive after close: got %v, want ErrClosed", err)
		}
	} else if !errors.Is(err, collective.ErrClosed) {
		t.Errorf("receive after close: got %v, want ErrClosed", err)
	}
	// On the peer: a receive from the closed rank fails (no hang).
	if r, err := ts[1].Irecv(0, 1, make([]byte, 1)); err == nil {
		if err := r.Wait(ctx); !errors.Is(err, collective.ErrPeerLost) {
			t.Errorf("receive from a closed peer: got %v, want ErrPeerLost", err)
		}
	} else if !errors.Is(err, collective.ErrPeerLost) {
		t.Errorf("receive from a closed peer: got %v, want ErrPeerLost", err)
	}
	// Closing twice is harmless.
	ts[0].Close()
}
