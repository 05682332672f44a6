package adaptive_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
	"github.com/opennetworks/onetdp/transport/adaptive"
	"github.com/opennetworks/onetdp/transport/tcp"
)

// tcpGroup builds n loopback tcp transports under prefix in store.
func tcpGroup(t testing.TB, store collective.Store, prefix string, n int) []collective.Transport {
	t.Helper()
	return collectivetest.OpenGroup(t, n, func(r int) (collective.Transport, error) {
		return tcp.New(context.Background(), tcp.Options{Store: store, Rank: r, Size: n, ListenAddr: "127.0.0.1:0", Prefix: prefix, Timeout: 20 * time.Second})
	})
}

// combine runs adaptive.New on every rank at once.
func combine(t testing.TB, small, large []collective.Transport, o adaptive.Options) []*adaptive.Transport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return collectivetest.OpenGroup(t, len(small), func(r int) (*adaptive.Transport, error) {
		o := o
		o.Small, o.Large = small[r], large[r]
		return adaptive.New(ctx, o)
	})
}

func asTransports(ts []*adaptive.Transport) []collective.Transport {
	out := make([]collective.Transport, len(ts))
	for i, tr := range ts {
		out[i] = tr
	}
	return out
}

// TestConformanceMemTCP: in-memory below 1 KiB, tcp above; the suite's
// size-mismatch cases stay below the threshold.
func TestConformanceMemTCP(t *testing.T) {
	collectivetest.TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		small := collectivetest.NewGroup(n, collectivetest.GroupOptions{})
		large := tcpGroup(t, collective.NewMemStore(), "", n)
		return asTransports(combine(t, small, large, adaptive.Options{Threshold: 1024}))
	})
}

// TestConformanceTwoTCPMeasured: two tcp meshes sharing one store under
// different prefixes, threshold measured.
func TestConformanceTwoTCPMeasured(t *testing.T) {
	collectivetest.TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		store := collective.NewMemStore()
		small := tcpGroup(t, store, "small/", n)
		large := tcpGroup(t, store, "large/", n)
		ts := combine(t, small, large, adaptive.Options{})
		for _, tr := range ts[1:] {
			if tr.Threshold() != ts[0].Threshold() {
				t.Fatalf("ranks disagree on the threshold: %d vs %d", tr.Threshold(), ts[0].Threshold())
			}
		}
		return asTransports(ts)
	})
}

// slow delays each send by its length times perByte before passing it on:
// a transport with a bandwidth of 1/perByte.
type slow struct {
	collective.Transport
	perByte time.Duration
}

func (s slow) Isend(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	d := new(collective.Completion)
	d.Init()
	go func() {
		time.Sleep(time.Duration(len(b)) * s.perByte)
		r, err := s.Transport.Isend(peer, tag, b)
		if err == nil {
			err = r.Wait(context.Background())
		}
		d.Complete(err)
	}()
	return d, nil
}

// TestMeasuredCrossover: Small moves 0.25 GB/s with no latency, Large has
// 3 ms latency and infinite bandwidth, so Small wins up to 256 KiB (1 ms)
// and Large from 1 MiB (4 ms); all three ranks agree on 1 MiB. (The wide
// margins absorb timer slack on a loaded machine.)
func TestMeasuredCrossover(t *testing.T) {
	const n = 3
	mem := collectivetest.NewGroup(n, collectivetest.GroupOptions{Name: "slowmem", Hosts: []string{"a", "b", "c"}})
	small := make([]collective.Transport, n)
	for i := range small {
		small[i] = slow{mem[i], 4 * time.Nanosecond}
	}
	large := collectivetest.NewGroup(n, collectivetest.GroupOptions{Delay: 3 * time.Millisecond, Name: "far"})
	// Small takes 0.5 ms for 128 KiB and 16.8 ms for 4 MiB against
	// Large's 3 ms: a factor of 5 on either side of the crossover, so a
	// busy machine's scheduling noise cannot move it.
	start := time.Now()
	ts := combine(t, small, large, adaptive.Options{Sizes: []int{4 << 10, 64 << 10, 128 << 10, 4 << 20}})
	took := time.Since(start)
	for r, tr := range ts {
		if tr.Threshold() != 4<<20 {
			t.Errorf("rank %d: threshold %d, want %d; samples %+v", r, tr.Threshold(), 4<<20, ts[0].Samples())
		}
	}
	if len(ts[0].Samples()) != 4 || ts[1].Samples() != nil {
		t.Errorf("samples: rank 0 has %d (want 4), rank 1 %d (want none)", len(ts[0].Samples()), len(ts[1].Samples()))
	}
	t.Logf("measured in %v: %+v", took, ts[0].Samples())
	info := ts[2].Info()
	if info.Name != "adaptive(adaptive_test.slow<4194304:far)" {
		t.Errorf("info name %q", info.Name)
	}
	if len(info.Host) != 0 { // slow hides mem's Describer, far knows no hosts
		t.Errorf("info hosts %q", info.Host)
	}
}

// TestRouting: a message below the threshold goes over Small only, one at
// or above over Large only.
func TestRouting(t *testing.T) {
	small := collectivetest.NewGroup(2, collectivetest.GroupOptions{Name: "s"})
	large := collectivetest.NewGroup(2, collectivetest.GroupOptions{Name: "l"})
	ts := combine(t, small, large, adaptive.Options{Threshold: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Post receives directly on the underlying transports: each message
	// must arrive on the right one.
	r1, _ := small[1].Irecv(0, 1, make([]byte, 99))
	r2, _ := large[1].Irecv(0, 1, make([]byte, 100))
	s1, _ := ts[0].Isend(1, 1, make([]byte, 99))
	s2, _ := ts[0].Isend(1, 1, make([]byte, 100))
	for _, r := range []collective.Request{s1, s2, r1, r2} {
		if err := r.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := ts[0].Info().Name; got != "adaptive(s<100:l)" {
		t.Errorf("info name %q", got)
	}
	if _, err := adaptive.New(ctx, adaptive.Options{Small: small[0], Large: large[1]}); !errors.Is(err, collective.ErrInvalidArgument) {
		t.Errorf("mismatched ranks: %v", err)
	}
	if _, err := adaptive.New(ctx, adaptive.Options{Small: small[0]}); !errors.Is(err, collective.ErrInvalidArgument) {
		t.Errorf("no large: %v", err)
	}
}
