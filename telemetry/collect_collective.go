package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opennetworks/onetdp/collective"
)

// CollectiveCollector reports a communicator's operations: counts, errors
// and bytes per operation kind (label op), and their latency as a
// histogram with power-of-two buckets from 1 µs to 64 s
// (onet_collective_operation_duration_seconds; histogram_quantile gives
// P50/P95/P99).
type CollectiveCollector struct {
	s        *collective.Stats
	fields   []counterField[collective.OpStats]
	duration *prometheus.Desc
}

var _ prometheus.Collector = (*CollectiveCollector)(nil)

// Latency buckets reported: 2^10 ns (~1 µs) .. 2^36 ns (~69 s); faster
// operations fall in the first, slower ones only in +Inf.
const (
	collectiveFirstBucket = 9
	collectiveLastBucket  = 35
)

// NewCollectiveCollector reads s (Communicator.Stats()); labels are
// constant labels (for example {"rank": "0"}). A nil s reports nothing.
func NewCollectiveCollector(s *collective.Stats, labels prometheus.Labels) *CollectiveCollector {
	specs := []fieldSpec[collective.OpStats]{
		{"operations_total", "Collective operations completed, with or without error.", func(o *collective.OpStats) uint64 { return o.Completed.Load() }},
		{"errors_total", "Collective operations that failed.", func(o *collective.OpStats) uint64 { return o.Errors.Load() }},
		{"bytes_total", "Bytes of completed collective operations (nccl-tests' size).", func(o *collective.OpStats) uint64 { return o.Bytes.Load() }},
	}
	return &CollectiveCollector{
		s:      s,
		fields: buildFields("collective", specs, []string{"op"}, labels),
		duration: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "collective", "operation_duration_seconds"),
			"Time from the start of a collective operation's execution to its end.", []string{"op"}, labels),
	}
}

// Describe implements prometheus.Collector.
func (c *CollectiveCollector) Describe(ch chan<- *prometheus.Desc) {
	describeFields(ch, c.fields)
	ch <- c.duration
}

// Collect implements prometheus.Collector: one series set per operation
// kind that ran at least once.
func (c *CollectiveCollector) Collect(ch chan<- prometheus.Metric) {
	if c.s == nil {
		return
	}
	for _, k := range collective.OpKinds() {
		o := &c.s.Ops[k]
		if o.Completed.Load() == 0 {
			continue
		}
		emitCounters(ch, c.fields, o, k.String())
		counts, sum := o.Latency.Snapshot()
		var total, cum uint64
		for _, n := range counts {
			total += n
		}
		buckets := make(map[float64]uint64, collectiveLastBucket-collectiveFirstBucket+1)
		for i, n := range counts {
			cum += n
			if i >= collectiveFirstBucket && i <= collectiveLastBucket {
				buckets[collective.BucketUpperBound(i).Seconds()] = cum
			}
		}
		ch <- prometheus.MustNewConstHistogram(c.duration, total, sum.Seconds(), buckets, k.String())
	}
}
