package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opennetworks/onetdp/telemetry/lldp"
)

// LLDPCollector reports an LLDP agent's counters and neighbour count:
//
//	onet_lldp_sent_total, onet_lldp_send_errors_total
//	onet_lldp_received_total           valid LLDPDUs received
//	onet_lldp_malformed_total          frames dropped because they did not decode
//	onet_lldp_expired_total            neighbours aged out or shut down
//	onet_lldp_neighbors                neighbours in the table now
//
// A nil agent reports nothing. Safe for concurrent scrapes.
type LLDPCollector struct {
	a         *lldp.Agent
	fields    []counterField[lldp.AgentStats]
	neighbors *prometheus.Desc
}

var _ prometheus.Collector = (*LLDPCollector)(nil)

var lldpFields = []fieldSpec[lldp.AgentStats]{
	{"sent_total", "LLDPDUs sent.", func(s *lldp.AgentStats) uint64 { return s.Sent.Load() }},
	{"send_errors_total", "LLDPDUs that failed to send.", func(s *lldp.AgentStats) uint64 { return s.SendErrors.Load() }},
	{"received_total", "Valid LLDPDUs received.", func(s *lldp.AgentStats) uint64 { return s.Received.Load() }},
	{"malformed_total", "LLDP frames dropped because they did not decode.", func(s *lldp.AgentStats) uint64 { return s.Malformed.Load() }},
	{"expired_total", "LLDP neighbours removed after their TTL, or by a shutdown LLDPDU.", func(s *lldp.AgentStats) uint64 { return s.Expired.Load() }},
}

// NewLLDPCollector returns a collector over a's counters.
func NewLLDPCollector(a *lldp.Agent, labels prometheus.Labels) *LLDPCollector {
	return &LLDPCollector{a: a, fields: buildFields("lldp", lldpFields, nil, labels),
		neighbors: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "lldp", "neighbors"), "LLDP neighbours in the table.", nil, labels)}
}

// Describe implements prometheus.Collector.
func (c *LLDPCollector) Describe(ch chan<- *prometheus.Desc) {
	describeFields(ch, c.fields)
	ch <- c.neighbors
}

// Collect implements prometheus.Collector.
func (c *LLDPCollector) Collect(ch chan<- prometheus.Metric) {
	if c.a == nil {
		return
	}
	emitCounters(ch, c.fields, c.a.Stats())
	ch <- prometheus.MustNewConstMetric(c.neighbors, prometheus.GaugeValue, float64(len(c.a.Neighbors())))
}
