package telemetry

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

// scrapeHTTP serves reg over httptest and returns every sample line of the
// text exposition as key (name and labels, as written) -> value.
func scrapeHTTP(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s: %.2000s", resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLabAFXDPScrape sends n datagrams between AF_XDP ports in a 2-host
// lab and checks the counts on a scrape over HTTP.
func TestLabAFXDPScrape(t *testing.T) {
	const n, size, udpPort = 500, 256, 4799
	l := labtest.New(t, lab.Options{})
	var ports [2]*dataplane.AFXDPPort
	for i := range ports {
		h := &l.Hosts[i]
		err := h.Do(func() error {
			var err error
			ports[i], err = dataplane.NewAFXDPPort(dataplane.AFXDPOptions{Ifname: h.Ifname, Local: netip.AddrPortFrom(h.Addr.Addr(), udpPort)})
			return err
		})
		if err != nil {
			t.Fatalf("AF_XDP port on %s: %v", h.Name, err)
		}
		p := ports[i]
		t.Cleanup(func() { p.Close() })
	}
	a, b := ports[0], ports[1]
	h0, h1 := prometheus.Labels{"host": "h0", "interface": l.Hosts[0].Ifname}, prometheus.Labels{"host": "h1", "interface": l.Hosts[1].Ifname}
	reg, err := NewRegistry(
		NewXDPCollector(b.Dispatcher(), XDPCollectorOptions{Labels: h1}),
		NewAFXDPCollector(b, h1),
		NewAFXDPCollector(a, h0),
		NewPortCollector(a, h0),
		NewPortCollector(b, h1),
		NewLinkCollector(LinkCollectorOptions{Interfaces: []string{l.Hosts[1].Ifname}, Do: l.Hosts[1].Do, Labels: prometheus.Labels{"host": "h1"}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	before := scrapeHTTP(t, reg)

	// Lockstep: a batch out, the batch in, so no ring overflows.
	const batch = 50
	out := make([]dataplane.Packet, batch)
	for i := range out {
		out[i] = dataplane.Packet{Buf: make([]byte, size), Addr: b.LocalAddr()}
	}
	in := make([]dataplane.Packet, batch)
	for i := range in {
		in[i].Buf = make([]byte, 0, 2048)
	}
	b.SetRecvTimeout(5 * time.Second)
	received := 0
	for sent := 0; sent < n; sent += batch {
		for off := 0; off < batch; {
			k, err := a.Send(out[off:])
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			off += k
		}
		for received < sent+batch {
			k, err := b.Recv(in)
			if err != nil {
				t.Fatalf("recv after %d of %d: %v", received, sent+batch, err)
			}
			received += k
		}
	}
	if received != n {
		t.Fatalf("received %d, want %d", received, n)
	}
	// One more look finds the rx ring empty.
	b.SetRecvTimeout(20 * time.Millisecond)
	if _, err := b.Recv(in); !errors.Is(err, dataplane.ErrTimeout) {
		t.Fatalf("recv on an empty ring: %v, want ErrTimeout", err)
	}

	got := scrapeHTTP(t, reg)
	frame := 14 + 20 + 8 + size
	expectSamples(t, got, map[string]float64{
		`onet_xdp_rx_packets_total{class="onet",host="h1",interface="eth0"}`:        n,
		`onet_xdp_rx_bytes_total{class="onet",host="h1",interface="eth0"}`:          n * float64(frame),
		`onet_xdp_redirect_failures_total{class="onet",host="h1",interface="eth0"}`: 0,
		`onet_xdp_fault_drops_total{class="onet",host="h1",interface="eth0"}`:       0,
		`onet_xdp_rx_packets_total{class="rocev2",host="h1",interface="eth0"}`:      0,
		`onet_xdp_flows{host="h1",interface="eth0"}`:                                1,
		`onet_afxdp_rx_dropped_total{host="h1",interface="eth0"}`:                   0,
		`onet_afxdp_rx_ring_full_total{host="h1",interface="eth0"}`:                 0,
		`onet_port_tx_packets_total{host="h0",interface="eth0",kind="af_xdp"}`:      n,
		`onet_port_tx_bytes_total{host="h0",interface="eth0",kind="af_xdp"}`:        n * size,
		`onet_port_rx_packets_total{host="h1",interface="eth0",kind="af_xdp"}`:      n,
		`onet_port_rx_bytes_total{host="h1",interface="eth0",kind="af_xdp"}`:        n * size,
		`onet_port_rx_dropped_total{host="h1",interface="eth0",kind="af_xdp"}`:      0,
	})
	// Rings: the receiver's fill rings hold every rx frame again, the
	// sender's last batch waits for its completions to be reaped.
	r0, r1 := `{host="h0",interface="eth0"}`, `{host="h1",interface="eth0"}`
	expectSamples(t, got, map[string]float64{
		`onet_afxdp_rx_ring_entries` + r1:         0,
		`onet_afxdp_fill_ring_entries` + r1:       got[`onet_afxdp_ring_size_entries`+r1],
		`onet_afxdp_umem_free_frames` + r1:        got[`onet_afxdp_umem_frames`+r1] / 2,
		`onet_afxdp_send_queue_depth_frames` + r1: 0,
		`onet_afxdp_send_queue_depth_frames` + r0: batch,
		`onet_afxdp_tx_ring_entries` + r0:         0,
		`onet_afxdp_umem_free_frames` + r0:        got[`onet_afxdp_umem_frames`+r0]/2 - batch,
		`onet_afxdp_ring_size_entries` + r0:       got[`onet_afxdp_umem_frames`+r0] / 2, // default RingSize NumFrames/2
	})
	if got[`onet_afxdp_umem_frames`+r1] < 4096 {
		t.Errorf("umem frames %v, want at least the default 4096", got[`onet_afxdp_umem_frames`+r1])
	}
	flowKey := `onet_xdp_flow_packets{class="onet",dport="4799",dst="` + l.Hosts[1].Addr.Addr().String() +
		`",host="h1",interface="eth0",qp="0",sport="4799",src="` + l.Hosts[0].Addr.Addr().String() + `"}`
	if v, ok := got[flowKey]; !ok || v != n {
		t.Errorf("%s = %v (present %v), want %d", flowKey, v, ok, n)
	}
	// The kernel saw the frames on the link too (ARP besides).
	rx := `onet_link_rx_packets_total{host="h1",interface="eth0"}`
	if d := got[rx] - before[rx]; d < n || d > n+5 {
		t.Errorf("%s grew by %v, want %d..%d", rx, d, n, n+5)
	}
	if t.Failed() {
		for k, v := range got {
			if strings.HasPrefix(k, "onet_") {
				t.Logf("%s %v", k, v)
			}
		}
	}

	// Closed ports: the XDP and AF_XDP series go away.
	b.Close()
	got = scrapeHTTP(t, reg)
	for k := range got {
		if (strings.HasPrefix(k, "onet_xdp_") || strings.HasPrefix(k, "onet_afxdp_")) && strings.Contains(k, `host="h1"`) {
			t.Fatalf("closed port still reports %s", k)
		}
	}
}

// TestLabLinkCollector checks interface statistics in a lab host's
// namespace against netlink read around the scrape.
func TestLabLinkCollector(t *testing.T) {
	const n, size = 200, 100
	l := labtest.New(t, lab.Options{})
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	var rc, tc *net.UDPConn
	if err := h1.Do(func() (err error) {
		rc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: h1.Addr.Addr().AsSlice(), Port: 7001})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := h0.Do(func() (err error) {
		tc, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: h1.Addr.Addr().AsSlice(), Port: 7001})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tc.Close()

	c := NewLinkCollector(LinkCollectorOptions{Interfaces: []string{h1.Ifname, "nope0"}, Do: h1.Do, Labels: prometheus.Labels{"host": "h1"}})
	key := func(m string) string { return "onet_link_" + m + `{host="h1",interface="` + h1.Ifname + `"}` }
	before := scrape(t, c)
	if len(before) != len(linkFields) {
		t.Fatalf("%d samples, want %d (the absent interface must be left out)", len(before), len(linkFields))
	}
	buf := make([]byte, size)
	rc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range n {
		if _, err := tc.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Read(buf); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	read := func() *netlink.LinkStatistics {
		var st *netlink.LinkStatistics
		if err := h1.Do(func() error {
			link, err := netlink.LinkByName(h1.Ifname)
			if err != nil {
				return err
			}
			st = link.Attrs().Statistics
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return st
	}
	lo := read()
	got := scrape(t, c)
	hi := read()
	check := func(m string, lo, hi uint64) {
		if v := got[key(m)]; v < float64(lo) || v > float64(hi) {
			t.Errorf("%s = %v, netlink read %d before and %d after", key(m), v, lo, hi)
		}
	}
	check("rx_packets_total", lo.RxPackets, hi.RxPackets)
	check("rx_bytes_total", lo.RxBytes, hi.RxBytes)
	check("tx_packets_total", lo.TxPackets, hi.TxPackets)
	check("tx_bytes_total", lo.TxBytes, hi.TxBytes)
	check("rx_dropped_total", lo.RxDropped, hi.RxDropped)
	// n datagrams arrived (plus at most an ARP exchange).
	if d := got[key("rx_packets_total")] - before[key("rx_packets_total")]; d < n || d > n+3 {
		t.Errorf("rx packets grew by %v, want %d..%d", d, n, n+3)
	}
	if d := got[key("rx_bytes_total")] - before[key("rx_bytes_total")]; d < n*(14+20+8+size) {
		t.Errorf("rx bytes grew by %v, want at least %d", d, n*(14+20+8+size))
	}

	// All links: lo and the host interface.
	all := scrape(t, NewLinkCollector(LinkCollectorOptions{Do: h1.Do}))
	for _, ifname := range []string{"lo", h1.Ifname} {
		if _, ok := all[`onet_link_rx_packets_total{interface="`+ifname+`"}`]; !ok {
			t.Errorf("all links: no series for %s", ifname)
		}
	}
	// A failing Do makes the scrape fail, not report zeros.
	bad := NewLinkCollector(LinkCollectorOptions{Do: func(func() error) error { return errors.New("no such namespace") }})
	reg := prometheus.NewRegistry()
	reg.MustRegister(bad)
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "no such namespace") {
		t.Fatalf("gather with failing Do: %v", err)
	}
}
