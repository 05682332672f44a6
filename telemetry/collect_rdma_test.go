package telemetry

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma/rocev2"
	"github.com/opennetworks/onetdp/transport/rdmatransport"
)

// rdmaPair is two RoCEv2 engines on a fake network with a transport each.
func rdmaPair(t *testing.T) ([2]*rocev2.Device, []*rdmatransport.Transport) {
	t.Helper()
	net := porttest.NewNetwork(porttest.NetworkOptions{MTU: 4200, QueueLen: 8192})
	var devs [2]*rocev2.Device
	for i := range devs {
		port, err := net.NewPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), rocev2.UDPPort))
		if err != nil {
			t.Fatal(err)
		}
		d, err := rocev2.Open(rocev2.Options{Port: port})
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = d
		t.Cleanup(func() { d.Close() })
	}
	store := collective.NewMemStore()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prefix := fmt.Sprintf("telemetry-%d", time.Now().UnixNano())
	tr := collectivetest.OpenGroup(t, 2, func(i int) (*rdmatransport.Transport, error) {
		return rdmatransport.New(ctx, rdmatransport.Options{Device: devs[i], Store: store, Rank: i, Size: 2, Prefix: prefix})
	})
	return devs, tr
}

func TestRoCEv2AndTransportCollectors(t *testing.T) {
	devs, tr := rdmaPair(t)
	const eager, rendezvous = 5, 2
	sizes := []int{}
	for range eager {
		sizes = append(sizes, 1024)
	}
	for range rendezvous {
		sizes = append(sizes, 1<<20)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var total int
	for i, n := range sizes {
		total += n
		src, dst := make([]byte, n), make([]byte, n)
		rr, err := tr[1].Irecv(0, collective.Tag(i), dst)
		if err != nil {
			t.Fatal(err)
		}
		sr, err := tr[0].Isend(1, collective.Tag(i), src)
		if err != nil {
			t.Fatal(err)
		}
		if err := rr.Wait(ctx); err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		if err := sr.Wait(ctx); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}

	// Per-QP series while the QPs exist: 8 series per QP, packet window
	// at its default (no losses on this network).
	qc := NewRoCEv2Collector(devs[0], RoCEv2CollectorOptions{PerQP: true})
	got := scrape(t, qc)
	qps := 0
	for k, v := range got {
		if strings.HasPrefix(k, "onet_rocev2_qp_window_packets{") {
			qps++
			if v != 256 {
				t.Errorf("%s = %v, want 256", k, v)
			}
		}
	}
	if qps == 0 {
		t.Fatal("no per-QP series")
	}
	lat := latencySeries(got)
	if lat == 0 {
		t.Fatal("no onet_rocev2_operation_latency_seconds series after sends completed")
	}
	if n := len(got); n != len(rocev2Fields)+8*qps+lat {
		t.Fatalf("%d samples, want %d counters + 8 x %d QPs + %d latency histograms", n, len(rocev2Fields), qps, lat)
	}

	for _, x := range tr {
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range devs {
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// The transports: exactly what was sent.
	expectSamples(t, scrape(t, NewRDMATransportCollector(tr[0], prometheus.Labels{"rank": "0"})), map[string]float64{
		`onet_rdmatransport_eager_sends_total{rank="0"}`:        eager,
		`onet_rdmatransport_rendezvous_sends_total{rank="0"}`:   rendezvous,
		`onet_rdmatransport_eager_receives_total{rank="0"}`:     0,
		`onet_rdmatransport_malformed_messages_total{rank="0"}`: 0,
	})
	expectSamples(t, scrape(t, NewRDMATransportCollector(tr[1], prometheus.Labels{"rank": "1"})), map[string]float64{
		`onet_rdmatransport_eager_receives_total{rank="1"}`:      eager,
		`onet_rdmatransport_rendezvous_receives_total{rank="1"}`: rendezvous,
		`onet_rdmatransport_eager_sends_total{rank="1"}`:         0,
	})

	// The engines, now still: every field equals Stats.
	for i, d := range devs {
		c := NewRoCEv2Collector(d, RoCEv2CollectorOptions{Labels: prometheus.Labels{"host": "h"}})
		got := scrape(t, c)
		if n := len(got) - latencySeries(got); n != len(rocev2Fields) {
			t.Fatalf("device %d: %d counter samples, want %d", i, n, len(rocev2Fields))
		}
		want := statsByName(d.Stats(), `{device="`+d.Name()+`",host="h"}`)
		if len(want) != len(rocev2Fields) {
			t.Fatalf("Stats has %d fields, the collector %d: a field is missing", len(want), len(rocev2Fields))
		}
		expectSamples(t, got, want)
	}
	if got := scrape(t, NewRoCEv2Collector(devs[0], RoCEv2CollectorOptions{}))[`onet_rocev2_tx_bytes_total{device="`+devs[0].Name()+`"}`]; got < float64(total) {
		t.Fatalf("tx bytes %v < %d bytes of messages", got, total)
	}
	if n := testutil.CollectAndCount(NewRoCEv2Collector(nil, RoCEv2CollectorOptions{PerQP: true})); n != 0 {
		t.Fatalf("nil device: %d samples", n)
	}
	if n := testutil.CollectAndCount(NewRDMATransportCollector(nil, nil)); n != 0 {
		t.Fatalf("nil transport: %d samples", n)
	}
}

// latencySeries counts the operation latency histograms in a scrape.
func latencySeries(got map[string]float64) int {
	n := 0
	for k := range got {
		if strings.HasPrefix(k, "onet_rocev2_operation_latency_seconds{") {
			n++
		}
	}
	return n
}

// statsByName maps every rocev2.Stats field, by reflection, to the metric
// name the collector should give it.
func statsByName(s *rocev2.Stats, labels string) map[string]float64 {
	names := map[string]string{
		"TxPackets": "tx_packets_total", "RxPackets": "rx_packets_total",
		"TxBytes": "tx_bytes_total", "RxBytes": "rx_bytes_total",
		"Retransmits": "retransmitted_packets_total", "Timeouts": "retransmit_timeouts_total",
		"SeqNAKsSent": "seq_naks_sent_total", "SeqNAKsRcvd": "seq_naks_received_total",
		"RNRNAKsSent": "rnr_naks_sent_total", "RNRNAKsRcvd": "rnr_naks_received_total",
		"AccessNAKsSent": "access_naks_sent_total", "ErrNAKsRcvd": "error_naks_received_total",
		"AcksSent": "acks_sent_total", "AcksRcvd": "acks_received_total",
		"AcksHeld":          "acks_held_total",
		"DuplicateRequests": "duplicate_requests_total",
		"CNPsSent":          "cnps_sent_total", "CNPsRcvd": "cnps_received_total",
		"CERcvd": "ce_packets_received_total", "ICRCErrors": "icrc_errors_total",
		"Malformed": "malformed_packets_total", "UnknownQP": "unknown_qp_packets_total",
		"TxStalls": "tx_stalls_total",
	}
	out := map[string]float64{}
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Name == "OpLatency" { // histograms, not counters: TestRoCEv2OperationLatency
			continue
		}
		n, ok := names[f.Name]
		if !ok {
			n = "UNMAPPED_" + f.Name
		}
		load := v.Field(i).Addr().MethodByName("Load")
		out["onet_rocev2_"+n+labels] = float64(load.Call(nil)[0].Uint())
	}
	return out
}
