package main

import (
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/telemetry"
)

const topRingsAndOps = `# TYPE onet_afxdp_rx_ring_entries gauge
onet_afxdp_rx_ring_entries{interface="eth0"} 600
onet_afxdp_rx_ring_entries{interface="eth1"} 400
# TYPE onet_afxdp_ring_size_entries gauge
onet_afxdp_ring_size_entries{interface="eth0"} 2048
onet_afxdp_ring_size_entries{interface="eth1"} 2048
# TYPE onet_afxdp_send_queue_depth_frames gauge
onet_afxdp_send_queue_depth_frames{interface="eth0"} 7
# TYPE onet_afxdp_umem_free_frames gauge
onet_afxdp_umem_free_frames{interface="eth0"} 2000
# TYPE onet_afxdp_umem_frames gauge
onet_afxdp_umem_frames{interface="eth0"} 4096
# TYPE onet_rocev2_operation_latency_seconds histogram
onet_rocev2_operation_latency_seconds_bucket{device="d",op="write",le="0.0001"} 90
onet_rocev2_operation_latency_seconds_bucket{device="d",op="write",le="0.001"} 100
onet_rocev2_operation_latency_seconds_bucket{device="d",op="write",le="+Inf"} 100
onet_rocev2_operation_latency_seconds_sum{device="d",op="write"} 0.01
onet_rocev2_operation_latency_seconds_count{device="d",op="write"} 100
onet_rocev2_operation_latency_seconds_bucket{device="d",op="read",le="0.0001"} 0
onet_rocev2_operation_latency_seconds_bucket{device="d",op="read",le="0.001"} 10
onet_rocev2_operation_latency_seconds_bucket{device="d",op="read",le="+Inf"} 10
onet_rocev2_operation_latency_seconds_sum{device="d",op="read"} 0.005
onet_rocev2_operation_latency_seconds_count{device="d",op="read"} 10
`

// TestTopViewAgentCongestion: the agent's congestion verdict replaces
// top's own CE check in the warnings area, its figures and the AF_XDP
// rings show in the congestion block, and RoCEv2 latencies get a row per
// operation with P50/P95/P99.
func TestTopViewAgentCongestion(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := topTestSample(t, t0, 1000, 0, 0, 10000, 10, [4]int{0, 0, 0, 0}, 0)
	cur := topTestSample(t, t0.Add(2*time.Second), 3000, 100, 0, 30000, 30, [4]int{50, 100, 100, 100}, 1000)
	extra, err := parseMetricsText(strings.NewReader(topRingsAndOps))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		cur.Metrics[k] = v
	}
	ce, ring := 0.05, 1000.0/4096
	cur.Status.Congestion = &telemetry.CongestionState{
		IntervalSeconds: 1, CERatio: &ce, RingOccupancy: &ring,
		Thresholds: telemetry.CongestionThresholds{CERatio: 0.02, RingOccupancy: 0.5, RetransmitRatio: 0.001},
		Warnings:   []telemetry.CongestionWarning{{Kind: "ce", Value: 0.05, Threshold: 0.02, Message: "CE ratio 5.00 % above 2.00 %"}},
	}
	v := computeTopView(prev, cur, sortByRate, 10)
	if want := []string{"congestion: CE ratio 5.00 % above 2.00 %"}; strings.Join(v.Warnings, ";") != strings.Join(want, ";") {
		t.Fatalf("warnings %q, want %q (the agent's verdict, not top's own)", v.Warnings, want)
	}
	if r := v.Rings; r == nil || r.RxRing != 1000 || r.RingSize != 4096 || r.SendQueue != 7 || r.UMEMFree != 2000 {
		t.Fatalf("rings %+v", v.Rings)
	}
	var names []string
	for _, l := range v.Latency {
		names = append(names, l.Name)
	}
	if want := "onet_collective_operation_duration_seconds allreduce;onet_rocev2_operation_latency_seconds read;onet_rocev2_operation_latency_seconds write"; strings.Join(names, ";") != want {
		t.Fatalf("latency rows %q", names)
	}
	w := v.Latency[2]
	if w.Count != 100 || w.P50 >= 0.0001 || w.P95 <= 0.0001 || w.P99 > 0.001 {
		t.Fatalf("write latency %+v", w)
	}
	out := renderTop(v)
	for _, s := range []string{"agent: CE ratio 5.00 % (max 2.00 %)   rx ring 24.41 % (max 50.00 %)",
		"AF_XDP: rx ring 1000/4096   send queue 7 frames   UMEM free 2000/4096 frames",
		"! congestion: CE ratio 5.00 % above 2.00 %", "p95 "} {
		if !strings.Contains(out, s) {
			t.Errorf("frame lacks %q:\n%s", s, out)
		}
	}
	// No warning from the agent: none in top either, though the interval's
	// CE share (5 %) is above top's own 1 %.
	cur.Status.Congestion.Warnings = nil
	if v := computeTopView(prev, cur, sortByRate, 10); len(v.Warnings) != 0 {
		t.Fatalf("warnings %q with a quiet agent", v.Warnings)
	}
}
