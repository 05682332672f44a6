package telemetry

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/dataplane"
)

// PortCollector reports a dataplane port's PortStats (read with atomic
// loads at scrape time):
//
//	onet_port_tx_packets_total, onet_port_tx_bytes_total (UDP payload)
//	onet_port_tx_dropped_total
//	onet_port_rx_packets_total, onet_port_rx_bytes_total (UDP payload)
//	onet_port_rx_dropped_total, onet_port_rx_truncated_total
//	onet_port_rx_ce_packets_total
//
// Every metric carries the constant label kind (Caps().Kind: "af_xdp",
// "udp", "fake") unless labels set it. A port's Stats outlive Close, so a
// closed port keeps reporting its final counts; unregister the collector
// when the port goes away. Safe for concurrent scrapes.
type PortCollector struct {
	stats  *dataplane.PortStats
	fields []counterField[dataplane.PortStats]
}

var _ prometheus.Collector = (*PortCollector)(nil)

var portFields = []fieldSpec[dataplane.PortStats]{
	{"tx_packets_total", "Datagrams the port handed to the kernel or device.", func(s *dataplane.PortStats) uint64 { return s.TxPackets.Load() }},
	{"tx_bytes_total", "UDP payload bytes of tx_packets_total.", func(s *dataplane.PortStats) uint64 { return s.TxBytes.Load() }},
	{"tx_dropped_total", "Datagrams accepted by Send but lost before the wire.", func(s *dataplane.PortStats) uint64 { return s.TxDropped.Load() }},
	{"rx_packets_total", "Datagrams the port delivered.", func(s *dataplane.PortStats) uint64 { return s.RxPackets.Load() }},
	{"rx_bytes_total", "UDP payload bytes of rx_packets_total.", func(s *dataplane.PortStats) uint64 { return s.RxBytes.Load() }},
	{"rx_dropped_total", "Frames received but not delivered (malformed, not for us).", func(s *dataplane.PortStats) uint64 { return s.RxDropped.Load() }},
	{"rx_truncated_total", "Datagrams larger than the receiver's buffer, dropped.", func(s *dataplane.PortStats) uint64 { return s.RxTruncated.Load() }},
	{"rx_ce_packets_total", "Delivered datagrams that arrived CE-marked.", func(s *dataplane.PortStats) uint64 { return s.RxCE.Load() }},
}

// NewPortCollector returns a collector over p's Stats; p may be nil
// (nothing is reported).
func NewPortCollector(p dataplane.Port, labels prometheus.Labels) *PortCollector {
	c := &PortCollector{}
	if p != nil {
		c.stats = p.Stats()
		if _, ok := labels["kind"]; !ok {
			labels = addLabel(labels, "kind", p.Caps().Kind)
		}
	}
	c.fields = buildFields("port", portFields, nil, labels)
	return c
}

// Describe implements prometheus.Collector.
func (c *PortCollector) Describe(ch chan<- *prometheus.Desc) { describeFields(ch, c.fields) }

// Collect implements prometheus.Collector.
func (c *PortCollector) Collect(ch chan<- prometheus.Metric) {
	if c.stats == nil {
		return
	}
	emitCounters(ch, c.fields, c.stats)
}

// AFXDPCollector reports the kernel's XDP_STATISTICS summed over an
// AF_XDP port's sockets:
//
//	onet_afxdp_rx_dropped_total           frames the kernel dropped (rx ring or fill ring)
//	onet_afxdp_rx_invalid_descs_total
//	onet_afxdp_tx_invalid_descs_total
//	onet_afxdp_rx_ring_full_total         dropped for want of rx ring space
//	onet_afxdp_fill_ring_empty_total      times the fill ring was empty
//	onet_afxdp_tx_ring_empty_total        times the tx ring was empty
//
// and, as gauges from the port's RingStats (the rings as the port's own
// goroutines last saw them, read without a lock):
//
//	onet_afxdp_rx_ring_entries            rx ring occupancy (descriptors waiting)
//	onet_afxdp_fill_ring_entries          frames on the fill rings
//	onet_afxdp_tx_ring_entries            descriptors the kernel has not taken off the tx ring
//	onet_afxdp_send_queue_depth_frames    frames sent and not yet completed (send-queue depth)
//	onet_afxdp_ring_size_entries          descriptors per ring, times the sockets
//	onet_afxdp_umem_frames                UMEM frames
//	onet_afxdp_umem_free_frames           UMEM frames on no ring and not in flight
//
// A nil or closed port reports nothing. The port's PortStats and its
// dispatcher are separate collectors (NewPortCollector, NewXDPCollector
// on p.Dispatcher()). Safe for concurrent scrapes.
type AFXDPCollector struct {
	p      *dataplane.AFXDPPort
	fields []counterField[unix.XDPStatistics]
	rings  []counterField[dataplane.AFXDPRingStats]
}

var _ prometheus.Collector = (*AFXDPCollector)(nil)

var afxdpFields = []fieldSpec[unix.XDPStatistics]{
	{"rx_dropped_total", "Frames the kernel dropped before the AF_XDP rx ring (no rx ring or fill ring space).", func(s *unix.XDPStatistics) uint64 { return s.Rx_dropped }},
	{"rx_invalid_descs_total", "Invalid descriptors on the AF_XDP rx side.", func(s *unix.XDPStatistics) uint64 { return s.Rx_invalid_descs }},
	{"tx_invalid_descs_total", "Invalid descriptors on the AF_XDP tx ring.", func(s *unix.XDPStatistics) uint64 { return s.Tx_invalid_descs }},
	{"rx_ring_full_total", "Frames dropped because the AF_XDP rx ring was full.", func(s *unix.XDPStatistics) uint64 { return s.Rx_ring_full }},
	{"fill_ring_empty_total", "Times the kernel found the AF_XDP fill ring empty.", func(s *unix.XDPStatistics) uint64 { return s.Rx_fill_ring_empty_descs }},
	{"tx_ring_empty_total", "Times the kernel found the AF_XDP tx ring empty.", func(s *unix.XDPStatistics) uint64 { return s.Tx_ring_empty_descs }},
}

var afxdpRingFields = []fieldSpec[dataplane.AFXDPRingStats]{
	{"rx_ring_entries", "Descriptors waiting on the AF_XDP rx rings when the port last looked (rx ring occupancy).", func(s *dataplane.AFXDPRingStats) uint64 { return uint64(s.RxRing) }},
	{"fill_ring_entries", "Frames on the AF_XDP fill rings for the kernel to receive into.", func(s *dataplane.AFXDPRingStats) uint64 { return uint64(s.FillRing) }},
	{"tx_ring_entries", "Descriptors on the AF_XDP tx ring not yet taken by the kernel.", func(s *dataplane.AFXDPRingStats) uint64 { return uint64(s.TxRing) }},
	{"send_queue_depth_frames", "Frames handed to the kernel for sending whose completions are not reaped yet.", func(s *dataplane.AFXDPRingStats) uint64 { return uint64(s.TxInFlight) }},
	{"ring_size_entries", "Descriptors per AF_XDP ring, summed over the port's sockets.", func(s *dataplane.AFXDPRingStats) uint64 { return uint64(s.RingSize * s.Queues) }},
	{"umem_frames", "Frames of the port's UMEMs.", func(s *dataplane.AFXDPRingStats) uint64 { return uint64(s.UMEMFrames) }},
	{"umem_free_frames", "UMEM frames on no ring and not in flight.", func(s *dataplane.AFXDPRingStats) uint64 { return uint64(s.UMEMFreeFrames) }},
}

// NewAFXDPCollector returns a collector over p's socket statistics and
// ring occupancy.
func NewAFXDPCollector(p *dataplane.AFXDPPort, labels prometheus.Labels) *AFXDPCollector {
	return &AFXDPCollector{p: p, fields: buildFields("afxdp", afxdpFields, nil, labels),
		rings: buildFields("afxdp", afxdpRingFields, nil, labels)}
}

// Describe implements prometheus.Collector.
func (c *AFXDPCollector) Describe(ch chan<- *prometheus.Desc) {
	describeFields(ch, c.fields)
	describeFields(ch, c.rings)
}

// Collect implements prometheus.Collector.
func (c *AFXDPCollector) Collect(ch chan<- prometheus.Metric) {
	if c.p == nil {
		return
	}
	st, err := c.p.XDPStats()
	if errors.Is(err, dataplane.ErrClosed) {
		return
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.fields[0].desc, err)
		return
	}
	emitCounters(ch, c.fields, &st)
	rs, err := c.p.RingStats()
	if err != nil { // closed since XDPStats
		return
	}
	for _, f := range c.rings {
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, float64(f.get(&rs)))
	}
}
