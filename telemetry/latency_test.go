package telemetry

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestLatencyHistogram(t *testing.T) {
	l, err := NewLatencyHistogram(LatencyHistogramOptions{Subsystem: "rocev2", Name: "write_latency_seconds", Help: "WRITE completion latency.", Labels: prometheus.Labels{"device": "d0"}})
	if err != nil {
		t.Fatal(err)
	}
	obs := []time.Duration{5 * time.Microsecond, 5 * time.Microsecond, 10 * time.Microsecond, 1 * time.Millisecond, 0}
	var sum float64
	for _, d := range obs {
		l.Observe(d)
		sum += d.Seconds()
	}
	l.ObserveSeconds(0.25)
	sum += 0.25
	reg := prometheus.NewPedanticRegistry() // Describe and Collect must agree
	reg.MustRegister(l)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "onet_rocev2_write_latency_seconds" || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gather: %v %v", mfs, err)
	}
	h := mfs[0].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != uint64(len(obs)+1) || math.Abs(h.GetSampleSum()-sum) > 1e-12 {
		t.Fatalf("count %d sum %v, want %d %v", h.GetSampleCount(), h.GetSampleSum(), len(obs)+1, sum)
	}
	// Factor 1.1 -> schema 3 (2^(2^-3) ≈ 1.09); the 0 went to the zero bucket.
	if h.GetSchema() != 3 || h.GetZeroCount() != 1 || h.GetZeroThreshold() != DefaultLatencyZeroThreshold {
		t.Fatalf("schema %d zero count %d threshold %v", h.GetSchema(), h.GetZeroCount(), h.GetZeroThreshold())
	}
	// Native only: no classic buckets.
	if len(h.GetBucket()) != 0 {
		t.Fatalf("%d classic buckets, want none", len(h.GetBucket()))
	}
	// Four distinct non-zero values, 5µs twice: four native buckets whose
	// counts add up to 5.
	var buckets int
	var total int64
	for _, s := range h.GetPositiveSpan() {
		buckets += int(s.GetLength())
	}
	var run int64
	for _, d := range h.GetPositiveDelta() {
		run += d
		total += run
	}
	if buckets != 4 || total != 5 {
		t.Fatalf("%d native buckets holding %d, want 4 holding 5", buckets, total)
	}
	// Observing into existing buckets does not allocate.
	if a := testing.AllocsPerRun(1000, func() { l.Observe(5 * time.Microsecond) }); a != 0 {
		t.Fatalf("Observe allocates %v times", a)
	}
}

func TestLatencyHistogramClassicAndErrors(t *testing.T) {
	l, err := NewLatencyHistogram(LatencyHistogramOptions{Name: "x_seconds", Help: "x", ClassicBuckets: []float64{1e-5, 1e-3}})
	if err != nil {
		t.Fatal(err)
	}
	l.Observe(2 * time.Microsecond)
	l.Observe(20 * time.Microsecond)
	l.Observe(time.Second)
	reg := prometheus.NewRegistry()
	reg.MustRegister(l)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gather: %v %v", mfs, err)
	}
	b := mfs[0].GetMetric()[0].GetHistogram().GetBucket()
	if len(b) != 2 || b[0].GetCumulativeCount() != 1 || b[1].GetCumulativeCount() != 2 {
		t.Fatalf("classic buckets %v", b)
	}
	if _, err := NewLatencyHistogram(LatencyHistogramOptions{Name: "x_ms", Help: "x"}); !errors.Is(err, ErrBadLatencyName) {
		t.Fatalf("name without _seconds: %v", err)
	}
	for _, o := range []LatencyHistogramOptions{
		{Name: "x_seconds"},
		{Name: "x_seconds", Help: "x", BucketFactor: 0.5},
		{Name: "x_seconds", Help: "x", ClassicBuckets: []float64{1, 1}},
	} {
		if _, err := NewLatencyHistogram(o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
	}
}
