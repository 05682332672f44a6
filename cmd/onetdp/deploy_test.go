package main

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opennetworks/onetdp/telemetry"
	"github.com/opennetworks/onetdp/telemetry/system"
)

// declaredMetricNames builds every telemetry collector (over nil sources,
// which report nothing but still describe their metrics) and returns the
// names their descriptions declare.
func declaredMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	cs := []prometheus.Collector{
		telemetry.NewXDPCollector(nil, telemetry.XDPCollectorOptions{}),
		telemetry.NewECNMarkerCollector(nil, nil),
		telemetry.NewPortCollector(nil, nil),
		telemetry.NewAFXDPCollector(nil, nil),
		telemetry.NewLinkCollector(telemetry.LinkCollectorOptions{}),
		telemetry.NewRoCEv2Collector(nil, telemetry.RoCEv2CollectorOptions{PerQP: true}),
		telemetry.NewRDMATransportCollector(nil, nil),
		telemetry.NewCollectiveCollector(nil, nil),
		telemetry.NewLLDPCollector(nil, nil),
		mustCongestionDetector(t),
		system.NewCollector(system.CollectorOptions{}),
	}
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for _, c := range cs {
		ch := make(chan *prometheus.Desc, 256)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			m := fq.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("no fqName in %s", d)
			}
			names[m[1]] = true
		}
	}
	return names
}

func mustCongestionDetector(t *testing.T) *telemetry.CongestionDetector {
	t.Helper()
	d, err := telemetry.NewCongestionDetector(telemetry.CongestionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type grafanaDashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func TestGrafanaDashboardMetricNames(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/onetdp.json")
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.SchemaVersion != 39 {
		t.Errorf("schemaVersion %d, want 39", d.SchemaVersion)
	}
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"` {
			dsVar = true
		}
	}
	if !dsVar {
		t.Error("no Prometheus datasource variable named datasource")
	}

	declared := declaredMetricNames(t)
	if !declared["onet_xdp_rx_packets_total"] || !declared["onet_system_cpu_utilization_ratio"] || len(declared) < 60 {
		t.Fatalf("collector descriptions look wrong (%d names): %v", len(declared), declared)
	}
	known := func(name string) bool {
		if declared[name] {
			return true
		}
		for _, suf := range []string{"_bucket", "_sum", "_count"} { // histogram series
			if base, ok := strings.CutSuffix(name, suf); ok && declared[base] {
				return true
			}
		}
		return false
	}
	metric := regexp.MustCompile(`\bonet_[a-z0-9_]+`)
	used := map[string]bool{}
	ids := map[int]bool{}
	var exprs []string
	for _, v := range d.Templating.List {
		exprs = append(exprs, string(v.Query))
	}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %q, %d targets", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if !metric.MatchString(tg.Expr) {
				t.Errorf("panel %q: expr %q uses no onet_ metric", p.Title, tg.Expr)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, e := range exprs {
		for _, n := range metric.FindAllString(e, -1) {
			used[n] = true
			if !known(n) {
				t.Errorf("expr %q uses %s, which no collector declares", e, n)
			}
		}
	}
	// The panels the dashboard promises.
	for _, n := range []string{"onet_xdp_rx_packets_total", "onet_link_rx_bytes_total", "onet_xdp_ce_packets_total",
		"onet_rocev2_cnps_sent_total", "onet_rocev2_retransmitted_packets_total", "onet_rocev2_retransmit_timeouts_total",
		"onet_afxdp_rx_dropped_total", "onet_system_cpu_utilization_ratio", "onet_system_gpu_utilization_ratio",
		"onet_afxdp_rx_ring_entries", "onet_afxdp_send_queue_depth_frames", "onet_afxdp_umem_free_frames",
		"onet_rocev2_operation_latency_seconds_bucket", "onet_congestion_warning", "onet_congestion_ce_ratio",
		"onet_congestion_ring_occupancy_ratio", "onet_congestion_retransmit_ratio", "onet_ecnmark_queue_bytes", "onet_lldp_neighbors"} {
		if !used[n] {
			t.Errorf("dashboard does not chart %s", n)
		}
	}
	if t.Failed() {
		var all []string
		for n := range declared {
			all = append(all, n)
		}
		sort.Strings(all)
		t.Logf("declared: %s", strings.Join(all, " "))
	}
}
