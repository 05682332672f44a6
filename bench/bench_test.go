package bench_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/dataplane/porttest"
)

var (
	addrA = netip.MustParseAddrPort("198.18.0.1:4792")
	addrB = netip.MustParseAddrPort("198.18.0.2:4792")
)

func newPair(t *testing.T, opts porttest.NetworkOptions) (a, b *porttest.Port) {
	t.Helper()
	n := porttest.NewNetwork(opts)
	a, err := n.NewPort(addrA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err = n.NewPort(addrB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

func TestPPSCountsEveryPacket(t *testing.T) {
	const count = 5000
	a, b := newPair(t, porttest.NetworkOptions{QueueLen: count})
	res, err := bench.PPS(context.Background(), "fake", a, b, addrB, bench.PPSOptions{Size: 100, Count: count, Duration: 10 * time.Second, Batch: 32})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != count || res.Received != count || res.Corrupted != 0 {
		t.Fatalf("sent %d received %d corrupted %d, want %d, %d, 0", res.Sent, res.Received, res.Corrupted, count, count)
	}
	if res.Transport != "fake" || res.Size != 100 || res.PPS <= 0 || res.Window <= 0 {
		t.Fatalf("result %+v: want transport fake, 100 bytes, a positive rate and window", res)
	}
}

func TestPPSCountsLoss(t *testing.T) {
	const count = 20000
	a, b := newPair(t, porttest.NetworkOptions{QueueLen: count, LossPPM: 100_000, Seed: 7})
	res, err := bench.PPS(context.Background(), "fake", a, b, addrB, bench.PPSOptions{Count: count, Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != count {
		t.Fatalf("sent %d, want %d", res.Sent, count)
	}
	if lost := res.Sent - res.Received; lost < count*8/100 || lost > count*12/100 {
		t.Fatalf("received %d of %d: loss %d is not 10%% ± 2%%", res.Received, res.Sent, lost)
	}
}

// stuckPort never accepts a packet, as a port whose transmit queue stays
// full; it still receives.
type stuckPort struct{ dataplane.Port }

func (stuckPort) Send([]dataplane.Packet) (int, error) { return 0, nil }

func TestPPSStopsWhenTransmitQueueStaysFull(t *testing.T) {
	a, b := newPair(t, porttest.NetworkOptions{})
	start := time.Now()
	res, err := bench.PPS(context.Background(), "stuck", stuckPort{a}, b, addrB, bench.PPSOptions{Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %v with a 100ms send bound", took)
	}
	if res.Sent != 0 || res.Received != 0 {
		t.Fatalf("sent %d received %d, want 0 and 0", res.Sent, res.Received)
	}
}

func TestLatency(t *testing.T) {
	a, b := newPair(t, porttest.NetworkOptions{})
	res, err := bench.Latency(context.Background(), "fake", a, b, addrB, bench.LatOptions{Iterations: 300, Warmup: 20})
	if err != nil {
		t.Fatal(err)
	}
	if res.Iterations != 300 || res.Losses != 0 || res.Size != 64 {
		t.Fatalf("iterations %d losses %d size %d, want 300, 0, 64", res.Iterations, res.Losses, res.Size)
	}
	if !(0 < res.Min && res.Min <= res.Typical && res.Typical <= res.P99 && res.P99 <= res.P999 && res.P999 <= res.Max) {
		t.Fatalf("latencies out of order: %+v", res)
	}
	if res.Avg < res.Min || res.Avg > res.Max {
		t.Fatalf("average %v outside [%v, %v]", res.Avg, res.Min, res.Max)
	}
}

func TestLatencyStopsWhenTransmitQueueStaysFull(t *testing.T) {
	a, b := newPair(t, porttest.NetworkOptions{})
	start := time.Now()
	_, err := bench.Latency(context.Background(), "stuck", stuckPort{a}, b, addrB, bench.LatOptions{Iterations: 10, Timeout: 50 * time.Millisecond})
	if !errors.Is(err, dataplane.ErrTimeout) {
		t.Fatalf("Latency over a port that never sends: error %v, want ErrTimeout", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %v with a 50ms timeout", took)
	}
}

func TestLatencyCountsLosses(t *testing.T) {
	a, b := newPair(t, porttest.NetworkOptions{LossPPM: 1_000_000})
	res, err := bench.Latency(context.Background(), "lossy", a, b, addrB, bench.LatOptions{Iterations: 10, Timeout: 5 * time.Millisecond, MaxLosses: 3})
	if !errors.Is(err, dataplane.ErrTimeout) {
		t.Fatalf("Latency over a network that loses everything: error %v, want ErrTimeout", err)
	}
	if res.Losses != 4 || res.Iterations != 0 {
		t.Fatalf("losses %d iterations %d, want 4 (one past MaxLosses) and 0", res.Losses, res.Iterations)
	}
}
