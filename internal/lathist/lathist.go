package lathist

import (
	"math"
	"sync/atomic"
	"time"
)

// Schema is the Prometheus native-histogram schema of the buckets: bucket
// boundaries are powers of 2^(2^-Schema).
const Schema = 2

// Bucket keys covered (the native histogram's bucket indices): MinKey is the
// bucket ending at 2^(MinKey/4) s, just above 1 ns (durations at or below
// ZeroThreshold go to the zero bucket); MaxKey ends at 2^10 s (about 17
// minutes). Longer durations are counted in the MaxKey bucket.
const (
	MinKey = -119
	MaxKey = 40
	// NumBuckets is the number of regular buckets.
	NumBuckets = MaxKey - MinKey + 1
)

// ZeroThreshold is the zero bucket's upper bound in seconds: 2^-30 s, about
// 0.93 ns, so only durations under 1 ns land in it.
var ZeroThreshold = math.Ldexp(1, -30)

// bounds are the fractions of schema 2 that split [0.5, 1): the upper
// bounds, as math.Frexp fractions, of the four buckets of one power of two.
var bounds = [4]float64{0.5, 0.5946035575013605, 0.7071067811865475, 0.8408964152537144}

// Histogram counts durations in native-histogram buckets. The zero value
// is empty and ready; Observe and Snapshot are safe from any goroutine.
// Do not copy a Histogram after first use.
type Histogram struct {
	zero  atomic.Uint64
	b     [NumBuckets]atomic.Uint64
	sumNs atomic.Uint64
}

// Key returns the native-histogram bucket key of d (seconds in
// (2^((k-1)/4), 2^(k/4)]), clamped to [MinKey, MaxKey]; ok is false for
// durations at or below ZeroThreshold (the zero bucket).
func Key(d time.Duration) (k int, ok bool) {
	v := d.Seconds()
	if !(v > ZeroThreshold) {
		return 0, false
	}
	frac, exp := math.Frexp(v) // v = frac × 2^exp, frac in [0.5, 1)
	i := 0
	for i < len(bounds) && bounds[i] < frac {
		i++
	}
	k = i + (exp-1)*len(bounds)
	return min(max(k, MinKey), MaxKey), true
}

// UpperBound returns the upper bound in seconds of the bucket with key k.
func UpperBound(k int) float64 {
	return math.Exp2(float64(k) / (1 << Schema))
}

// Observe records one duration (negative ones count as zero). It does not
// allocate: two atomic adds.
func (h *Histogram) Observe(d time.Duration) {
	d = max(d, 0)
	if k, ok := Key(d); ok {
		h.b[k-MinKey].Add(1)
	} else {
		h.zero.Add(1)
	}
	h.sumNs.Add(uint64(d))
}

// Snapshot is a Histogram read at one time.
type Snapshot struct {
	// Zero counts durations at or below ZeroThreshold.
	Zero uint64
	// Buckets[i] counts the bucket with key MinKey+i (not cumulative).
	Buckets [NumBuckets]uint64
	// Count is Zero plus every bucket.
	Count uint64
	// Sum of every duration observed.
	Sum time.Duration
}

// Snapshot reads the histogram. The buckets are read one by one: an
// observation racing with it may be in its bucket and not yet in Sum.
func (h *Histogram) Snapshot() Snapshot {
	var s Snapshot
	s.Zero = h.zero.Load()
	s.Count = s.Zero
	for i := range h.b {
		s.Buckets[i] = h.b[i].Load()
		s.Count += s.Buckets[i]
	}
	s.Sum = time.Duration(h.sumNs.Load())
	return s
}

// Sub returns s minus an earlier snapshot of the same histogram (the
// observations in between); buckets that went down (a reset) count from 0.
func (s Snapshot) Sub(before Snapshot) Snapshot {
	var d Snapshot
	sub := func(a, b uint64) uint64 {
		if a < b {
			return a
		}
		return a - b
	}
	d.Zero = sub(s.Zero, before.Zero)
	d.Count = d.Zero
	for i := range s.Buckets {
		d.Buckets[i] = sub(s.Buckets[i], before.Buckets[i])
		d.Count += d.Buckets[i]
	}
	d.Sum = time.Duration(sub(uint64(s.Sum), uint64(before.Sum)))
	return d
}

// CumulativeAt returns how many observations are at or below 2^(k/4) s:
// the zero bucket and every bucket with key <= k (exact, since bucket
// bounds are these powers).
func (s *Snapshot) CumulativeAt(k int) uint64 {
	n := s.Zero
	for i := 0; i < NumBuckets && MinKey+i <= k; i++ {
		n += s.Buckets[i]
	}
	return n
}

// Quantile estimates the q-quantile (0 < q <= 1): the upper bound of the
// bucket holding the observation of rank ceil(q×Count), so at most 19 %
// above the true value. 0 when there are no observations, or the rank falls
// in the zero bucket.
func (s *Snapshot) Quantile(q float64) time.Duration {
	if s.Count == 0 || !(q > 0) {
		return 0
	}
	rank := uint64(math.Ceil(min(q, 1) * float64(s.Count)))
	seen := s.Zero
	if seen >= rank {
		return 0
	}
	for i, c := range s.Buckets {
		seen += c
		if seen >= rank {
			return time.Duration(math.Ceil(UpperBound(MinKey+i) * 1e9))
		}
	}
	return time.Duration(math.Ceil(UpperBound(MaxKey) * 1e9))
}
