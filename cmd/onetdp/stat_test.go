package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func runStatCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"stat"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestStatJSON(t *testing.T) {
	out, err := runStatCLI(t, "--json", "--interval", "100ms", "--iface", "lo", "--no-gpu")
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	var rep statReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("parse --json output: %v\n%s", err, out)
	}
	if rep.System.CPU.Absent != "" || len(rep.System.CPU.Cores) != runtime.NumCPU() {
		t.Errorf("cpu: %d cores (absent %q), want %d", len(rep.System.CPU.Cores), rep.System.CPU.Absent, runtime.NumCPU())
	}
	for _, c := range rep.System.CPU.Cores {
		if c.Ratio < 0 || c.Ratio > 1 {
			t.Errorf("cpu%d utilization %v", c.CPU, c.Ratio)
		}
	}
	if rep.System.GPU.Absent != "disabled" {
		t.Errorf("gpu absent %q with --no-gpu", rep.System.GPU.Absent)
	}
	if len(rep.System.NICs.NICs) != 1 || rep.System.NICs.NICs[0].Iface != "lo" || rep.System.NICs.NICs[0].Absent == "" {
		t.Errorf("nic numa %+v, want lo absent", rep.System.NICs)
	}
	if len(rep.Links) != 1 || rep.Links[0].Iface != "lo" {
		t.Errorf("links %+v, want lo only", rep.Links)
	}
	if !strings.Contains(out, `"absent": "disabled"`) {
		t.Errorf("absent GPU not visible in JSON:\n%s", out)
	}
}

func TestStatText(t *testing.T) {
	out, err := runStatCLI(t, "--interval", "50ms", "--iface", "lo", "--no-gpu")
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	for _, want := range []string{"cpu0 ", "absent (disabled)", "nic lo numa node  absent (virtual device (no bus device))", "memory bandwidth  absent (", "iface", "lo"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

func TestStatErrors(t *testing.T) {
	if _, err := runStatCLI(t, "--iface", "nosuchif0"); err == nil || !strings.Contains(err.Error(), "interface nosuchif0") {
		t.Errorf("unknown interface: %v", err)
	}
	if _, err := runStatCLI(t, "--interval", "0s"); err == nil {
		t.Error("zero interval accepted")
	}
	out, err := runStatCLI(t, "--help")
	if err != nil || !strings.Contains(out, "onetdp stat --json") {
		t.Errorf("--help lacks an example: %v\n%s", err, out)
	}
}
