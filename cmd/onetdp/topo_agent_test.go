package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
	"github.com/opennetworks/onetdp/telemetry/topo"
)

// TestTopoAgentLLDPDInterop is the check against the agent: lldpd
// in h1, `onetdp agent --lldp` in h0; `onetdp topo --agent` shows lldpd's
// system name and port, and `lldpcli show neighbors` shows the agent.
func TestTopoAgentLLDPDInterop(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/lldpd"); err != nil {
		t.Fatalf("lldpd is not installed (apt-get install lldpd): %v", err)
	}
	l := labtest.New(t, lab.Options{Hosts: 2})
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	dir, err := os.MkdirTemp("", "onetdp-lldpd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // lldpd runs as _lldpd
		t.Fatal(err)
	}
	sock, conf := filepath.Join(dir, "lldpd.sock"), filepath.Join(dir, "lldpd.conf")
	peer, us := "lldpd-"+l.Name, "onetagent-"+l.Name
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("configure system hostname %s\nconfigure lldp tx-interval 1\n", peer)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h1.Command(ctx, "/usr/sbin/lldpd", "-d", "-I", "eth0", "-u", sock, "-O", conf)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	agentSock := startAgentCLI(t, h0, "--lldp", "--lldp-interval", "1s", "--lldp-system-name", us)

	var shown []byte
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		shown, err = h1.Command(context.Background(), "lldpcli", "-u", sock, "show", "neighbors").Output()
		if err == nil && strings.Contains(string(shown), us) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(shown), "SysName:      "+us) || !strings.Contains(string(shown), "PortID:       ifname eth0") {
		t.Fatalf("lldpcli does not show the agent (%s): %v\n%s", us, err, shown)
	}

	var out, row string
	for deadline = time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err = runCmd(t, newTopoCmd(), "--netns", h0.Netns, "--agent", agentSock)
		if err != nil {
			t.Fatal(err)
		}
		if i := strings.Index(out, "LLDP NEIGHBOURS"); i >= 0 {
			for _, line := range strings.Split(out[i:], "\n") {
				if strings.Contains(line, peer) {
					row = line
				}
			}
		}
		if row != "" {
			break
		}
	}
	f := strings.Fields(row)
	// interface, system name, chassis id, port id, port description, ...
	if len(f) < 5 || f[0] != "eth0" || f[1] != peer || f[2] != h1.MAC.String() || f[3] != h1.MAC.String() || f[4] != "eth0" {
		t.Fatalf("lldpd row %q in:\n%s", row, out)
	}
	// The JSON snapshot carries the agent's table too.
	out, err = runCmd(t, newTopoCmd(), "--netns", h0.Netns, "--agent", agentSock, "--json")
	var s topo.Snapshot
	if err != nil || json.Unmarshal([]byte(out), &s) != nil || len(s.LLDP) != 1 || s.LLDP[0].PDU.SystemName != peer {
		t.Fatalf("topo --json --agent: %v\n%s", err, out)
	}
	// The agent's own client shows it as well.
	out, err = runAgentCLI(t, "topology", "--socket", agentSock)
	if err != nil || !strings.Contains(out, "LLDP NEIGHBOURS") || !strings.Contains(out, peer) {
		t.Fatalf("agent topology: %v\n%s", err, out)
	}
	if _, err := runCmd(t, newTopoCmd(), "--agent", agentSock, "--lldp-listen", "1s"); err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Fatalf("--agent with --lldp-listen: %v", err)
	}
}
