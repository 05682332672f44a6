package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/agent"
	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

func TestParseRateAndSets(t *testing.T) {
	for in, want := range map[string]uint64{"950M": 950e6, "10G": 10e9, "2500000": 2500000, "1.5k": 1500, "1T": 1e12} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "fast", "-1M", "2T", "0"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q) accepted", bad)
		}
	}
	s, err := parseFlowctlSets([]string{"kmin=5", "KMAX_BYTES=9", "pmax=100", "rate=1G", "enabled=false"})
	if err != nil || *s.KminBytes != 5 || *s.KmaxBytes != 9 || *s.PmaxPPM != 100 || *s.RateBps != 1e9 || *s.Enabled {
		t.Fatalf("sets: %+v %v", s, err)
	}
	if s, err := parseFlowctlSets(nil); s != nil || err != nil {
		t.Fatalf("no sets: %+v %v", s, err)
	}
	for in, msg := range map[string]string{"kmin": "want key=value", "kmin=x": "want an integer", "speed=1": `unknown parameter "speed"`,
		"enabled=maybe": "want true or false", "rate=fast": `rate "fast"`} {
		if _, err := parseFlowctlSets([]string{in}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("--set %s: %v, want %q", in, err, msg)
		}
	}
}

// startAgentCLI runs `onetdp agent` with args in the background in h's
// namespace until the test ends; it returns the control socket.
func startAgentCLI(t *testing.T, h *lab.Host, args ...string) string {
	t.Helper()
	testutil.RequireBPFFS(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	pin := filepath.Join("/sys/fs/bpf", testutil.UniqueName("onetcli"))
	ctx, cancel := context.WithCancel(context.Background())
	daemon := newAgentCmd()
	var errOut bytes.Buffer
	daemon.SetOut(&errOut)
	daemon.SetErr(&errOut)
	daemon.SilenceErrors, daemon.SilenceUsage = true, true
	daemon.SetArgs(append([]string{"--netns", h.Netns, "--iface", h.Ifname, "--pin-dir", pin, "--socket", sock,
		"--listen", "127.0.0.1:0", "--unpin-on-exit"}, args...))
	done := make(chan error, 1)
	go func() { done <- daemon.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent stop: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("agent did not stop 10 s after cancel")
		}
		os.RemoveAll(pin)
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		select {
		case err := <-done:
			t.Fatalf("agent exited: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent socket not up after 10 s\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentFlowctlCLI(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2})
	h0 := &l.Hosts[0]
	sock := startAgentCLI(t, h0, "--ecn-marker", "--ecn-rate", "950M", "--ecn-kmin", "1000", "--ce-threshold", "0.05")

	out, err := runAgentCLI(t, "flowctl", "--socket", sock)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"IFACE", h0.Ifname + "   tcx   true     950 Mbit/s  1000    200000  10000", "DCQCN presets", "rpg_time_reset", "nvidia", "paper", "lab"} {
		if !strings.Contains(out, want) {
			t.Errorf("flowctl lacks %q:\n%s", want, out)
		}
	}
	out, err = runAgentCLI(t, "flowctl", "--socket", sock, "--json", "--set", "kmax=50000", "--set", "pmax=250000", "--iface", h0.Ifname)
	var r agent.FlowctlResult
	if err != nil || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("flowctl --set: %v\n%s", err, out)
	}
	if f := r.Interfaces[0]; f.KminBytes != 1000 || f.KmaxBytes != 50000 || f.PmaxPPM != 250000 || f.RateBps != 950e6 || !f.Enabled {
		t.Fatalf("after --set: %+v", f)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "kmin=60000"}, "kmin_bytes 60000 above kmax_bytes 50000 on " + h0.Ifname + " (bad_argument)"},
		{[]string{"--set", "pmax=2000000"}, "set.pmax_ppm 2000000 (want an integer 0..1000000) (bad_argument)"},
		{[]string{"--set", "kmin"}, "want key=value"},
		{[]string{"--iface", h0.Ifname}, "--iface only goes with --set"},
	} {
		_, err := runAgentCLI(t, append([]string{"flowctl", "--socket", sock}, bad.args...)...)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("%v: %v, want %q", bad.args, err, bad.want)
		}
	}
	out, err = runAgentCLI(t, "status", "--socket", sock)
	if err != nil || !strings.Contains(out, "congestion: ") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	st, err := func() (agent.Status, error) {
		cl, err := agent.Dial(sock)
		if err != nil {
			return agent.Status{}, err
		}
		defer cl.Close()
		return cl.Status()
	}()
	if err != nil || !st.ECNMarker || st.Congestion == nil || st.Congestion.Thresholds.CERatio != 0.05 {
		t.Fatalf("status: %+v %v", st, err)
	}
	if _, err := runCmd(t, newTopoCmd(), "--netns", h0.Netns, "--agent", sock); err == nil || !strings.Contains(err.Error(), "runs without LLDP") {
		t.Fatalf("topo --agent on an agent without LLDP: %v", err)
	}
	// A marker flag without a rate is refused before anything attaches.
	_, err = runAgentCLI(t, "--iface", "eth0", "--ecn-marker", "--socket", "off", "--listen", "off")
	if err == nil || !strings.Contains(err.Error(), "needs a drain rate") {
		t.Fatalf("--ecn-marker without a rate: %v", err)
	}
}
