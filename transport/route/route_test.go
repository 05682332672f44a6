package route_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
	"github.com/opennetworks/onetdp/transport/route"
	"github.com/opennetworks/onetdp/transport/shm"
)

// counting counts the sends that go through a transport, by peer.
type counting struct {
	collective.Transport
	sends []atomic.Int64
}

func (c *counting) Isend(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	if peer >= 0 && peer < len(c.sends) {
		c.sends[peer].Add(1)
	}
	return c.Transport.Isend(peer, tag, b)
}

func (c *counting) Info() collective.TransportInfo {
	return c.Transport.(collective.Describer).Info()
}

type routed struct {
	ts            []collective.Transport
	local, remote []*counting
}

// build makes n ranks on hosts of two ranks each ({0,1}, {2,3}, ...):
// shm within a host, the in-memory transport between hosts (which reports
// hosts "h0", "h0", "h1", ...).
func build(t *testing.T, n int) routed {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "onet-routetest-")
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
	hosts := make([]string, n)
	for r := range n {
		hosts[r] = "h" + string(rune('0'+r/2))
	}
	remote := collectivetest.NewGroup(n, collectivetest.GroupOptions{Hosts: hosts})
	store := collective.NewMemStore()
	out := routed{local: make([]*counting, n), remote: make([]*counting, n)}
	var mu sync.Mutex
	out.ts = collectivetest.OpenGroup(t, n, func(r int) (collective.Transport, error) {
		var loc []int
		for p := range n {
			if p/2 == r/2 {
				loc = append(loc, p)
			}
		}
		l, err := shm.New(context.Background(), shm.Options{Store: store, Rank: r, Size: n, Local: loc, Dir: dir,
			HostID: hosts[r], RingBytes: 1 << 20, Timeout: 20 * time.Second})
		if err != nil {
			remote[r].Close()
			return nil, err
		}
		lc := &counting{Transport: l, sends: make([]atomic.Int64, n)}
		rc := &counting{Transport: remote[r], sends: make([]atomic.Int64, n)}
		mu.Lock()
		out.local[r], out.remote[r] = lc, rc
		mu.Unlock()
		// IsLocal from the shm transport (it has the method; the counting
		// wrapper hides it, so pass it on).
		return route.New(route.Options{Local: lc, Remote: rc, IsLocal: l.IsLocal})
	})
	return out
}

func TestConformance(t *testing.T) {
	collectivetest.TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		return build(t, n).ts
	})
}

func TestPeersSplit(t *testing.T) {
	g := build(t, 4)
	info := g.ts[1].(collective.Describer).Info()
	if info.Name != "shm+mem" || len(info.Host) != 4 || info.Host[0] != "h0" || info.Host[1] != "h0" || info.Host[2] != "h1" || info.Host[3] != "h1" {
		t.Fatalf("info %+v", info)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for src := range 4 {
		for dst := range 4 {
			got := make([]byte, 1)
			r, err := g.ts[dst].Irecv(src, 1, got)
			if err != nil {
				t.Fatal(err)
			}
			s, err := g.ts[src].Isend(dst, 1, []byte{byte(src*4 + dst)})
			if err != nil {
				t.Fatal(err)
			}
			if err := errors.Join(s.Wait(ctx), r.Wait(ctx)); err != nil || got[0] != byte(src*4+dst) {
				t.Fatalf("%d->%d: %v got %d", src, dst, err, got[0])
			}
			sameHost := src/2 == dst/2
			l, rm := g.local[src].sends[dst].Load(), g.remote[src].sends[dst].Load()
			if sameHost && (l != 1 || rm != 0) || !sameHost && (l != 0 || rm != 1) {
				t.Errorf("%d->%d (same host %v): %d sends over shm, %d over the remote", src, dst, sameHost, l, rm)
			}
		}
	}
}

func TestNewErrors(t *testing.T) {
	g := collectivetest.NewGroup(2, collectivetest.GroupOptions{})
	h := collectivetest.NewGroup(3, collectivetest.GroupOptions{})
	for i, o := range []route.Options{
		{Local: g[0]},
		{Local: g[0], Remote: h[0], IsLocal: func(int) bool { return true }},
		{Local: g[0], Remote: g[1], IsLocal: func(int) bool { return true }},
		{Local: g[0], Remote: g[0]}, // no host list, no IsLocal
	} {
		if _, err := route.New(o); !errors.Is(err, collective.ErrInvalidArgument) {
			t.Errorf("case %d: %v, want ErrInvalidArgument", i, err)
		}
	}
}

// TestHierAllreduce runs the communicator's hierarchical allreduce over
// 2 hosts x 2 ranks: the local reduce and broadcast over shm, the leaders
// over the in-memory transport; and checks the split of the traffic.
func TestHierAllreduce(t *testing.T) {
	g := build(t, 4)
	comms, err := collectivetest.NewComms(context.Background(), g.ts, collective.Options{IgnoreEnv: true,
		Algorithm: map[collective.OpKind]string{collective.OpAllReduce: "hier"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range comms {
			c.Close()
		}
	})
	for r := range 4 {
		for p := range 4 {
			g.local[r].sends[p].Store(0)
			g.remote[r].sends[p].Store(0)
		}
	}
	rng := rand.New(rand.NewPCG(5, 5))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, count := range []int{1, 7, 1000, 1 << 20} {
		for _, dt := range []collective.DType{collective.Float32, collective.Int64, collective.Float16} {
			for _, op := range []collective.Op{collective.Sum, collective.Max} {
				c := collectivetest.Case{Op: collective.OpAllReduce, DType: dt, Reduce: op}
				if err := collectivetest.RunCase(ctx, comms, c, collectivetest.Inputs(rng, c, 4, count), rng.IntN(2) == 0, rng.IntN(2) == 0); err != nil {
					t.Fatalf("count %d: %v", count, err)
				}
			}
		}
	}
	// Ranks 1 and 3 only talk to their host's leader, over shm; the
	// leaders 0 and 2 cross hosts over the remote transport.
	for r := range 4 {
		for p := range 4 {
			l, rm := g.local[r].sends[p].Load(), g.remote[r].sends[p].Load()
			same := r/2 == p/2
			if same && r != p && l == 0 {
				t.Errorf("rank %d sent nothing to rank %d over shm", r, p)
			}
			if !same && l != 0 {
				t.Errorf("rank %d sent %d messages to rank %d over shm", r, l, p)
			}
			if same && rm != 0 {
				t.Errorf("rank %d sent %d messages to its host's rank %d over the remote", r, rm, p)
			}
			if !same && (r%2 == 1 || p%2 == 1) && rm != 0 {
				t.Errorf("non-leader traffic %d->%d crossed hosts (%d messages)", r, p, rm)
			}
		}
	}
	if g.remote[0].sends[2].Load() == 0 || g.remote[2].sends[0].Load() == 0 {
		t.Errorf("leaders exchanged nothing: %d, %d", g.remote[0].sends[2].Load(), g.remote[2].sends[0].Load())
	}
}

// TestOverSharedMemory: hosts taken from the remote transport's Info
// (three ranks on "a", one on "b"), shm between the three.
func TestOverSharedMemory(t *testing.T) {
	dir, err := os.MkdirTemp("/dev/shm", "onet-routetest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	hosts := []string{"a", "b", "a", "a"}
	remote := collectivetest.NewGroup(4, collectivetest.GroupOptions{Hosts: hosts})
	store := collective.NewMemStore()
	ts := collectivetest.OpenGroup(t, 4, func(r int) (*route.Transport, error) {
		return route.OverSharedMemory(context.Background(), remote[r], shm.Options{Store: store, Dir: dir, Timeout: 20 * time.Second})
	})
	if got := route.LocalRanks(remote[2]); len(got) != 3 || got[0] != 0 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("LocalRanks = %v", got)
	}
	for p, want := range []bool{true, false, true, true} {
		if ts[3].IsLocal(p) != want {
			t.Errorf("rank 3: IsLocal(%d) = %v", p, !want)
		}
	}
	if ts[1].IsLocal(0) || !ts[1].IsLocal(1) {
		t.Errorf("rank 1 alone on b: IsLocal(0) %v IsLocal(1) %v", ts[1].IsLocal(0), ts[1].IsLocal(1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make([]byte, 2)
	r, _ := ts[3].Irecv(0, 1, got)
	s, _ := ts[0].Isend(3, 1, []byte("ok"))
	if err := errors.Join(s.Wait(ctx), r.Wait(ctx)); err != nil || string(got) != "ok" {
		t.Fatalf("0->3: %v %q", err, got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d files left in %s", len(ents), dir)
	}
	if _, err := route.OverSharedMemory(context.Background(), collectivetest.NewGroup(2, collectivetest.GroupOptions{})[0],
		shm.Options{Store: store}); !errors.Is(err, collective.ErrNotSupported) {
		t.Errorf("remote without hosts: %v, want ErrNotSupported", err)
	}
}
