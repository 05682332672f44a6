package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// counterField is one counter read from a plain stats struct S at scrape
// time: its description and how to read it.
type counterField[S any] struct {
	desc *prometheus.Desc
	get  func(*S) uint64
}

// fieldSpec names a field before the descriptions are built.
type fieldSpec[S any] struct {
	name, help string
	get        func(*S) uint64
}

// buildFields turns specs into counters named onet_<subsystem>_<name>,
// with the given variable and constant labels.
func buildFields[S any](subsystem string, specs []fieldSpec[S], varLabels []string, constLabels prometheus.Labels) []counterField[S] {
	out := make([]counterField[S], len(specs))
	for i, s := range specs {
		out[i] = counterField[S]{
			desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, subsystem, s.name), s.help, varLabels, constLabels),
			get:  s.get,
		}
	}
	return out
}

// emitCounters sends every field of s as a counter with the given label
// values.
func emitCounters[S any](ch chan<- prometheus.Metric, fields []counterField[S], s *S, labelValues ...string) {
	for _, f := range fields {
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.CounterValue, float64(f.get(s)), labelValues...)
	}
}

// describeFields sends the fields' descriptions.
func describeFields[S any](ch chan<- *prometheus.Desc, fields []counterField[S]) {
	for _, f := range fields {
		ch <- f.desc
	}
}

// addLabel returns a copy of base with name=value added.
func addLabel(base prometheus.Labels, name, value string) prometheus.Labels {
	out := make(prometheus.Labels, len(base)+1)
	for k, v := range base {
		out[k] = v
	}
	out[name] = value
	return out
}
