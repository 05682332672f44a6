package shm_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
	"github.com/opennetworks/onetdp/transport/shm"
)

// shmDir makes a fresh directory under /dev/shm and, when the test ends,
// fails it if any ring file was left there.
func shmDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "onet-shmtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			t.Errorf("file left in %s: %s", dir, e.Name())
		}
		os.RemoveAll(dir)
	})
	return dir
}

// open builds the n ranks of one host in this process.
func open(t testing.TB, n int, o shm.Options) []*shm.Transport {
	t.Helper()
	store := collective.NewMemStore()
	dir := shmDir(t)
	local := make([]int, n)
	for i := range local {
		local[i] = i
	}
	return collectivetest.OpenGroup(t, n, func(r int) (*shm.Transport, error) {
		o := o
		o.Store, o.Rank, o.Size, o.Local, o.Dir = store, r, n, local, dir
		if o.Timeout == 0 {
			o.Timeout = 20 * time.Second
		}
		return shm.New(context.Background(), o)
	})
}

func asTransports(ts []*shm.Transport) []collective.Transport {
	out := make([]collective.Transport, len(ts))
	for i, tr := range ts {
		out[i] = tr
	}
	return out
}

func TestConformance(t *testing.T) {
	collectivetest.TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		return asTransports(open(t, n, shm.Options{}))
	})
}

// TestConformanceSmallRing: 4 KiB rings and a 4 KiB unexpected budget, so
// every large message streams and early ones wait in the ring.
func TestConformanceSmallRing(t *testing.T) {
	collectivetest.TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		return asTransports(open(t, n, shm.Options{RingBytes: 4096, MaxUnexpectedBytes: 4096}))
	})
}

func TestNotLocal(t *testing.T) {
	store := collective.NewMemStore()
	dir := shmDir(t)
	// Ranks 0 and 2 of 4 share this "host".
	ts := collectivetest.OpenGroup(t, 2, func(i int) (*shm.Transport, error) {
		return shm.New(context.Background(), shm.Options{Store: store, Rank: 2 * i, Size: 4, Local: []int{2, 0}, Dir: dir, HostID: "h"})
	})
	if _, err := ts[0].Isend(1, 1, []byte{1}); !errors.Is(err, collective.ErrNotSupported) {
		t.Errorf("isend to rank 1: %v, want ErrNotSupported", err)
	}
	if _, err := ts[1].Irecv(3, 1, []byte{1}); !errors.Is(err, collective.ErrNotSupported) {
		t.Errorf("irecv from rank 3: %v, want ErrNotSupported", err)
	}
	if ts[0].IsLocal(1) || !ts[0].IsLocal(2) || ts[1].Rank() != 2 {
		t.Errorf("IsLocal(1) %v IsLocal(2) %v Rank %d", ts[0].IsLocal(1), ts[0].IsLocal(2), ts[1].Rank())
	}
	info := ts[1].Info()
	if info.Name != "shm" || len(info.Host) != 4 || info.Host[0] != "h" || info.Host[2] != "h" || info.Host[1] != "" || info.Host[3] != "" {
		t.Errorf("info %+v", info)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make([]byte, 3)
	r, _ := ts[1].Irecv(0, 9, got)
	s, _ := ts[0].Isend(2, 9, []byte("abc"))
	if err := errors.Join(s.Wait(ctx), r.Wait(ctx)); err != nil || string(got) != "abc" {
		t.Fatalf("0->2: %v %q", err, got)
	}
}

func TestBadOptions(t *testing.T) {
	store := collective.NewMemStore()
	for _, o := range []shm.Options{
		{Store: store, Rank: 0, Size: 2, Local: []int{1}},
		{Store: store, Rank: 0, Size: 2, Local: []int{0, 0}},
		{Store: store, Rank: 0, Size: 2, Local: []int{0, 2}},
		{Store: store, Rank: 0, Size: 1, Local: []int{0}, RingBytes: 5000},
		{Rank: 0, Size: 1, Local: []int{0}},
	} {
		if _, err := shm.New(context.Background(), o); !errors.Is(err, collective.ErrInvalidArgument) {
			t.Errorf("%+v: %v, want ErrInvalidArgument", o, err)
		}
	}
}

// TestStreamBackToBack: many messages larger than the ring in flight at
// once, both directions.
func TestStreamBackToBack(t *testing.T) {
	ts := open(t, 2, shm.Options{RingBytes: 64 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var reqs []collective.Request
	var want, got [][]byte
	for i := range 8 {
		m := bytes.Repeat([]byte{byte(i), byte(i * 7)}, 100_000+i*1000)
		g := make([]byte, len(m))
		want, got = append(want, m), append(got, g)
		s, _ := ts[i%2].Isend(1-i%2, 3, m)
		r, _ := ts[1-i%2].Irecv(i%2, 3, g)
		reqs = append(reqs, s, r)
	}
	for _, q := range reqs {
		if err := q.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range want {
		if !bytes.Equal(want[i], got[i]) {
			t.Fatalf("message %d corrupted", i)
		}
	}
}

// TestCloseWhileSending: Close racing with senders never faults (the
// rings stay mapped while an inline send copies) and every send ends.
func TestCloseWhileSending(t *testing.T) {
	for range 20 {
		ts := open(t, 2, shm.Options{RingBytes: 4096})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		done := make(chan error, 4)
		for g := range 4 {
			go func() {
				msg := make([]byte, 1000+g)
				var last collective.Request
				for {
					s, err := ts[0].Isend(1, collective.Tag(g), msg)
					if err != nil {
						done <- nil
						return
					}
					last = s
					if ok, err := s.Test(); ok && err != nil {
						break
					}
				}
				err := last.Wait(ctx)
				if err != nil && !errors.Is(err, collective.ErrClosed) {
					done <- err
					return
				}
				done <- nil
			}()
		}
		time.Sleep(2 * time.Millisecond)
		ts[0].Close()
		for range 4 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		cancel()
	}
}
