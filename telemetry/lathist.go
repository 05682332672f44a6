package telemetry

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/opennetworks/onetdp/internal/lathist"
)

// Classic buckets of histograms exported from a lathist.Snapshot: every
// power of √2 from 2^-20 s (about 0.95 µs) to 2^4 s (16 s), as lathist bucket
// keys (schema 2: key k is the bound 2^(k/4) s). Each is a native bucket
// bound too, so the cumulative counts are exact. histogram_quantile over
// them is at most 41 % off; over the native buckets at most 19 %.
const (
	classicFirstKey = -80
	classicLastKey  = 16
	classicStep     = 2
)

// latHistMetric is a histogram read from a lathist.Snapshot at scrape time,
// carrying both native buckets (schema 2, lathist.ZeroThreshold) for
// Prometheus servers that ingest native histograms through the protobuf
// exposition, and classic buckets for everything that reads the text format
// (histogram_quantile, onetdp top).
type latHistMetric struct {
	desc   *prometheus.Desc
	h      dto.Histogram
	labels []*dto.LabelPair
}

var _ prometheus.Metric = (*latHistMetric)(nil)

// errLabelValues: a histogram was built with the wrong number of label
// values for its description.
var errLabelValues = errors.New("telemetry: wrong number of label values")

// newLatHistMetric builds the metric of s for desc (whose variable labels
// get labelValues).
func newLatHistMetric(desc *prometheus.Desc, varLabels int, s *lathist.Snapshot, labelValues ...string) (prometheus.Metric, error) {
	if len(labelValues) != varLabels {
		return nil, errLabelValues
	}
	m := &latHistMetric{desc: desc, labels: prometheus.MakeLabelPairs(desc, labelValues)}
	h := &m.h
	h.SampleCount = new(s.Count)
	h.SampleSum = new(s.Sum.Seconds())
	for k := classicFirstKey; k <= classicLastKey; k += classicStep {
		h.Bucket = append(h.Bucket, &dto.Bucket{
			UpperBound:      new(lathist.UpperBound(k)),
			CumulativeCount: new(s.CumulativeAt(k)),
		})
	}
	h.Schema = new(int32(lathist.Schema))
	h.ZeroThreshold = new(lathist.ZeroThreshold)
	h.ZeroCount = new(s.Zero)
	h.PositiveSpan, h.PositiveDelta = nativeSpans(s)
	if len(h.PositiveSpan) == 0 {
		// An empty span marks the histogram as native even with no
		// observations outside the zero bucket (client_golang does the same).
		h.PositiveSpan = []*dto.BucketSpan{{Offset: new(int32(0)), Length: new(uint32(0))}}
	}
	return m, nil
}

// nativeSpans encodes the non-empty buckets of s as native-histogram spans
// (runs of consecutive keys; the first offset is the first key, later ones
// the gap after the previous run) and deltas (each count minus the previous
// bucket's, across spans).
func nativeSpans(s *lathist.Snapshot) ([]*dto.BucketSpan, []int64) {
	var (
		spans  []*dto.BucketSpan
		deltas []int64
		prev   int64
		next   = 0 // key one past the previous run
		first  = true
	)
	for i, c := range s.Buckets {
		if c == 0 {
			continue
		}
		k := lathist.MinKey + i
		if first || k != next {
			off := int32(k)
			if !first {
				off = int32(k - next)
			}
			spans = append(spans, &dto.BucketSpan{Offset: new(off), Length: new(uint32(0))})
			first = false
		}
		*spans[len(spans)-1].Length++
		deltas = append(deltas, int64(c)-prev)
		prev = int64(c)
		next = k + 1
	}
	return spans, deltas
}

// Desc implements prometheus.Metric.
func (m *latHistMetric) Desc() *prometheus.Desc { return m.desc }

// Write implements prometheus.Metric.
func (m *latHistMetric) Write(out *dto.Metric) error {
	out.Histogram = &m.h
	out.Label = m.labels
	return nil
}
