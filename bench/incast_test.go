package bench_test

import (
	"context"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/dataplane/porttest"
)

func TestJain(t *testing.T) {
	for _, c := range []struct {
		x    []float64
		want float64
	}{{nil, 0}, {[]float64{0, 0}, 0}, {[]float64{1, 1, 1}, 1}, {[]float64{3, 0, 0}, 1.0 / 3}, {[]float64{1, 2}, 0.9}} {
		if got := bench.Jain(c.x); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Jain(%v) = %v, want %v", c.x, got, c.want)
		}
	}
}

// TestIncastFake runs three senders into one receiver on the in-memory
// network: every flow completes with checked data and non-zero goodput.
func TestIncastFake(t *testing.T) {
	n := porttest.NewNetwork(porttest.NetworkOptions{MTU: 4200, QueueLen: 8192})
	recv := openFakeDevice(t, n, "198.18.0.1")
	flows := make([]bench.IncastFlow, 3)
	for i := range flows {
		a, b := socketPair(t)
		flows[i] = bench.IncastFlow{
			Sender:   bench.RDMASide{Device: openFakeDevice(t, n, netip.AddrFrom4([4]byte{198, 18, 0, byte(2 + i)}).String()), Connect: exchangeOn(a)},
			Receiver: bench.RDMASide{Device: recv, Connect: exchangeOn(b)},
		}
	}
	var started []uint32
	res, err := bench.Incast(context.Background(), flows, bench.IncastOptions{Size: 16 << 10, Duration: 200 * time.Millisecond,
		OnStart: func(qpns []uint32, _ <-chan struct{}) { started = qpns }})
	if err != nil {
		t.Fatal(err)
	}
	if len(started) != 3 || len(res.Flows) != 3 {
		t.Fatalf("OnStart heard %v, %d flow results; want 3 of each", started, len(res.Flows))
	}
	sum := 0.0
	for _, f := range res.Flows {
		if f.Messages == 0 || f.Gbps <= 0 || f.Bytes != int64(f.Messages)*16<<10 {
			t.Fatalf("flow %+v moved nothing", f)
		}
		sum += f.Gbps
	}
	if math.Abs(sum-res.AggregateGbps) > 1e-9 || res.Jain <= 0 || res.Jain > 1 {
		t.Fatalf("aggregate %v (flows sum %v), jain %v", res.AggregateGbps, sum, res.Jain)
	}
	if _, err := bench.Incast(context.Background(), nil, bench.IncastOptions{}); err == nil {
		t.Fatal("an incast without flows succeeded")
	}
}
