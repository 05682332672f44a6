package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/internal/testutil"
)

// runBench runs `onetdp bench <args>` in-process and returns its stdout.
func runBench(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCmd(t, newBenchCmd(), args...)
}

func TestBenchCLILatAndPPS(t *testing.T) {
	testutil.RequireRoot(t)
	out, err := runBench(t, "lat", "--transport", "af_xdp,udp", "--iterations", "300", "--warmup", "20", "--json")
	if err != nil {
		t.Fatalf("bench lat: %v", err)
	}
	var lat []bench.LatResult
	if err := json.Unmarshal([]byte(out), &lat); err != nil {
		t.Fatalf("bench lat --json: %v\n%s", err, out)
	}
	if len(lat) != 2 || lat[0].Transport != "af_xdp" || lat[1].Transport != "udp" {
		t.Fatalf("bench lat rows = %+v, want af_xdp then udp", lat)
	}
	for _, r := range lat {
		if r.Iterations != 300 || r.Size != 64 || r.Min <= 0 || r.Typical < r.Min {
			t.Errorf("bench lat row %+v: want 300 iterations of 64 B with t_min > 0", r)
		}
	}

	out, err = runBench(t, "pps", "--transport", "af_xdp,udp", "--count", "20000", "--duration", "300ms", "--size", "128", "--json")
	if err != nil {
		t.Fatalf("bench pps: %v", err)
	}
	var pps []bench.PPSResult
	if err := json.Unmarshal([]byte(out), &pps); err != nil {
		t.Fatalf("bench pps --json: %v\n%s", err, out)
	}
	if len(pps) != 2 || pps[0].Transport != "af_xdp" || pps[1].Transport != "udp" {
		t.Fatalf("bench pps rows = %+v, want af_xdp then udp", pps)
	}
	for _, r := range pps {
		if r.Size != 128 || r.Sent == 0 || r.Received == 0 || r.Received > r.Sent || r.Corrupted != 0 {
			t.Errorf("bench pps row %+v: want 128 B, some sent, received <= sent, none corrupted", r)
		}
	}
}

func TestBenchCLIRejectsUnknownTransport(t *testing.T) {
	if _, err := runBench(t, "lat", "--transport", "carrier-pigeon", "--iterations", "1"); err == nil || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Fatalf("bench lat --transport carrier-pigeon: error %v, want one naming the transport", err)
	}
}

func TestWriteRatios(t *testing.T) {
	lat := []bench.LatResult{{Transport: "af_xdp", Typical: 4000}, {Transport: "udp", Typical: 10000}}
	pps := []bench.PPSResult{{Transport: "af_xdp", PPS: 2e6}, {Transport: "udp", PPS: 4e5}, {Transport: "udp-gso", PPS: 4e6}}
	var b strings.Builder
	writeRatios(&b, lat, pps)
	want := "64 B latency t_typical: af_xdp = 0.40x udp (target <= 0.5x kernel UDP)\n" +
		"64 B packet rate:       af_xdp = 5.00x udp (target >= 4x kernel UDP)\n" +
		"64 B packet rate:       af_xdp = 0.50x udp-gso (datagrams, not frames: GSO/GRO coalesce them)\n"
	if b.String() != want {
		t.Fatalf("writeRatios =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestBenchIncastFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--rate", "0"}, "--rate"},
		{[]string{"--pmax", "0"}, "--pmax"},
		{[]string{"--marker-rate", "150"}, "--marker-rate"},
		{[]string{"--path-mtu", "1500"}, "--path-mtu"},
		{[]string{"--modes", "on"}, "--modes"},
		{[]string{"--delay-target", "-1ms"}, "--delay-target"},
		{[]string{"--dcqcn-preset", "fast"}, "preset"},
		{[]string{"--dcqcn", "rpg_ai_rate=x"}, "--dcqcn"},
		{[]string{"--transport", "rdma"}, "unknown transport"},
		{[]string{"--size", "0"}, "--size"},
		{[]string{"--buffer", "lots"}, "--buffer"},
	}
	for _, c := range cases {
		cmd := newBenchIncastCmd()
		cmd.SetArgs(c.args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %s", c.args, err, c.want)
		}
	}
	f := incastFlags{senders: 3, rate: "500mbit", buffer: "512k", kmin: "16k", kmax: "128k", pmax: 0.2, markerPercent: 95,
		linkMTU: 3000, pathMTU: 2048, size: "64k", duration: time.Second, depth: 16, transport: "af_xdp",
		preset: "lab", dcqcn: "rpg_ai_rate=10", lineRate: "1gbit", modes: []string{"dcqcn"}, xdpMode: "auto",
		delayTarget: 2 * time.Millisecond, delayInit: "32k"}
	o, err := f.options(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.BottleneckBps != 500e6 || o.BufferBytes != 512<<10 || o.Marker.RateBps != 475e6 || o.Marker.PmaxPPM != 200_000 ||
		o.DCQCN.RPGAIRate != 10 || o.DCQCN.DCETCPRTT != 1100 || o.LineRate != 1e9 || o.Incast.Size != 64<<10 ||
		o.Delay.TargetDelay != 2*time.Millisecond || o.Delay.InitWindow != 32<<10 {
		t.Fatalf("options %+v", o)
	}
}
