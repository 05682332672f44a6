package collective

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Stats are a communicator's counters, plain atomics that telemetry reads
// at scrape time. Updated by the goroutine that runs each operation; safe
// to read from any goroutine.
type Stats struct {
	// Ops is indexed by OpKind. Send and Recv count the point-to-point
	// calls.
	Ops [numOpKinds]OpStats
}

// OpStats counts one kind of operation.
type OpStats struct {
	Completed atomic.Uint64 // operations that returned (with or without error)
	Errors    atomic.Uint64 // of them, those that failed
	Bytes     atomic.Uint64 // the operation's byte count (nccl-tests' size) of completed ones
	// Latency is the time from the start of execution to its end.
	Latency LatencyBuckets
}

// LatencyBuckets is a lock-free log2 histogram of durations: bucket i
// counts durations d with 2^i <= d/ns < 2^(i+1) (bucket 0 also holds
// durations under 1 ns).
type LatencyBuckets struct {
	b     [NumLatencyBuckets]atomic.Uint64
	sumNs atomic.Uint64
}

// NumLatencyBuckets is the number of log2 buckets.
const NumLatencyBuckets = 64

// Observe records one duration. It does not allocate.
func (l *LatencyBuckets) Observe(d time.Duration) {
	ns := uint64(max(d, 0))
	i := 0
	if ns > 0 {
		i = bits.Len64(ns) - 1
	}
	l.b[i].Add(1)
	l.sumNs.Add(ns)
}

// Snapshot returns the bucket counts and the sum of all durations. The
// buckets are read one by one: concurrent observations may land in some
// and not yet in the sum.
func (l *LatencyBuckets) Snapshot() (counts [NumLatencyBuckets]uint64, sum time.Duration) {
	for i := range l.b {
		counts[i] = l.b[i].Load()
	}
	return counts, time.Duration(l.sumNs.Load())
}

// BucketUpperBound is the exclusive upper end of bucket i.
func BucketUpperBound(i int) time.Duration {
	if i >= 62 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(uint64(1) << (i + 1))
}

// Quantile estimates the q-quantile (0 < q <= 1) of counts: the upper
// bound of the bucket holding it, so at most a factor of 2 high. 0 when
// there are no observations.
func Quantile(counts [NumLatencyBuckets]uint64, q float64) time.Duration {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 || !(q > 0) {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return BucketUpperBound(i)
		}
	}
	return BucketUpperBound(NumLatencyBuckets - 1)
}

// Stats returns the communicator's counters.
func (c *Communicator) Stats() *Stats { return &c.stats }

// record accounts one finished operation.
func (c *Communicator) record(k OpKind, bytes int, took time.Duration, err error) {
	if !k.Valid() {
		return
	}
	s := &c.stats.Ops[k]
	s.Completed.Add(1)
	if err != nil {
		s.Errors.Add(1)
	}
	s.Bytes.Add(uint64(max(bytes, 0)))
	s.Latency.Observe(took)
}
