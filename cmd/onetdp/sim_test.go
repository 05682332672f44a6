package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opennetworks/onetdp/flowctl"
)

func runSimCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"sim"}, args...))
	err := root.Execute()
	return out.String(), errb.String(), err
}

func TestSimCLIWritesCSVAndPlots(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "out.csv")
	svgPath := filepath.Join(dir, "out.svg")
	pngPath := filepath.Join(dir, "out.png")
	out, stderr, err := runSimCLI(t, "--flows", "3", "--rate", "10gbit", "--duration", "2ms", "--interval", "20us",
		"--cc", "dcqcn", "--dcqcn", "rpg_ai_rate=10", "--kmin", "10KB", "--kmax", "100KB",
		"--csv", csvPath, "--plot", svgPath)
	if err != nil {
		t.Fatalf("sim: %v\n%s", err, stderr)
	}
	for _, want := range []string{"utilization", "jain fairness", "queue p50 / p99 / max", "convergence", "drops", "cnps"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "simulating 2ms of 2ms (100%)") {
		t.Errorf("no progress on stderr: %q", stderr)
	}

	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	wantHeader := "time_us,queue_bytes,flow0_gbps,flow1_gbps,flow2_gbps,flow0_allowed_gbps,flow1_allowed_gbps,flow2_allowed_gbps"
	if got := strings.Join(rows[0], ","); got != wantHeader {
		t.Errorf("csv header %q, want %q", got, wantHeader)
	}
	if len(rows) != 1+100 { // 2ms / 20µs samples
		t.Errorf("csv has %d rows, want 101", len(rows))
	}
	if rows[1][0] != "20.000" || rows[100][0] != "2000.000" {
		t.Errorf("csv times %q .. %q, want 20.000 .. 2000.000", rows[1][0], rows[100][0])
	}

	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(svg[:min(len(svg), 512)], []byte("<svg")) || !bytes.HasSuffix(bytes.TrimSpace(svg), []byte("</svg>")) {
		t.Errorf("%s is not an SVG document (%d bytes)", svgPath, len(svg))
	}
	if !bytes.Contains(svg, []byte("bottleneck queue depth")) {
		t.Errorf("svg lacks the queue panel title")
	}

	if _, stderr, err := runSimCLI(t, "--flows", "2", "--rate", "10g", "--duration", "1ms", "--cc", "none", "--plot", pngPath, "--quiet"); err != nil {
		t.Fatalf("sim png: %v\n%s", err, stderr)
	}
	png, err := os.ReadFile(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(png) < 1000 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("%s is not a PNG (%d bytes)", pngPath, len(png))
	}
}

func TestSimCLIJSON(t *testing.T) {
	out, _, err := runSimCLI(t, "--flows", "4", "--rate", "10gbit", "--buffer", "64KB", "--duration", "1ms", "--cc", "none", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var j simSummaryJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if j.CC != "none" || j.Flows != 4 || len(j.GoodputGbps) != 4 || j.Drops == 0 || j.RateGbps != 10 {
		t.Errorf("json summary %+v: want cc none, 4 flows, drops > 0", j)
	}
}

func TestSimCLIBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--cc", "reno"},
		{"--rate", "fast"},
		{"--dcqcn", "rpg_nope=1"},
		{"--kmin", "500KB", "--kmax", "100KB"},
		{"--plot", filepath.Join(t.TempDir(), "x.gif"), "--duration", "100us"},
	} {
		if _, _, err := runSimCLI(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	_, _, err := runSimCLI(t, "--plot", "x.gif", "--duration", "100us")
	if !errors.Is(err, errPlotFormat) {
		t.Errorf("--plot x.gif: %v, want errPlotFormat", err)
	}
}

func TestSimDCQCNPreset(t *testing.T) {
	p, err := dcqcnParams("paper", "rpg_time_reset=300, rpg_ai_rate=7")
	if err != nil {
		t.Fatal(err)
	}
	// The pairs override the preset even where they equal NVIDIA's defaults.
	if p.RPGTimeReset != 300 || p.RPGAIRate != 7 || p.RPGHAIRate != 200 || p.ClampTgtRate != 1 {
		t.Errorf("paper preset with overrides: %+v", p)
	}
	if p, _ := dcqcnParams("nvidia", ""); p != flowctl.DefaultDCQCNParams() {
		t.Errorf("nvidia preset %+v is not the defaults", p)
	}
	if _, err := dcqcnParams("paper", "rpg_gd=0"); !errors.Is(err, flowctl.ErrBadParam) {
		t.Errorf("rpg_gd=0: %v, want ErrBadParam", err)
	}
}
