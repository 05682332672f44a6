package telemetry

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of LatencyHistogramOptions.
const (
	// DefaultLatencyBucketFactor makes neighbouring native buckets at most
	// 10 % apart (the schema chosen is 3: factor 2^(1/8) ≈ 1.09).
	DefaultLatencyBucketFactor = 1.1
	// DefaultLatencyMaxBuckets bounds the native buckets; past it the
	// resolution is halved rather than memory grown.
	DefaultLatencyMaxBuckets = 160
	// DefaultLatencyZeroThreshold: observations at or below 1 ns go to
	// the zero bucket.
	DefaultLatencyZeroThreshold = 1e-9
)

// ErrBadLatencyName: a latency histogram's name must end in _seconds.
var ErrBadLatencyName = errors.New("telemetry: latency histogram name must end in _seconds")

// LatencyHistogramOptions configure NewLatencyHistogram. Owned by the
// caller, read once.
type LatencyHistogramOptions struct {
	// Subsystem and Name make the metric onet_<Subsystem>_<Name>; Name
	// must end in _seconds (for example "write_latency_seconds").
	Subsystem, Name string
	// Help is the metric's help text (required).
	Help string
	// Labels are constant labels.
	Labels prometheus.Labels
	// BucketFactor is the native histogram's growth factor between
	// buckets (> 1); default DefaultLatencyBucketFactor.
	BucketFactor float64
	// MaxBuckets bounds the native buckets; default
	// DefaultLatencyMaxBuckets.
	MaxBuckets uint32
	// ClassicBuckets, when set, adds classic buckets (upper bounds in
	// seconds) for scrapers that cannot read native histograms; by default
	// the histogram is native only (its text exposition then shows only
	// _sum, _count and the +Inf bucket).
	ClassicBuckets []float64
}

// LatencyHistogram is a native Prometheus histogram of durations, in
// seconds, for any layer to feed (RTT samples, completion latencies). It
// is a prometheus.Collector: register it once. Observe is safe from any
// goroutine, lock-free and, once a bucket exists, allocation-free.
type LatencyHistogram struct {
	h prometheus.Histogram
}

var _ prometheus.Collector = (*LatencyHistogram)(nil)

// NewLatencyHistogram returns an empty histogram.
func NewLatencyHistogram(opts LatencyHistogramOptions) (*LatencyHistogram, error) {
	if !strings.HasSuffix(opts.Name, "_seconds") {
		return nil, fmt.Errorf("latency histogram %q: %w", opts.Name, ErrBadLatencyName)
	}
	if opts.Help == "" {
		return nil, fmt.Errorf("latency histogram %q: no help text", opts.Name)
	}
	f := opts.BucketFactor
	if f == 0 {
		f = DefaultLatencyBucketFactor
	}
	if f <= 1 {
		return nil, fmt.Errorf("latency histogram %q: bucket factor %v, want > 1", opts.Name, f)
	}
	maxB := opts.MaxBuckets
	if maxB == 0 {
		maxB = DefaultLatencyMaxBuckets
	}
	for i := 1; i < len(opts.ClassicBuckets); i++ {
		if opts.ClassicBuckets[i] <= opts.ClassicBuckets[i-1] {
			return nil, fmt.Errorf("latency histogram %q: classic buckets not increasing at %d", opts.Name, i)
		}
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace:                       Namespace,
		Subsystem:                       opts.Subsystem,
		Name:                            opts.Name,
		Help:                            opts.Help,
		ConstLabels:                     opts.Labels,
		Buckets:                         append([]float64(nil), opts.ClassicBuckets...),
		NativeHistogramBucketFactor:     f,
		NativeHistogramMaxBucketNumber:  maxB,
		NativeHistogramZeroThreshold:    DefaultLatencyZeroThreshold,
		NativeHistogramMinResetDuration: time.Hour,
	})
	return &LatencyHistogram{h: h}, nil
}

// Observe records one duration.
func (l *LatencyHistogram) Observe(d time.Duration) { l.h.Observe(d.Seconds()) }

// ObserveSeconds records one duration given in seconds.
func (l *LatencyHistogram) ObserveSeconds(s float64) { l.h.Observe(s) }

// Describe implements prometheus.Collector.
func (l *LatencyHistogram) Describe(ch chan<- *prometheus.Desc) { l.h.Describe(ch) }

// Collect implements prometheus.Collector.
func (l *LatencyHistogram) Collect(ch chan<- prometheus.Metric) { l.h.Collect(ch) }
