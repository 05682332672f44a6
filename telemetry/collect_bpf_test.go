package telemetry

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opennetworks/onetdp/bpf"
	internaltest "github.com/opennetworks/onetdp/internal/testutil"
)

// udp4Frame is an Ethernet+IPv4+UDP frame with the given ECN bits and
// payload.
func udp4Frame(src, dst netip.Addr, sport, dport uint16, ecn uint8, payload []byte) []byte {
	b := make([]byte, 14+20+8+len(payload))
	copy(b, []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00})
	ip := b[14:]
	ip[0] = 0x45
	ip[1] = ecn & 3
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8] = 64
	ip[9] = 17
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	u := ip[20:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload)
	return b
}

// bthPayload is a RoCEv2 SEND ONLY to qp with n payload bytes and an ICRC slot.
func bthPayload(qp uint32, n int) []byte {
	b := make([]byte, 12+n+4)
	b[0] = 0x04
	binary.BigEndian.PutUint16(b[2:], 0xffff)
	b[5], b[6], b[7] = byte(qp>>16), byte(qp>>8), byte(qp)
	b[11] = 1
	return b
}

var (
	tSrc = netip.MustParseAddr("198.18.0.1")
	tDst = netip.MustParseAddr("198.18.0.2")
)

const tOnetPort = 9999

func loadDispatcher(t *testing.T) *bpf.Dispatcher {
	t.Helper()
	internaltest.RequireRoot(t)
	d, err := bpf.Load(bpf.DispatcherOptions{OnetPort: tOnetPort})
	if err != nil {
		t.Fatalf("load dispatcher: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func run(t *testing.T, d *bpf.Dispatcher, frame []byte, n int) {
	t.Helper()
	for range n {
		if _, err := d.TestRun(frame); err != nil {
			t.Fatal(err)
		}
	}
}

// driveDispatcher sends a known mix through d: 5 onet frames (2 CE) of
// 142 bytes, 3 RoCEv2 frames of 78 bytes to QP 0x11 (2 fault-dropped), one
// other UDP frame and one malformed frame of 52 bytes.
func driveDispatcher(t *testing.T, d *bpf.Dispatcher) {
	t.Helper()
	run(t, d, udp4Frame(tSrc, tDst, 5000, tOnetPort, 0, make([]byte, 100)), 3)
	run(t, d, udp4Frame(tSrc, tDst, 5000, tOnetPort, 3, make([]byte, 100)), 2)
	roce := udp4Frame(tSrc, tDst, 0xc001, 4791, 2, bthPayload(0x11, 20))
	run(t, d, roce, 1)
	if err := d.SetFault(bpf.ClassRoCEv2, 1_000_000); err != nil {
		t.Fatal(err)
	}
	run(t, d, roce, 2)
	other := udp4Frame(tSrc, tDst, 5000, 53, 0, make([]byte, 10))
	run(t, d, other, 1)
	bad := append([]byte(nil), other...)
	bad[14] = 0x43 // IHL 3
	run(t, d, bad, 1)
}

const xdpHelp = `# HELP onet_xdp_ce_packets_total Frames whose IP ECN field was CE.
# TYPE onet_xdp_ce_packets_total counter
onet_xdp_ce_packets_total{class="onet",interface="eth9"} 2
onet_xdp_ce_packets_total{class="other",interface="eth9"} 0
onet_xdp_ce_packets_total{class="rocev2",interface="eth9"} 0
# HELP onet_xdp_fault_drops_total Frames dropped by fault injection.
# TYPE onet_xdp_fault_drops_total counter
onet_xdp_fault_drops_total{class="onet",interface="eth9"} 0
onet_xdp_fault_drops_total{class="other",interface="eth9"} 0
onet_xdp_fault_drops_total{class="rocev2",interface="eth9"} 2
# HELP onet_xdp_parse_errors_total Malformed frames, passed to the kernel untouched.
# TYPE onet_xdp_parse_errors_total counter
onet_xdp_parse_errors_total{class="onet",interface="eth9"} 0
onet_xdp_parse_errors_total{class="other",interface="eth9"} 1
onet_xdp_parse_errors_total{class="rocev2",interface="eth9"} 0
# HELP onet_xdp_redirect_failures_total Frames that could not be redirected to an AF_XDP socket and went to the kernel.
# TYPE onet_xdp_redirect_failures_total counter
onet_xdp_redirect_failures_total{class="onet",interface="eth9"} 5
onet_xdp_redirect_failures_total{class="other",interface="eth9"} 0
onet_xdp_redirect_failures_total{class="rocev2",interface="eth9"} 1
# HELP onet_xdp_rx_bytes_total Bytes of the frames in rx_packets_total (Ethernet header included, FCS not).
# TYPE onet_xdp_rx_bytes_total counter
onet_xdp_rx_bytes_total{class="onet",interface="eth9"} 710
onet_xdp_rx_bytes_total{class="other",interface="eth9"} 104
onet_xdp_rx_bytes_total{class="rocev2",interface="eth9"} 234
# HELP onet_xdp_rx_packets_total Frames the XDP dispatcher classified into the class (including dropped and unredirected ones).
# TYPE onet_xdp_rx_packets_total counter
onet_xdp_rx_packets_total{class="onet",interface="eth9"} 5
onet_xdp_rx_packets_total{class="other",interface="eth9"} 2
onet_xdp_rx_packets_total{class="rocev2",interface="eth9"} 3
# HELP onet_xdp_flows Flows in the XDP dispatcher's flow table.
# TYPE onet_xdp_flows gauge
onet_xdp_flows{interface="eth9"} 2
`

const xdpFlowsAll = `# HELP onet_xdp_flow_bytes Bytes of one of the largest flows (by bytes) seen by the XDP dispatcher.
# TYPE onet_xdp_flow_bytes gauge
onet_xdp_flow_bytes{class="onet",dport="9999",dst="198.18.0.2",interface="eth9",qp="0",sport="5000",src="198.18.0.1"} 710
onet_xdp_flow_bytes{class="rocev2",dport="4791",dst="198.18.0.2",interface="eth9",qp="17",sport="49153",src="198.18.0.1"} 234
# HELP onet_xdp_flow_packets Packets of one of the largest flows (by bytes) seen by the XDP dispatcher.
# TYPE onet_xdp_flow_packets gauge
onet_xdp_flow_packets{class="onet",dport="9999",dst="198.18.0.2",interface="eth9",qp="0",sport="5000",src="198.18.0.1"} 5
onet_xdp_flow_packets{class="rocev2",dport="4791",dst="198.18.0.2",interface="eth9",qp="17",sport="49153",src="198.18.0.1"} 3
`

func TestXDPCollector(t *testing.T) {
	d := loadDispatcher(t)
	labels := prometheus.Labels{"interface": "eth9"}
	c := NewXDPCollector(d, XDPCollectorOptions{Labels: labels})
	if n := testutil.CollectAndCount(c, "onet_xdp_flows"); n != 1 {
		t.Fatalf("fresh dispatcher: %d onet_xdp_flows samples, want 1", n)
	}
	driveDispatcher(t, d)
	if err := testutil.CollectAndCompare(c, strings.NewReader(xdpHelp+xdpFlowsAll)); err != nil {
		t.Fatal(err)
	}
	// The collector is consistent with its descriptions (pedantic registry).
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("pedantic gather: %v", err)
	}

	// Top 1: only the larger flow.
	c1 := NewXDPCollector(d, XDPCollectorOptions{Labels: labels, TopFlows: 1})
	if err := testutil.CollectAndCompare(c1, strings.NewReader(xdpFlowsAll), "onet_xdp_flow_bytes"); err == nil {
		t.Fatal("top 1 reported both flows")
	}
	if got := testutil.CollectAndCount(c1, "onet_xdp_flow_bytes"); got != 1 {
		t.Fatalf("top 1: %d flow_bytes samples", got)
	}
	// No flows at all.
	c0 := NewXDPCollector(d, XDPCollectorOptions{Labels: labels, TopFlows: -1})
	if got := testutil.CollectAndCount(c0, "onet_xdp_flow_bytes", "onet_xdp_flow_packets"); got != 0 {
		t.Fatalf("top -1: %d flow samples", got)
	}
	if err := testutil.CollectAndCompare(c0, strings.NewReader(xdpHelp)); err != nil {
		t.Fatal(err)
	}

	// Closed: nothing at all.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Fatalf("closed dispatcher: %d samples, want 0", n)
	}
}

func TestXDPCollectorNil(t *testing.T) {
	if n := testutil.CollectAndCount(NewXDPCollector(nil, XDPCollectorOptions{})); n != 0 {
		t.Fatalf("nil dispatcher: %d samples", n)
	}
	if n := testutil.CollectAndCount(NewECNMarkerCollector(nil, nil)); n != 0 {
		t.Fatalf("nil marker: %d samples", n)
	}
}

func TestTopFlows(t *testing.T) {
	k := func(p uint16) bpf.FlowKey { return bpf.FlowKey{Src: tSrc, Dst: tDst, SrcPort: p, DstPort: 1} }
	s := func(b uint64) bpf.FlowStats { return bpf.FlowStats{Bytes: b, Packets: 1} }
	top := topFlows{max: 3}
	for i, b := range []uint64{10, 50, 20, 5, 40, 30} {
		top.offer(k(uint16(i)), s(b))
	}
	// Flow 2 (20 bytes) seen again with 60: moves to the top.
	top.offer(k(2), s(60))
	// Flow 1 seen again with less: drops below 40.
	top.offer(k(1), s(35))
	want := []uint16{2, 4, 1}
	wantB := []uint64{60, 40, 35}
	if len(top.flows) != 3 {
		t.Fatalf("kept %d flows", len(top.flows))
	}
	for i := range want {
		if top.flows[i].key.SrcPort != want[i] || top.flows[i].stats.Bytes != wantB[i] {
			t.Fatalf("flows = %+v, want ports %v bytes %v", top.flows, want, wantB)
		}
	}
}

func TestECNMarkerCollector(t *testing.T) {
	internaltest.RequireRoot(t)
	// Kmax 0: every IP packet is at or above Kmax. 8 kbit/s drains 1 byte
	// per ms, so the queue holds almost everything sent.
	m, err := bpf.LoadECNMarker(bpf.ECNMarkerOptions{RateBps: 8000, PmaxPPM: 100_000})
	if err != nil {
		t.Fatalf("load ecn marker: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	mark := func(frame []byte, n int) {
		for range n {
			if _, _, err := m.TestRun(frame); err != nil {
				t.Fatal(err)
			}
		}
	}
	ect := udp4Frame(tSrc, tDst, 1, 2, 2, make([]byte, 58)) // 100 bytes
	mark(ect, 3)
	mark(udp4Frame(tSrc, tDst, 1, 2, 0, make([]byte, 58)), 2)
	mark(udp4Frame(tSrc, tDst, 1, 2, 3, make([]byte, 58)), 1)
	arp := make([]byte, 60)
	arp[12], arp[13] = 0x08, 0x06
	mark(arp, 1)
	c := NewECNMarkerCollector(m, prometheus.Labels{"interface": "eth9"})
	want := `# HELP onet_ecnmark_already_ce_packets_total IP packets that already carried CE.
# TYPE onet_ecnmark_already_ce_packets_total counter
onet_ecnmark_already_ce_packets_total{interface="eth9"} 1
# HELP onet_ecnmark_bytes_total Bytes (skb->len) of the frames seen by the ECN marker.
# TYPE onet_ecnmark_bytes_total counter
onet_ecnmark_bytes_total{interface="eth9"} 660
# HELP onet_ecnmark_ce_marked_packets_total ECT packets the marker set to CE.
# TYPE onet_ecnmark_ce_marked_packets_total counter
onet_ecnmark_ce_marked_packets_total{interface="eth9"} 3
# HELP onet_ecnmark_ect_packets_total IP packets with ECT(0) or ECT(1).
# TYPE onet_ecnmark_ect_packets_total counter
onet_ecnmark_ect_packets_total{interface="eth9"} 3
# HELP onet_ecnmark_not_ect_over_packets_total Not-ECT packets that would have been marked, sent unchanged.
# TYPE onet_ecnmark_not_ect_over_packets_total counter
onet_ecnmark_not_ect_over_packets_total{interface="eth9"} 2
# HELP onet_ecnmark_packets_total Frames seen by the ECN marker.
# TYPE onet_ecnmark_packets_total counter
onet_ecnmark_packets_total{interface="eth9"} 7
# HELP onet_ecnmark_parse_skipped_packets_total Frames that were not IP or had a malformed IP header.
# TYPE onet_ecnmark_parse_skipped_packets_total counter
onet_ecnmark_parse_skipped_packets_total{interface="eth9"} 1
`
	names := []string{}
	for _, f := range ecnFields {
		names = append(names, "onet_ecnmark_"+f.name)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	q := testutil.ToFloat64(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		mc := make(chan prometheus.Metric, 16)
		c.Collect(mc)
		close(mc)
		for x := range mc {
			if x.Desc() == c.queue {
				ch <- x
			}
		}
	}))
	// 660 bytes entered; at most a few drained (1 byte/ms) since.
	if q > 660 || q < 600 {
		t.Fatalf("onet_ecnmark_queue_bytes = %v, want 600..660", q)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Fatalf("closed marker: %d samples", n)
	}
}
