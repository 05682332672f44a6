package collective_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

func TestLatencyBuckets(t *testing.T) {
	var l collective.LatencyBuckets
	for _, d := range []time.Duration{0, 1, 3, 1000, 1500, 2047, 2048, time.Second} {
		l.Observe(d)
	}
	counts, sum := l.Snapshot()
	want := map[int]uint64{0: 2, 1: 1, 9: 1, 10: 2, 11: 1, 29: 1} // 1e9 ns: 2^29 <= 1e9 < 2^30
	for i, c := range counts {
		if c != want[i] {
			t.Errorf("bucket %d = %d, want %d", i, c, want[i])
		}
	}
	if sum != 1+3+1000+1500+2047+2048+time.Second {
		t.Errorf("sum %v", sum)
	}
	if q := collective.Quantile(counts, 0.5); q != collective.BucketUpperBound(9) {
		t.Errorf("p50 = %v, want the upper bound of bucket 9 (%v)", q, collective.BucketUpperBound(9))
	}
	if q := collective.Quantile(counts, 1); q != 1<<30 {
		t.Errorf("p100 = %v, want 2^30 ns", q)
	}
	var empty [collective.NumLatencyBuckets]uint64
	if collective.Quantile(empty, 0.99) != 0 {
		t.Error("quantile of nothing is not 0")
	}
	if n := testing.AllocsPerRun(100, func() { l.Observe(time.Microsecond) }); n != 0 {
		t.Errorf("Observe allocates %v times", n)
	}
}

// TestCommunicatorStats: every completed operation is counted per kind,
// with its bytes and a latency, on every rank.
func TestCommunicatorStats(t *testing.T) {
	comms := collectivetest.Comms(t, 2, collectivetest.GroupOptions{}, collective.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := collectivetest.Parallel(len(comms), func(r int) error {
		c := comms[r]
		for range 3 {
			if err := c.AllReduce(ctx, nil, make([]byte, 64), collective.Float32, collective.Sum); err != nil {
				return err
			}
		}
		return c.Barrier(ctx)
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for r, c := range comms {
		ar := &c.Stats().Ops[collective.OpAllReduce]
		if ar.Completed.Load() != 3 || ar.Errors.Load() != 0 || ar.Bytes.Load() != 3*64 {
			t.Errorf("rank %d allreduce: %d completed, %d errors, %d bytes; want 3, 0, 192", r, ar.Completed.Load(), ar.Errors.Load(), ar.Bytes.Load())
		}
		counts, sum := ar.Latency.Snapshot()
		var n uint64
		for _, v := range counts {
			n += v
		}
		if n != 3 || sum <= 0 {
			t.Errorf("rank %d allreduce latency: %d observations, sum %v", r, n, sum)
		}
		if b := c.Stats().Ops[collective.OpBarrier].Completed.Load(); b != 1 {
			t.Errorf("rank %d barriers %d, want 1", r, b)
		}
	}
}
