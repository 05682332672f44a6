package main

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/opennetworks/onetdp/agent"
	"github.com/opennetworks/onetdp/telemetry/system"
)

const topTestMetrics = `# TYPE onet_rocev2_cnps_sent_total counter
onet_rocev2_cnps_sent_total{device="r0"} %d
# TYPE onet_rocev2_cnps_received_total counter
onet_rocev2_cnps_received_total{device="r0"} 0
# TYPE onet_collective_operation_duration_seconds histogram
onet_collective_operation_duration_seconds_bucket{op="allreduce",le="0.001"} %d
onet_collective_operation_duration_seconds_bucket{op="allreduce",le="0.002"} %d
onet_collective_operation_duration_seconds_bucket{op="allreduce",le="+Inf"} %d
onet_collective_operation_duration_seconds_sum{op="allreduce"} 1
onet_collective_operation_duration_seconds_count{op="allreduce"} %d
`

func topTestSample(t *testing.T, at time.Time, onetPkts, ce, redir, flowBytes uint64, cnps int, lat [4]int, cpuBusy uint64) *topSample {
	t.Helper()
	text := strings.NewReader(strings.ReplaceAll(
		sprintfTop(topTestMetrics, cnps, lat[0], lat[1], lat[2], lat[3]), "\t", ""))
	mfs, err := parseMetricsText(text)
	if err != nil {
		t.Fatal(err)
	}
	return &topSample{
		At: at,
		Status: &agent.Status{Interfaces: []agent.InterfaceStatus{{
			Name: "eth0", Attached: true, Mode: "generic",
			Classes: map[string]agent.ClassStatus{
				"onet":   {Packets: onetPkts, Bytes: onetPkts * 100, CE: ce, RedirectFail: redir},
				"rocev2": {},
				"other":  {Packets: 3},
			},
		}}},
		Flows: []agent.Flow{
			{Iface: "eth0", Class: "onet", Src: "198.18.0.1", Dst: "198.18.0.2", SrcPort: 1000, DstPort: 4792, Bytes: flowBytes, Packets: flowBytes / 100},
			{Iface: "eth0", Class: "other", Src: "198.18.0.1", Dst: "198.18.0.2", SrcPort: 1, DstPort: 2, Bytes: 5000, Packets: 90},
		},
		Metrics: mfs,
		Links:   map[string]topLinkCounters{"eth0": {RxBytes: onetPkts * 100, TxBytes: 1000}},
		CPU: []system.CPUTimes{
			{CPU: 0, User: cpuBusy, Idle: 1000 + cpuBusy},
		},
	}
}

func TestTopViewRatesAndWarnings(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := topTestSample(t, t0, 1000, 0, 0, 10000, 10, [4]int{0, 0, 0, 0}, 0)
	cur := topTestSample(t, t0.Add(2*time.Second), 3000, 100, 4, 30000, 30, [4]int{50, 100, 100, 100}, 1000)
	v := computeTopView(prev, cur, sortByRate, 10)

	if len(v.Ifaces) != 1 {
		t.Fatalf("ifaces %+v", v.Ifaces)
	}
	ti := v.Ifaces[0]
	if ti.RxBps != 100000 || ti.TxBps != 0 || ti.CEPerSec != 50 {
		t.Fatalf("iface rates %+v", ti)
	}
	if len(ti.Classes) != 3 || ti.Classes[0].Class != "onet" || ti.Classes[0].PPS != 1000 || ti.Classes[0].Packets != 3000 {
		t.Fatalf("classes %+v", ti.Classes)
	}
	if v.CEPerSec != 50 || v.CNPPerSec != 10 {
		t.Fatalf("CE %v CNP %v", v.CEPerSec, v.CNPPerSec)
	}
	if len(v.Flows) != 2 || v.Flows[0].Class != "onet" || v.Flows[0].BytesPerSec != 10000 || v.Flows[1].BytesPerSec != 0 {
		t.Fatalf("flows %+v", v.Flows)
	}
	if len(v.Latency) != 1 || v.Latency[0].Count != 100 || math.Abs(v.Latency[0].P50-0.001) > 1e-12 || math.Abs(v.Latency[0].P99-0.00198) > 1e-9 {
		t.Fatalf("latency %+v", v.Latency)
	}
	if len(v.CPU) != 1 || v.CPU[0].Ratio != 0.5 {
		t.Fatalf("cpu %+v", v.CPU)
	}
	want := []string{"eth0: redirect failures rising (+4)", "CE ratio 5.0 % above 1 %"}
	if strings.Join(v.Warnings, ";") != strings.Join(want, ";") {
		t.Fatalf("warnings %q", v.Warnings)
	}

	out := renderTop(v)
	for _, s := range []string{"eth0", "onet", "packets 3000", "1.00 kpkt/s", "rx 100.00 kB/s  tx 0 B/s", "CE marks 50/s", "CNPs 10/s",
		"198.18.0.1:1000 > 198.18.0.2:4792", "p50 1.00 ms", "cpu0", "50.0 %", "! CE ratio 5.0 %"} {
		if !strings.Contains(out, s) {
			t.Errorf("frame lacks %q:\n%s", s, out)
		}
	}

	// Sorting by packets puts the "other" flow (90 packets vs 300) second; by
	// bytes the onet flow stays first.
	if f := computeTopView(prev, cur, sortByPackets, 1).Flows; len(f) != 1 || f[0].Class != "onet" {
		t.Fatalf("by packets, max 1: %+v", f)
	}
}

func TestTopViewUnreachableAndEmpty(t *testing.T) {
	cur := &topSample{At: time.Unix(0, 0), StatusErr: errors.New("dial unix /x: connect: no such file"), MetricsErr: errors.New("refused")}
	v := computeTopView(nil, cur, sortByRate, 10)
	out := renderTop(v)
	for _, s := range []string{"agent unreachable: dial unix /x", "metrics unreachable: refused", "no latency data", "no flows",
		"no interfaces", "CNPs - (no RoCEv2 metrics)", "first sample"} {
		if !strings.Contains(out, s) {
			t.Errorf("frame lacks %q:\n%s", s, out)
		}
	}
}

func TestTopHistQuantile(t *testing.T) {
	b := []float64{1, 2, math.Inf(1)}
	if q := histQuantile(0.5, b, []uint64{0, 10, 10}, 10); q != 1.5 {
		t.Fatalf("p50 %v", q)
	}
	if q := histQuantile(0.99, b, []uint64{0, 0, 10}, 10); q != 2 {
		t.Fatalf("p99 in +Inf bucket %v", q)
	}
	if q := histQuantile(0.5, b, []uint64{0, 0, 0}, 0); !math.IsNaN(q) {
		t.Fatalf("empty %v", q)
	}
}

func TestTopHumanFormats(t *testing.T) {
	cases := map[string]string{humanRate(999): "999", humanRate(1500): "1.50 k", humanUnit(0, "B/s"): "0 B/s", humanUnit(2e6, "B/s"): "2.00 MB/s", humanRate(math.NaN()): "-",
		humanSeconds(2e-6): "2.0 us", humanSeconds(0.5): "500.00 ms", cpuBar(0.5, 4): "[##..]", cpuBar(2, 2): "[##]"}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q want %q", got, want)
		}
	}
}

func TestTopTUIKeys(t *testing.T) {
	m := newTopTUI(topOptions{Interval: time.Second, Flows: 5})
	if !strings.Contains(m.View(), "polling") {
		t.Fatal(m.View())
	}
	m.Update(topSampleMsg(&topSample{At: time.Unix(1, 0)}))
	m.Update(keyMsg("s"))
	m.Update(keyMsg("p"))
	if !m.paused || m.sort != sortByBytes || !strings.Contains(m.View(), "PAUSED") || !strings.Contains(m.View(), "now by bytes)") {
		t.Fatalf("after s, p: %+v\n%s", m, m.View())
	}
	m.Update(topSampleMsg(&topSample{At: time.Unix(2, 0)}))
	if m.cur.At != time.Unix(1, 0) {
		t.Fatal("paused top took a new sample")
	}
	if _, cmd := m.Update(keyMsg("q")); cmd == nil {
		t.Fatal("q gave no command")
	}
}

func sprintfTop(format string, a ...any) string { return fmt.Sprintf(format, a...) }

func keyMsg(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }

func TestTopOnceUnreachable(t *testing.T) {
	out, err := runCmd(t, newTopCmd(), "--once", "--socket", filepath.Join(t.TempDir(), "none.sock"), "--metrics", "off", "--interval", "10ms")
	if err == nil || !strings.Contains(err.Error(), "top: agent unreachable") || !strings.Contains(out, "! agent unreachable") ||
		!strings.Contains(out, "no interfaces") {
		t.Fatalf("err %v\n%s", err, out)
	}
	if _, err := runCmd(t, newTopCmd(), "--once", "--interval", "0s"); err == nil || !strings.Contains(err.Error(), "--interval must be positive") {
		t.Fatalf("zero interval: %v", err)
	}
}
