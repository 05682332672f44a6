package telemetry

// Collectors over every layer's plain Stats, read at scrape time (no
// goroutines of their own). Each takes its source and constant labels
// (for example {"interface": "eth0"}). A nil source reports nothing, never
// zeros; so does a closed dispatcher, ECN marker or AF_XDP port. Ports,
// RoCEv2 devices and transports keep their Stats after Close and keep
// reporting the final counts: unregister their collectors with them.
// Within one registry, every collector of a kind must use the same label
// names (client_golang refuses, at Register, one metric name with two
// label sets); the values must differ.
//
//	NewXDPCollector(d *bpf.Dispatcher, opts XDPCollectorOptions) *XDPCollector        // onet_xdp_*
//	NewECNMarkerCollector(m *bpf.ECNMarker, labels prometheus.Labels) *ECNMarkerCollector // onet_ecnmark_*
//	NewPortCollector(p dataplane.Port, labels prometheus.Labels) *PortCollector       // onet_port_*
//	NewAFXDPCollector(p *dataplane.AFXDPPort, labels prometheus.Labels) *AFXDPCollector // onet_afxdp_*
//	NewRoCEv2Collector(d *rocev2.Device, opts RoCEv2CollectorOptions) *RoCEv2Collector // onet_rocev2_*
//	NewRDMATransportCollector(t *rdmatransport.Transport, labels prometheus.Labels) *RDMATransportCollector // onet_rdmatransport_*
//	NewLinkCollector(opts LinkCollectorOptions) *LinkCollector                        // onet_link_*
//	NewLatencyHistogram(opts LatencyHistogramOptions) (*LatencyHistogram, error)     // native histogram, onet_<subsystem>_<name>_seconds

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opennetworks/onetdp/bpf"
)

// DefaultTopFlows is XDPCollectorOptions.TopFlows when left 0.
const DefaultTopFlows = 20

// XDPCollectorOptions configure NewXDPCollector. Owned by the caller, read
// once.
type XDPCollectorOptions struct {
	// Labels are constant labels on every metric (typically
	// {"interface": ifname}).
	Labels prometheus.Labels
	// TopFlows is how many flows (the largest by bytes) are reported as
	// onet_xdp_flow_* gauges; default DefaultTopFlows, negative for none.
	TopFlows int
}

// XDPCollector reports an XDP dispatcher's per-class counters and its
// largest flows:
//
//	onet_xdp_rx_packets_total{class}         every frame classified
//	onet_xdp_rx_bytes_total{class}
//	onet_xdp_ce_packets_total{class}         frames that arrived CE-marked
//	onet_xdp_redirect_failures_total{class}  not redirected to an AF_XDP socket
//	onet_xdp_parse_errors_total{class}       malformed frames
//	onet_xdp_fault_drops_total{class}        dropped by fault injection
//	onet_xdp_flows                           flows in the flow table
//	onet_xdp_flow_packets{class,src,dst,sport,dport,qp}  top flows by bytes
//	onet_xdp_flow_bytes{class,src,dst,sport,dport,qp}
//
// Safe for concurrent scrapes.
type XDPCollector struct {
	d      *bpf.Dispatcher
	top    int
	fields []counterField[bpf.ClassCounters]
	flows  *prometheus.Desc
	flowP  *prometheus.Desc
	flowB  *prometheus.Desc
}

var _ prometheus.Collector = (*XDPCollector)(nil)

var xdpFields = []fieldSpec[bpf.ClassCounters]{
	{"rx_packets_total", "Frames the XDP dispatcher classified into the class (including dropped and unredirected ones).", func(c *bpf.ClassCounters) uint64 { return c.Packets }},
	{"rx_bytes_total", "Bytes of the frames in rx_packets_total (Ethernet header included, FCS not).", func(c *bpf.ClassCounters) uint64 { return c.Bytes }},
	{"ce_packets_total", "Frames whose IP ECN field was CE.", func(c *bpf.ClassCounters) uint64 { return c.CE }},
	{"redirect_failures_total", "Frames that could not be redirected to an AF_XDP socket and went to the kernel.", func(c *bpf.ClassCounters) uint64 { return c.RedirectFail }},
	{"parse_errors_total", "Malformed frames, passed to the kernel untouched.", func(c *bpf.ClassCounters) uint64 { return c.ParseErr }},
	{"fault_drops_total", "Frames dropped by fault injection.", func(c *bpf.ClassCounters) uint64 { return c.FaultDrop }},
}

var flowLabels = []string{"class", "src", "dst", "sport", "dport", "qp"}

// NewXDPCollector returns a collector over d; d may be nil (nothing is
// reported) and may be closed later (nothing is reported from then on).
func NewXDPCollector(d *bpf.Dispatcher, opts XDPCollectorOptions) *XDPCollector {
	top := opts.TopFlows
	if top == 0 {
		top = DefaultTopFlows
	}
	if top < 0 {
		top = 0
	}
	name := func(n string) string { return prometheus.BuildFQName(Namespace, "xdp", n) }
	return &XDPCollector{
		d:      d,
		top:    top,
		fields: buildFields("xdp", xdpFields, []string{"class"}, opts.Labels),
		flows:  prometheus.NewDesc(name("flows"), "Flows in the XDP dispatcher's flow table.", nil, opts.Labels),
		flowP:  prometheus.NewDesc(name("flow_packets"), "Packets of one of the largest flows (by bytes) seen by the XDP dispatcher.", flowLabels, opts.Labels),
		flowB:  prometheus.NewDesc(name("flow_bytes"), "Bytes of one of the largest flows (by bytes) seen by the XDP dispatcher.", flowLabels, opts.Labels),
	}
}

// Describe implements prometheus.Collector.
func (c *XDPCollector) Describe(ch chan<- *prometheus.Desc) {
	describeFields(ch, c.fields)
	ch <- c.flows
	if c.top > 0 {
		ch <- c.flowP
		ch <- c.flowB
	}
}

// Collect implements prometheus.Collector.
func (c *XDPCollector) Collect(ch chan<- prometheus.Metric) {
	if c.d == nil {
		return
	}
	counters, err := c.d.Counters()
	if errors.Is(err, bpf.ErrClosed) {
		return
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.fields[0].desc, err)
		return
	}
	for cl := bpf.Class(0); cl < bpf.NumClasses; cl++ {
		emitCounters(ch, c.fields, &counters[cl], cl.String())
	}
	top := topFlows{max: c.top}
	n := 0
	err = c.d.Flows(func(k bpf.FlowKey, s bpf.FlowStats) bool {
		n++
		top.offer(k, s)
		return true
	})
	if errors.Is(err, bpf.ErrClosed) {
		return
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.flows, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.flows, prometheus.GaugeValue, float64(n))
	for _, f := range top.flows {
		lv := []string{f.key.Class.String(), f.key.Src.String(), f.key.Dst.String(),
			strconv.Itoa(int(f.key.SrcPort)), strconv.Itoa(int(f.key.DstPort)), strconv.FormatUint(uint64(f.key.QP), 10)}
		ch <- prometheus.MustNewConstMetric(c.flowP, prometheus.GaugeValue, float64(f.stats.Packets), lv...)
		ch <- prometheus.MustNewConstMetric(c.flowB, prometheus.GaugeValue, float64(f.stats.Bytes), lv...)
	}
}

// topFlows keeps the max largest flows by bytes, largest first. A flow
// offered twice (the table walk may see one twice) keeps its last value.
type topFlows struct {
	max   int
	flows []flowEntry
}

type flowEntry struct {
	key   bpf.FlowKey
	stats bpf.FlowStats
}

func (t *topFlows) offer(k bpf.FlowKey, s bpf.FlowStats) {
	if t.max <= 0 {
		return
	}
	i := -1
	for j := range t.flows {
		if t.flows[j].key == k {
			i = j
			break
		}
	}
	switch {
	case i >= 0:
		t.flows[i].stats = s
	case len(t.flows) < t.max:
		t.flows = append(t.flows, flowEntry{k, s})
		i = len(t.flows) - 1
	case s.Bytes > t.flows[len(t.flows)-1].stats.Bytes:
		i = len(t.flows) - 1
		t.flows[i] = flowEntry{k, s}
	default:
		return
	}
	// Restore the order around i (its bytes may have moved either way).
	for i > 0 && t.flows[i].stats.Bytes > t.flows[i-1].stats.Bytes {
		t.flows[i], t.flows[i-1] = t.flows[i-1], t.flows[i]
		i--
	}
	for i+1 < len(t.flows) && t.flows[i].stats.Bytes < t.flows[i+1].stats.Bytes {
		t.flows[i], t.flows[i+1] = t.flows[i+1], t.flows[i]
		i++
	}
}

// ECNMarkerCollector reports an ECN marker's counters and phantom queue:
//
//	onet_ecnmark_packets_total, onet_ecnmark_bytes_total    every frame seen
//	onet_ecnmark_ect_packets_total                          ECT(0)/ECT(1) IP packets
//	onet_ecnmark_ce_marked_packets_total                    marked CE by the program
//	onet_ecnmark_not_ect_over_packets_total                 Not-ECT that would have been marked
//	onet_ecnmark_already_ce_packets_total
//	onet_ecnmark_parse_skipped_packets_total
//	onet_ecnmark_queue_bytes                                phantom queue now
//
// Safe for concurrent scrapes.
type ECNMarkerCollector struct {
	m      *bpf.ECNMarker
	fields []counterField[bpf.ECNCounters]
	queue  *prometheus.Desc
}

var _ prometheus.Collector = (*ECNMarkerCollector)(nil)

var ecnFields = []fieldSpec[bpf.ECNCounters]{
	{"packets_total", "Frames seen by the ECN marker.", func(c *bpf.ECNCounters) uint64 { return c.Packets }},
	{"bytes_total", "Bytes (skb->len) of the frames seen by the ECN marker.", func(c *bpf.ECNCounters) uint64 { return c.Bytes }},
	{"ect_packets_total", "IP packets with ECT(0) or ECT(1).", func(c *bpf.ECNCounters) uint64 { return c.ECT }},
	{"ce_marked_packets_total", "ECT packets the marker set to CE.", func(c *bpf.ECNCounters) uint64 { return c.CEMarked }},
	{"not_ect_over_packets_total", "Not-ECT packets that would have been marked, sent unchanged.", func(c *bpf.ECNCounters) uint64 { return c.NotECTOver }},
	{"already_ce_packets_total", "IP packets that already carried CE.", func(c *bpf.ECNCounters) uint64 { return c.AlreadyCE }},
	{"parse_skipped_packets_total", "Frames that were not IP or had a malformed IP header.", func(c *bpf.ECNCounters) uint64 { return c.ParseSkipped }},
}

// NewECNMarkerCollector returns a collector over m; m may be nil (nothing
// is reported) or closed later (nothing is reported from then on).
func NewECNMarkerCollector(m *bpf.ECNMarker, labels prometheus.Labels) *ECNMarkerCollector {
	return &ECNMarkerCollector{
		m:      m,
		fields: buildFields("ecnmark", ecnFields, nil, labels),
		queue:  prometheus.NewDesc(prometheus.BuildFQName(Namespace, "ecnmark", "queue_bytes"), "The ECN marker's phantom queue length now.", nil, labels),
	}
}

// Describe implements prometheus.Collector.
func (c *ECNMarkerCollector) Describe(ch chan<- *prometheus.Desc) {
	describeFields(ch, c.fields)
	ch <- c.queue
}

// Collect implements prometheus.Collector.
func (c *ECNMarkerCollector) Collect(ch chan<- prometheus.Metric) {
	if c.m == nil {
		return
	}
	cs, err := c.m.Counters()
	if errors.Is(err, bpf.ErrClosed) {
		return
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.fields[0].desc, err)
		return
	}
	q, err := c.m.QueueBytes()
	if errors.Is(err, bpf.ErrClosed) {
		return
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.queue, err)
		return
	}
	emitCounters(ch, c.fields, &cs)
	ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(q))
}
