package lathist

import (
	"math"
	"sync"
	"testing"
	"time"
)

func TestKeyBoundaries(t *testing.T) {
	cases := []struct {
		d    time.Duration
		k    int
		zero bool
	}{
		{0, 0, true},
		{-5, 0, true},
		{time.Nanosecond, MinKey, false},
		{time.Second, 0, false},     // 1 s is the upper bound of bucket 0
		{time.Second + 1, 1, false}, // just above: next bucket
		{2 * time.Second, 4, false}, // 2 s = 2^(4/4)
		{500 * time.Millisecond, -4, false},
		{time.Microsecond, -79, false}, // 2^(-79/4) s = 1.05 µs
		{time.Hour, MaxKey, false},     // clamped
	}
	for _, c := range cases {
		k, ok := Key(c.d)
		if ok == c.zero || (ok && k != c.k) {
			t.Errorf("Key(%v) = %d, %v; want %d, %v", c.d, k, ok, c.k, !c.zero)
		}
	}
	// Every key's own upper bound maps to that key, and a little more to
	// the next one.
	for k := MinKey; k < MaxKey; k++ {
		ub := UpperBound(k)
		d := time.Duration(math.Floor(ub * 1e9))
		if got, _ := Key(d); got != k && float64(d)/1e9 <= ub {
			// d rounded down to whole ns may fall in the bucket below only
			// when it crossed the lower bound, which whole-ns rounding of
			// a >=19 % wide bucket cannot do above 10 ns.
			if ub > 1e-8 {
				t.Errorf("Key(%v) = %d, want %d (upper bound %g s)", d, got, k, ub)
			}
		}
	}
}

func TestObserveSnapshotQuantile(t *testing.T) {
	var h Histogram
	for i := 0; i < 90; i++ {
		h.Observe(10 * time.Microsecond)
	}
	for i := 0; i < 9; i++ {
		h.Observe(100 * time.Microsecond)
	}
	h.Observe(10 * time.Millisecond)
	h.Observe(0)
	s := h.Snapshot()
	if s.Count != 101 || s.Zero != 1 {
		t.Fatalf("count %d zero %d, want 101 and 1", s.Count, s.Zero)
	}
	if want := 90*10*time.Microsecond + 9*100*time.Microsecond + 10*time.Millisecond; s.Sum != want {
		t.Errorf("sum %v, want %v", s.Sum, want)
	}
	within := func(got, want time.Duration) bool {
		return got >= want && float64(got) <= float64(want)*1.19
	}
	if q := s.Quantile(0.5); !within(q, 10*time.Microsecond) {
		t.Errorf("p50 %v, want 10µs..+19%%", q)
	}
	if q := s.Quantile(0.95); !within(q, 100*time.Microsecond) {
		t.Errorf("p95 %v, want 100µs..+19%%", q)
	}
	if q := s.Quantile(1); !within(q, 10*time.Millisecond) {
		t.Errorf("p100 %v, want 10ms..+19%%", q)
	}
	if q := s.Quantile(0.005); q != 0 {
		t.Errorf("p0.5 %v, want 0 (the zero bucket)", q)
	}
	k, _ := Key(10 * time.Microsecond)
	if got := s.CumulativeAt(k); got != 91 {
		t.Errorf("cumulative at 10µs bucket %d, want 91", got)
	}
	if got := s.CumulativeAt(MinKey - 1); got != 1 {
		t.Errorf("cumulative below every bucket %d, want 1 (zero)", got)
	}
	var empty Snapshot
	if q := empty.Quantile(0.5); q != 0 {
		t.Errorf("empty p50 %v", q)
	}
}

func TestSub(t *testing.T) {
	var h Histogram
	h.Observe(time.Millisecond)
	a := h.Snapshot()
	h.Observe(time.Millisecond)
	h.Observe(2 * time.Millisecond)
	d := h.Snapshot().Sub(a)
	if d.Count != 2 || d.Sum != 3*time.Millisecond {
		t.Fatalf("delta count %d sum %v, want 2 and 3ms", d.Count, d.Sum)
	}
	k, _ := Key(time.Millisecond)
	if d.Buckets[k-MinKey] != 1 {
		t.Errorf("delta bucket of 1ms %d, want 1", d.Buckets[k-MinKey])
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	var h Histogram
	d := time.Duration(1)
	if n := testing.AllocsPerRun(1000, func() {
		h.Observe(d)
		d = d*3 + 7
	}); n != 0 {
		t.Fatalf("Observe allocates %v times per call", n)
	}
}

func TestConcurrentObserve(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				h.Observe(time.Duration(i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if s := h.Snapshot(); s.Count != 4000 {
		t.Fatalf("count %d, want 4000", s.Count)
	}
}

func BenchmarkObserve(b *testing.B) {
	var h Histogram
	for i := 0; i < b.N; i++ {
		h.Observe(time.Duration(i))
	}
}
