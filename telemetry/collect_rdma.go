package telemetry

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opennetworks/onetdp/rdma/rocev2"
	"github.com/opennetworks/onetdp/transport/rdmatransport"
)

// RoCEv2CollectorOptions configure NewRoCEv2Collector. Owned by the
// caller, read once.
type RoCEv2CollectorOptions struct {
	// Labels are constant labels on every metric. The label device is
	// added (the device's Name) unless Labels sets it.
	Labels prometheus.Labels
	// PerQP adds the onet_rocev2_qp_* series, one set per QP (labelled
	// qp): its flow-control state. A scrape then takes each QP's lock once.
	PerQP bool
}

// RoCEv2Collector reports a RoCEv2 engine's Stats as counters, every
// field:
//
//	onet_rocev2_tx_packets_total, onet_rocev2_rx_packets_total
//	onet_rocev2_tx_bytes_total, onet_rocev2_rx_bytes_total (RoCEv2 UDP payload)
//	onet_rocev2_retransmitted_packets_total, onet_rocev2_retransmit_timeouts_total
//	onet_rocev2_seq_naks_sent_total, onet_rocev2_seq_naks_received_total
//	onet_rocev2_rnr_naks_sent_total, onet_rocev2_rnr_naks_received_total
//	onet_rocev2_access_naks_sent_total, onet_rocev2_error_naks_received_total
//	onet_rocev2_acks_sent_total, onet_rocev2_acks_received_total
//	onet_rocev2_duplicate_requests_total
//	onet_rocev2_cnps_sent_total, onet_rocev2_cnps_received_total
//	onet_rocev2_ce_packets_received_total
//	onet_rocev2_icrc_errors_total, onet_rocev2_malformed_packets_total
//	onet_rocev2_unknown_qp_packets_total, onet_rocev2_tx_stalls_total
//
// the latency of successful requests from PostSend to completion, per
// operation class (op: send, write, read, atomic; a class appears once a
// request of it completed), a histogram with native buckets (schema 2,
// buckets at most 19 % wide, for Prometheus with native histograms enabled)
// and classic buckets at powers of √2 from ~1 µs to 16 s (for the text
// format; P50/P95/P99 with histogram_quantile):
//
//	onet_rocev2_operation_latency_seconds{op}
//
// and, with PerQP, per QP:
//
//	onet_rocev2_qp_rate_bits_per_second{qp}   allowed rate (0 unlimited)
//	onet_rocev2_qp_window_bytes{qp}           allowed bytes in flight (0 unlimited)
//	onet_rocev2_qp_inflight_bytes{qp}
//	onet_rocev2_qp_window_packets{qp}         the engine's packet window
//	onet_rocev2_qp_rtt_seconds{qp}            last RTT sample (0 none)
//	onet_rocev2_qp_cnps_received_total{qp}, onet_rocev2_qp_cnps_sent_total{qp}
//	onet_rocev2_qp_losses_total{qp}           go-backs reported to the controller
//
// A nil device reports nothing. The engine's Stats outlive Close, so a
// closed device keeps reporting its final counts; unregister the
// collector when the device goes away. Safe for concurrent scrapes.
type RoCEv2Collector struct {
	d      *rocev2.Device
	fields []counterField[rocev2.Stats]
	perQP  bool
	qp     []qpDesc
	opLat  *prometheus.Desc
}

var _ prometheus.Collector = (*RoCEv2Collector)(nil)

type qpDesc struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	get  func(*rocev2.QPFlowStats) float64
}

func ld(v interface{ Load() uint64 }) uint64 { return v.Load() }

var rocev2Fields = []fieldSpec[rocev2.Stats]{
	{"tx_packets_total", "RoCEv2 packets sent.", func(s *rocev2.Stats) uint64 { return ld(&s.TxPackets) }},
	{"rx_packets_total", "RoCEv2 packets received.", func(s *rocev2.Stats) uint64 { return ld(&s.RxPackets) }},
	{"tx_bytes_total", "RoCEv2 UDP payload bytes sent.", func(s *rocev2.Stats) uint64 { return ld(&s.TxBytes) }},
	{"rx_bytes_total", "RoCEv2 UDP payload bytes received.", func(s *rocev2.Stats) uint64 { return ld(&s.RxBytes) }},
	{"retransmitted_packets_total", "Packets sent again (go-back-N).", func(s *rocev2.Stats) uint64 { return ld(&s.Retransmits) }},
	{"retransmit_timeouts_total", "Retransmission timer expiries.", func(s *rocev2.Stats) uint64 { return ld(&s.Timeouts) }},
	{"seq_naks_sent_total", "PSN sequence error NAKs sent.", func(s *rocev2.Stats) uint64 { return ld(&s.SeqNAKsSent) }},
	{"seq_naks_received_total", "PSN sequence error NAKs received.", func(s *rocev2.Stats) uint64 { return ld(&s.SeqNAKsRcvd) }},
	{"rnr_naks_sent_total", "Receiver-not-ready NAKs sent.", func(s *rocev2.Stats) uint64 { return ld(&s.RNRNAKsSent) }},
	{"rnr_naks_received_total", "Receiver-not-ready NAKs received.", func(s *rocev2.Stats) uint64 { return ld(&s.RNRNAKsRcvd) }},
	{"access_naks_sent_total", "Remote access and invalid request NAKs sent.", func(s *rocev2.Stats) uint64 { return ld(&s.AccessNAKsSent) }},
	{"error_naks_received_total", "NAKs other than sequence and RNR received.", func(s *rocev2.Stats) uint64 { return ld(&s.ErrNAKsRcvd) }},
	{"acks_sent_total", "ACKs sent.", func(s *rocev2.Stats) uint64 { return ld(&s.AcksSent) }},
	{"acks_received_total", "ACKs received.", func(s *rocev2.Stats) uint64 { return ld(&s.AcksRcvd) }},
	{"acks_held_total", "ACKs kept back to go out with the next transmit.", func(s *rocev2.Stats) uint64 { return ld(&s.AcksHeld) }},
	{"duplicate_requests_total", "Duplicate requests received.", func(s *rocev2.Stats) uint64 { return ld(&s.DuplicateRequests) }},
	{"cnps_sent_total", "Congestion notification packets sent.", func(s *rocev2.Stats) uint64 { return ld(&s.CNPsSent) }},
	{"cnps_received_total", "Congestion notification packets received.", func(s *rocev2.Stats) uint64 { return ld(&s.CNPsRcvd) }},
	{"ce_packets_received_total", "Data packets that arrived CE-marked.", func(s *rocev2.Stats) uint64 { return ld(&s.CERcvd) }},
	{"icrc_errors_total", "Packets dropped on receive for a bad ICRC.", func(s *rocev2.Stats) uint64 { return ld(&s.ICRCErrors) }},
	{"malformed_packets_total", "Malformed packets dropped on receive.", func(s *rocev2.Stats) uint64 { return ld(&s.Malformed) }},
	{"unknown_qp_packets_total", "Packets dropped for an unknown or not ready QP.", func(s *rocev2.Stats) uint64 { return ld(&s.UnknownQP) }},
	{"tx_stalls_total", "Port sends that could not take the whole batch.", func(s *rocev2.Stats) uint64 { return ld(&s.TxStalls) }},
}

// NewRoCEv2Collector returns a collector over d's counters.
func NewRoCEv2Collector(d *rocev2.Device, opts RoCEv2CollectorOptions) *RoCEv2Collector {
	labels := opts.Labels
	if _, ok := labels["device"]; !ok && d != nil {
		labels = addLabel(labels, "device", d.Name())
	}
	c := &RoCEv2Collector{d: d, perQP: opts.PerQP, fields: buildFields("rocev2", rocev2Fields, nil, labels),
		opLat: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "rocev2", "operation_latency_seconds"),
			"Time from posting a work request to its successful completion, by operation class.", []string{"op"}, labels)}
	if opts.PerQP {
		qd := func(name, help string, typ prometheus.ValueType, get func(*rocev2.QPFlowStats) float64) qpDesc {
			return qpDesc{prometheus.NewDesc(prometheus.BuildFQName(Namespace, "rocev2", name), help, []string{"qp"}, labels), typ, get}
		}
		c.qp = []qpDesc{
			qd("qp_rate_bits_per_second", "The QP's allowed rate from its flow controller (0 unlimited).", prometheus.GaugeValue, func(s *rocev2.QPFlowStats) float64 { return s.Rate }),
			qd("qp_window_bytes", "The QP's allowed bytes in flight from its flow controller (0 unlimited).", prometheus.GaugeValue, func(s *rocev2.QPFlowStats) float64 { return float64(s.Window) }),
			qd("qp_inflight_bytes", "The QP's unacknowledged request bytes (packets times path MTU).", prometheus.GaugeValue, func(s *rocev2.QPFlowStats) float64 { return float64(s.InFlight) }),
			qd("qp_window_packets", "The engine's packet window of the QP.", prometheus.GaugeValue, func(s *rocev2.QPFlowStats) float64 { return float64(s.PacketWindow) }),
			qd("qp_rtt_seconds", "The QP's last RTT sample (0 none yet).", prometheus.GaugeValue, func(s *rocev2.QPFlowStats) float64 { return s.RTT.Seconds() }),
			qd("qp_cnps_received_total", "CNPs heard by the QP's reaction point.", prometheus.CounterValue, func(s *rocev2.QPFlowStats) float64 { return float64(s.CNPsRcvd) }),
			qd("qp_cnps_sent_total", "CNPs sent by the QP's notification point.", prometheus.CounterValue, func(s *rocev2.QPFlowStats) float64 { return float64(s.CNPsSent) }),
			qd("qp_losses_total", "Go-backs reported to the QP's flow controller.", prometheus.CounterValue, func(s *rocev2.QPFlowStats) float64 { return float64(s.Losses) }),
		}
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *RoCEv2Collector) Describe(ch chan<- *prometheus.Desc) {
	describeFields(ch, c.fields)
	ch <- c.opLat
	for _, q := range c.qp {
		ch <- q.desc
	}
}

// Collect implements prometheus.Collector.
func (c *RoCEv2Collector) Collect(ch chan<- prometheus.Metric) {
	if c.d == nil {
		return
	}
	st := c.d.Stats()
	emitCounters(ch, c.fields, st)
	for _, op := range rocev2.OpClasses() {
		snap := st.OpLatency[op].Snapshot()
		if snap.Count == 0 {
			continue
		}
		m, err := newLatHistMetric(c.opLat, 1, &snap, op.String())
		if err != nil {
			m = prometheus.NewInvalidMetric(c.opLat, err)
		}
		ch <- m
	}
	if !c.perQP {
		return
	}
	c.d.EachQPFlowStats(func(qpn uint32, s rocev2.QPFlowStats) {
		lv := strconv.FormatUint(uint64(qpn), 10)
		for _, q := range c.qp {
			ch <- prometheus.MustNewConstMetric(q.desc, q.typ, q.get(&s), lv)
		}
	})
}

// RDMATransportCollector reports an rdmatransport.Transport's Stats:
//
//	onet_rdmatransport_eager_sends_total, onet_rdmatransport_eager_receives_total
//	onet_rdmatransport_rendezvous_sends_total, onet_rdmatransport_rendezvous_receives_total
//	onet_rdmatransport_converted_sends_total   eager-sized sent by rendezvous (credits low)
//	onet_rdmatransport_credit_messages_total
//	onet_rdmatransport_size_mismatches_total
//	onet_rdmatransport_peers_lost_total
//	onet_rdmatransport_malformed_messages_total
//
// A nil transport reports nothing; a closed one keeps its final counts.
// Safe for concurrent scrapes.
type RDMATransportCollector struct {
	t      *rdmatransport.Transport
	fields []counterField[rdmatransport.Stats]
}

var _ prometheus.Collector = (*RDMATransportCollector)(nil)

var rdmaTransportFields = []fieldSpec[rdmatransport.Stats]{
	{"eager_sends_total", "Messages sent by copying through eager slots.", func(s *rdmatransport.Stats) uint64 { return ld(&s.EagerSends) }},
	{"eager_receives_total", "Messages received through eager slots.", func(s *rdmatransport.Stats) uint64 { return ld(&s.EagerRecvs) }},
	{"rendezvous_sends_total", "Messages written straight into the receiver's buffer.", func(s *rdmatransport.Stats) uint64 { return ld(&s.RendezvousSends) }},
	{"rendezvous_receives_total", "Messages received by rendezvous.", func(s *rdmatransport.Stats) uint64 { return ld(&s.RendezvousRecvs) }},
	{"converted_sends_total", "Eager-sized messages sent by rendezvous because the peer's credits ran low.", func(s *rdmatransport.Stats) uint64 { return ld(&s.Converted) }},
	{"credit_messages_total", "Explicit credit returns sent.", func(s *rdmatransport.Stats) uint64 { return ld(&s.CreditMessages) }},
	{"size_mismatches_total", "Messages whose size did not match the posted receive.", func(s *rdmatransport.Stats) uint64 { return ld(&s.SizeMismatches) }},
	{"peers_lost_total", "Peers lost.", func(s *rdmatransport.Stats) uint64 { return ld(&s.PeersLost) }},
	{"malformed_messages_total", "Messages from a peer that made no sense, dropped.", func(s *rdmatransport.Stats) uint64 { return ld(&s.Malformed) }},
}

// NewRDMATransportCollector returns a collector over t's counters.
func NewRDMATransportCollector(t *rdmatransport.Transport, labels prometheus.Labels) *RDMATransportCollector {
	return &RDMATransportCollector{t: t, fields: buildFields("rdmatransport", rdmaTransportFields, nil, labels)}
}

// Describe implements prometheus.Collector.
func (c *RDMATransportCollector) Describe(ch chan<- *prometheus.Desc) { describeFields(ch, c.fields) }

// Collect implements prometheus.Collector.
func (c *RDMATransportCollector) Collect(ch chan<- prometheus.Metric) {
	if c.t == nil {
		return
	}
	emitCounters(ch, c.fields, c.t.Stats())
}
