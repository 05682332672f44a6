package rdmatransport_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
	"github.com/opennetworks/onetdp/transport/rdmatransport"
)

// TestSizes sends messages of every protocol's sizes, with the receive
// posted before and after the message.
func TestSizes(t *testing.T) {
	tr := fakeGroup(t, 2, nil)
	sizes := []int{0, 1, 64, 4096, 16384, 16385, 65536, 1 << 20, 8 << 20}
	for _, recvFirst := range []bool{true, false} {
		for i, n := range sizes {
			src := pattern(n, byte(i))
			dst := make([]byte, n)
			tag := collective.Tag(1000 + i)
			var rr, sr collective.Request
			if recvFirst {
				rr = mustReq(t)(tr[1].Irecv(0, tag, dst))
				sr = mustReq(t)(tr[0].Isend(1, tag, src))
			} else {
				sr = mustReq(t)(tr[0].Isend(1, tag, src))
				time.Sleep(time.Millisecond)
				rr = mustReq(t)(tr[1].Irecv(0, tag, dst))
			}
			mustWait(t, name("recv %d B", n), rr)
			mustWait(t, name("send %d B", n), sr)
			if !bytes.Equal(src, dst) {
				t.Fatalf("%d B (receive first %v): data differs", n, recvFirst)
			}
		}
	}
	s := tr[0].Stats()
	// 5 sizes up to 16384 eager, 4 above by rendezvous, twice.
	if got := s.EagerSends.Load(); got != 10 {
		t.Errorf("eager sends %d, want 10", got)
	}
	if got := s.RendezvousSends.Load(); got != 8 {
		t.Errorf("rendezvous sends %d, want 8", got)
	}
	if got := tr[1].Stats().RendezvousRecvs.Load(); got != 8 {
		t.Errorf("rendezvous receives %d, want 8", got)
	}
}

// TestBothDirections: both ranks send to each other at once, eager and
// rendezvous, many times (credits flow both ways).
func TestBothDirections(t *testing.T) {
	tr := fakeGroup(t, 2, func(o *rdmatransport.Options) { o.Slots = 8 })
	const rounds = 300
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for me := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other := 1 - me
			for i := range rounds {
				n := []int{8, 3000, 40000}[i%3]
				src := pattern(n, byte(i+me))
				dst := make([]byte, n)
				s, err := tr[me].Isend(other, collective.Tag(i), src)
				if err != nil {
					errs <- err
					return
				}
				r, err := tr[me].Irecv(other, collective.Tag(i), dst)
				if err != nil {
					errs <- err
					return
				}
				if err := errors.Join(wait(t, "s", s), wait(t, "r", r)); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(dst, pattern(n, byte(i+other))) {
					errs <- errors.New("data differs")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestCredits: a sender far ahead of a slow receiver never overruns it:
// every message arrives, in order, while the receiver's slots stay bounded.
func TestCredits(t *testing.T) {
	tr := fakeGroup(t, 2, func(o *rdmatransport.Options) { o.Slots = 8 })
	const n = 400
	sends := make([]collective.Request, n)
	for i := range n {
		sends[i] = mustReq(t)(tr[0].Isend(1, 7, pattern(100, byte(i))))
	}
	time.Sleep(20 * time.Millisecond) // the sender runs out of eager credits
	for i := range n {
		dst := make([]byte, 100)
		mustWait(t, name("recv %d", i), mustReq(t)(tr[1].Irecv(0, 7, dst)))
		if !bytes.Equal(dst, pattern(100, byte(i))) {
			t.Fatalf("message %d out of order or corrupt", i)
		}
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	for i, s := range sends {
		mustWait(t, name("send %d", i), s)
	}
	st := tr[0].Stats()
	if st.Converted.Load() == 0 {
		t.Errorf("no message went by rendezvous: the sender was never held back by credits")
	}
	if e := st.EagerSends.Load(); e < 6 || e > n-st.Converted.Load() {
		t.Errorf("eager sends %d, converted %d of %d", e, st.Converted.Load(), n)
	}
}

// TestTagsIndependent: unreceived messages on one tag (more than the
// receiver has slots) do not hold back another tag.
func TestTagsIndependent(t *testing.T) {
	tr := fakeGroup(t, 2, func(o *rdmatransport.Options) { o.Slots = 8 })
	var sends []collective.Request
	for i := range 40 {
		sends = append(sends, mustReq(t)(tr[0].Isend(1, 1, pattern(64, byte(i)))))
	}
	big := pattern(100000, 9)
	sends = append(sends, mustReq(t)(tr[0].Isend(1, 2, big)))
	sends = append(sends, mustReq(t)(tr[0].Isend(1, 3, []byte("small"))))
	// Tag 3 and 2 first, then tag 1.
	small := make([]byte, 5)
	mustWait(t, "tag 3", mustReq(t)(tr[1].Irecv(0, 3, small)))
	got := make([]byte, len(big))
	mustWait(t, "tag 2", mustReq(t)(tr[1].Irecv(0, 2, got)))
	if string(small) != "small" || !bytes.Equal(got, big) {
		t.Fatal("data differs")
	}
	for i := range 40 {
		dst := make([]byte, 64)
		mustWait(t, "tag 1", mustReq(t)(tr[1].Irecv(0, 1, dst)))
		if !bytes.Equal(dst, pattern(64, byte(i))) {
			t.Fatalf("tag 1 message %d differs", i)
		}
	}
	for _, s := range sends {
		mustWait(t, "send", s)
	}
}

// TestManyTagsInterleaved: 4 ranks, every pair, 32 tags with 4 messages
// each of mixed sizes; receives posted in a shuffled tag order.
func TestManyTagsInterleaved(t *testing.T) {
	const ranks, tags, per = 4, 32, 4
	tr := fakeGroup(t, ranks, func(o *rdmatransport.Options) { o.Slots = 16; o.EagerMax = 4096 })
	size := func(from, to, tag, k int) int { return []int{0, 17, 4096, 4097, 30000}[(from+to*3+tag+k)%5] }
	var wg sync.WaitGroup
	errs := make(chan error, ranks)
	for me := range ranks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var reqs []collective.Request
			type chk struct {
				dst          []byte
				from, tag, k int
			}
			var checks []chk
			rng := rand.New(rand.NewPCG(uint64(me), 1))
			for to := range ranks {
				if to == me {
					continue
				}
				for tag := range tags {
					for k := range per {
						r, err := tr[me].Isend(to, collective.Tag(tag), pattern(size(me, to, tag, k), byte(me*7+tag+k)))
						if err != nil {
							errs <- err
							return
						}
						reqs = append(reqs, r)
					}
				}
			}
			for _, tag := range rng.Perm(tags) {
				for from := range ranks {
					if from == me {
						continue
					}
					for k := range per {
						dst := make([]byte, size(from, me, tag, k))
						r, err := tr[me].Irecv(from, collective.Tag(tag), dst)
						if err != nil {
							errs <- err
							return
						}
						reqs = append(reqs, r)
						checks = append(checks, chk{dst, from, tag, k})
					}
				}
			}
			for _, r := range reqs {
				if err := wait(t, "", r); err != nil {
					errs <- err
					return
				}
			}
			for _, c := range checks {
				if !bytes.Equal(c.dst, pattern(len(c.dst), byte(c.from*7+c.tag+c.k))) {
					errs <- errors.New(name("rank %d: from %d tag %d #%d differs", me, c.from, c.tag, c.k))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestSizeMismatch: every pairing of protocols with the wrong length
// fails the receive with ErrSizeMismatch, writes nothing, and leaves the
// tag usable.
func TestSizeMismatch(t *testing.T) {
	tr := fakeGroup(t, 2, nil)
	cases := []struct{ send, recv int }{
		{10, 20}, {20, 10}, {0, 1}, {100, 100000}, {100000, 100}, {100000, 100001}, {1 << 20, 1<<20 - 1},
	}
	for i, c := range cases {
		tag := collective.Tag(i)
		dst := make([]byte, c.recv)
		s := mustReq(t)(tr[0].Isend(1, tag, pattern(c.send, 1)))
		r := mustReq(t)(tr[1].Irecv(0, tag, dst))
		if err := wait(t, "recv", r); !errors.Is(err, collective.ErrSizeMismatch) {
			t.Errorf("send %d, receive %d: receive error %v, want ErrSizeMismatch", c.send, c.recv, err)
		}
		serr := wait(t, "send", s)
		if c.send > 16384 && !errors.Is(serr, collective.ErrSizeMismatch) {
			t.Errorf("send %d, receive %d: rendezvous send error %v, want ErrSizeMismatch", c.send, c.recv, serr)
		}
		if c.send <= 16384 && serr != nil {
			t.Errorf("send %d, receive %d: eager send error %v", c.send, c.recv, serr)
		}
		if bytes.ContainsFunc(dst, func(r rune) bool { return r != 0 }) {
			t.Errorf("send %d, receive %d: the buffer was written", c.send, c.recv)
		}
		// The tag still works.
		ok := make([]byte, c.recv)
		s = mustReq(t)(tr[0].Isend(1, tag, pattern(c.recv, 2)))
		mustWait(t, "recv after mismatch", mustReq(t)(tr[1].Irecv(0, tag, ok)))
		mustWait(t, "send after mismatch", s)
		if !bytes.Equal(ok, pattern(c.recv, 2)) {
			t.Errorf("send %d, receive %d: the next message on the tag differs", c.send, c.recv)
		}
	}
}

// TestClose: pending requests here fail with ErrClosed, the peer's with
// ErrPeerLost, and later ones at once.
func TestClose(t *testing.T) {
	tr := fakeGroup(t, 3, nil)
	r0 := mustReq(t)(tr[0].Irecv(1, 5, make([]byte, 10)))
	s0 := mustReq(t)(tr[0].Isend(1, 6, make([]byte, 1<<20))) // waits for a CTS
	r1 := mustReq(t)(tr[1].Irecv(0, 7, make([]byte, 10)))
	s1 := mustReq(t)(tr[1].Isend(0, 8, make([]byte, 1<<20)))
	// An eager message that arrived before the close stays receivable.
	mustWait(t, "eager before close", mustReq(t)(tr[0].Isend(1, 9, []byte("bye"))))
	if err := tr[0].Close(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []collective.Request{r0, s0} {
		if err := wait(t, "", r); !errors.Is(err, collective.ErrClosed) {
			t.Errorf("pending request on the closed rank: %v, want ErrClosed", err)
		}
	}
	for _, r := range []collective.Request{r1, s1} {
		if err := wait(t, "", r); !errors.Is(err, collective.ErrPeerLost) {
			t.Errorf("peer's pending request: %v, want ErrPeerLost", err)
		}
	}
	got := make([]byte, 3)
	if err := wait(t, "", mustReq(t)(tr[1].Irecv(0, 9, got))); err != nil || string(got) != "bye" {
		t.Errorf("message sent before close: %q, %v", got, err)
	}
	for _, r := range []collective.Request{mustReq(t)(tr[1].Irecv(0, 10, nil)), mustReq(t)(tr[1].Isend(0, 10, nil))} {
		if err := wait(t, "", r); !errors.Is(err, collective.ErrPeerLost) {
			t.Errorf("request after the peer closed: %v, want ErrPeerLost", err)
		}
	}
	if _, err := tr[0].Isend(1, 1, nil); !errors.Is(err, collective.ErrClosed) {
		t.Errorf("send after close: %v, want ErrClosed", err)
	}
	if _, err := tr[0].Irecv(1, 1, nil); !errors.Is(err, collective.ErrClosed) {
		t.Errorf("receive after close: %v, want ErrClosed", err)
	}
	if err := tr[0].Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	// Ranks 1 and 2 still talk.
	s := mustReq(t)(tr[1].Isend(2, 1, []byte("x")))
	mustWait(t, "1->2", mustReq(t)(tr[2].Irecv(1, 1, make([]byte, 1))))
	mustWait(t, "1->2 send", s)
}

// TestPeerVanishes: a peer whose device stops (no goodbye) is lost once
// the retries run out. An eager send is done once its copy is posted (as
// a socket write is), so the loss shows in what waits for the peer: a
// receive, a rendezvous send.
func TestPeerVanishes(t *testing.T) {
	tr := fakeGroup(t, 2, func(o *rdmatransport.Options) { o.Timeout = 8; o.RetryCnt = 2 }) // 1 ms
	tr[1].Device().Close()
	start := time.Now()
	if err := wait(t, "", mustReq(t)(tr[0].Isend(1, 1, []byte("hello")))); err != nil {
		t.Fatalf("eager send: %v, want done once posted", err)
	}
	big := mustReq(t)(tr[0].Isend(1, 2, make([]byte, 1<<20)))
	if err := wait(t, "", mustReq(t)(tr[0].Irecv(1, 1, make([]byte, 5)))); !errors.Is(err, collective.ErrPeerLost) {
		t.Fatalf("receive from a vanished peer: %v, want ErrPeerLost", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to notice", d)
	}
	if err := wait(t, "", big); !errors.Is(err, collective.ErrPeerLost) {
		t.Errorf("rendezvous send to a vanished peer: %v, want ErrPeerLost", err)
	}
	if err := wait(t, "", mustReq(t)(tr[0].Isend(1, 1, []byte("again")))); !errors.Is(err, collective.ErrPeerLost) {
		t.Errorf("send after the peer was lost: %v, want ErrPeerLost", err)
	}
}

func TestSelfAndArgs(t *testing.T) {
	tr := fakeGroup(t, 2, nil)
	dst := make([]byte, 4)
	r := mustReq(t)(tr[0].Irecv(0, 3, dst))
	s := mustReq(t)(tr[0].Isend(0, 3, []byte("self")))
	mustWait(t, "self recv", r)
	mustWait(t, "self send", s)
	if string(dst) != "self" {
		t.Fatalf("self message %q", dst)
	}
	s = mustReq(t)(tr[0].Isend(0, 4, []byte("abc")))
	if err := wait(t, "", mustReq(t)(tr[0].Irecv(0, 4, dst))); !errors.Is(err, collective.ErrSizeMismatch) {
		t.Errorf("self mismatch: %v", err)
	}
	if err := wait(t, "", s); !errors.Is(err, collective.ErrSizeMismatch) {
		t.Errorf("self mismatch, send: %v", err)
	}
	for _, peer := range []int{-1, 2} {
		if _, err := tr[0].Isend(peer, 0, nil); !errors.Is(err, collective.ErrInvalidArgument) {
			t.Errorf("send to rank %d: %v", peer, err)
		}
		if _, err := tr[0].Irecv(peer, 0, nil); !errors.Is(err, collective.ErrInvalidArgument) {
			t.Errorf("receive from rank %d: %v", peer, err)
		}
	}
	info := tr[1].Info()
	if info.Name != "rdma/rocev2-198.18.0.2" || len(info.Host) != 2 || info.Host[0] != "198.18.0.1" || info.Host[1] != "198.18.0.2" {
		t.Errorf("info %+v", info)
	}
	if tr[1].Rank() != 1 || tr[1].Size() != 2 {
		t.Errorf("rank %d size %d", tr[1].Rank(), tr[1].Size())
	}
}

func TestNewFailsWithoutPeers(t *testing.T) {
	tr := fakeGroup(t, 1, nil) // a group of one needs no peer
	if tr[0].Size() != 1 {
		t.Fatal(tr[0].Size())
	}
	_, err := rdmatransport.New(context.Background(), rdmatransport.Options{Store: collective.NewMemStore(), Size: 2})
	if !errors.Is(err, collective.ErrInvalidArgument) {
		t.Errorf("no device: %v", err)
	}
}

// TestConformance runs the collective.Transport suite on the fake network.
func TestConformance(t *testing.T) {
	collectivetest.TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		tr := fakeGroup(t, n, nil)
		out := make([]collective.Transport, n)
		for i, x := range tr {
			out[i] = x
		}
		return out
	})
}
