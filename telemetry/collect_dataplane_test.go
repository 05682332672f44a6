package telemetry

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/dataplane/porttest"
)

func TestPortCollector(t *testing.T) {
	const n, size = 37, 200
	net := porttest.NewNetwork(porttest.NetworkOptions{CEMarkPPM: 1_000_000})
	a, err := net.NewPort(netip.MustParseAddrPort("198.18.0.1:7000"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.NewPort(netip.MustParseAddrPort("198.18.0.2:7000"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	pkts := make([]dataplane.Packet, n)
	for i := range pkts {
		// ECT(0) on the first 10: the network marks them all CE.
		pkts[i] = dataplane.Packet{Buf: make([]byte, size), Addr: b.LocalAddr()}
		if i < 10 {
			pkts[i].TOS = dataplane.ECNECT0
		}
	}
	if sent, err := a.Send(pkts); err != nil || sent != n {
		t.Fatalf("sent %d of %d: %v", sent, n, err)
	}
	b.SetRecvTimeout(5 * time.Second)
	in := make([]dataplane.Packet, 16)
	for i := range in {
		in[i].Buf = make([]byte, 2048)
	}
	for got := 0; got < n; {
		k, err := b.Recv(in)
		if err != nil {
			t.Fatalf("recv after %d: %v", got, err)
		}
		got += k
	}
	ca := NewPortCollector(a, prometheus.Labels{"port": "a"})
	cb := NewPortCollector(b, prometheus.Labels{"port": "b", "kind": "mine"})
	expectSamples(t, scrape(t, ca), map[string]float64{
		`onet_port_tx_packets_total{kind="fake",port="a"}`: n,
		`onet_port_tx_bytes_total{kind="fake",port="a"}`:   n * size,
		`onet_port_tx_dropped_total{kind="fake",port="a"}`: 0,
		`onet_port_rx_packets_total{kind="fake",port="a"}`: 0,
	})
	expectSamples(t, scrape(t, cb), map[string]float64{
		`onet_port_rx_packets_total{kind="mine",port="b"}`:    n,
		`onet_port_rx_bytes_total{kind="mine",port="b"}`:      n * size,
		`onet_port_rx_ce_packets_total{kind="mine",port="b"}`: 10,
		`onet_port_rx_dropped_total{kind="mine",port="b"}`:    0,
		`onet_port_rx_truncated_total{kind="mine",port="b"}`:  0,
		`onet_port_tx_packets_total{kind="mine",port="b"}`:    0,
	})
	if got := testutil.CollectAndCount(ca); got != len(portFields) {
		t.Fatalf("%d samples, want %d", got, len(portFields))
	}
	if got := testutil.CollectAndCount(NewPortCollector(nil, nil)); got != 0 {
		t.Fatalf("nil port: %d samples", got)
	}
	if got := testutil.CollectAndCount(NewAFXDPCollector(nil, nil)); got != 0 {
		t.Fatalf("nil AF_XDP port: %d samples", got)
	}
}
