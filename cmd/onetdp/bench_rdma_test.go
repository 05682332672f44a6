package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/internal/testutil"
)

func TestBenchCLIRDMAWriteBW(t *testing.T) {
	testutil.RequireRoot(t)
	out, err := runBench(t, "write_bw", "-n", "200", "--transport", "af_xdp,udp", "--json")
	if err != nil {
		t.Fatalf("bench write_bw: %v", err)
	}
	var rows []bench.RDMABWResult
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("bench write_bw --json: %v\n%s", err, out)
	}
	if len(rows) != 2 || rows[0].Transport != "af_xdp" || rows[1].Transport != "udp" {
		t.Fatalf("rows = %+v, want af_xdp then udp", rows)
	}
	for _, r := range rows {
		if r.Test != "write_bw" || r.Size != 65536 || r.Iterations != 200 || r.AvgMBps <= 0 || r.PeakMBps <= 0 || r.MsgRateMpps <= 0 {
			t.Errorf("row %+v: want 200 writes of 64 KiB with nonzero bandwidth", r)
		}
	}
}

func TestBenchCLIRDMALatencyText(t *testing.T) {
	testutil.RequireRoot(t)
	out, err := runBench(t, "send_lat", "-n", "100", "--warmup", "10", "-s", "64", "--transport", "udp")
	if err != nil {
		t.Fatalf("bench send_lat: %v", err)
	}
	for _, want := range []string{"Send Latency Test", " local address: LID 0000 QPN ", " remote address: LID 0000 QPN ",
		" #bytes #iterations    t_min[usec]", "\n 64      100          ", "send_lat, every transport side by side:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchCLIRDMARejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"write_bw", "--transport", "carrier-pigeon"},
		{"write_bw", "--mtu", "1500"},
		{"read_lat", "-D", "soon"},
		{"send_bw", "--qp-timeout", "40"},
	} {
		if _, err := runBench(t, args...); err == nil {
			t.Errorf("bench %v: no error", args)
		}
	}
}

func TestSecondsValue(t *testing.T) {
	for in, want := range map[string]time.Duration{"5": 5 * time.Second, "0.5": 500 * time.Millisecond, "250ms": 250 * time.Millisecond} {
		var s secondsValue
		if err := s.Set(in); err != nil || time.Duration(s) != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, time.Duration(s), err, want)
		}
	}
}

func TestRDMARatios(t *testing.T) {
	var b strings.Builder
	writeRDMABWRatios(&b, []bench.RDMABWResult{{Test: "write_bw", Transport: "af_xdp", Size: 65536, Gbps: 8},
		{Test: "iperf3", Transport: "iperf3-udp", Gbps: 4}, {Test: "iperf3", Transport: "iperf3-tcp", Gbps: 32}})
	if want := "write_bw 65536 B goodput: af_xdp = 2.00x iperf3-udp (target >= 2x UDP bulk), 0.25x iperf3-tcp\n"; b.String() != want {
		t.Errorf("bw ratios = %q, want %q", b.String(), want)
	}
	b.Reset()
	lat := []bench.RDMALatResult{{Test: "send_lat", LatResult: bench.LatResult{Transport: "udp", Size: 64, Typical: 3000}},
		{Test: "sockperf", LatResult: bench.LatResult{Transport: "sockperf-udp", Size: 64, Typical: 7500}}}
	writeRDMALatRatios(&b, lat)
	if want := "send_lat 64 B t_typical: udp = 0.40x sockperf-udp 64 B (target <= 0.6x sockperf UDP)\n"; b.String() != want {
		t.Errorf("lat ratios = %q, want %q", b.String(), want)
	}
}
