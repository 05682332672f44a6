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

func TestTopoCLI(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2})
	h0 := &l.Hosts[0]
	out, err := runCmd(t, newTopoCmd(), "--netns", h0.NetnsName(), "--json", "--path-to", l.Hosts[1].Addr.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var s topo.Snapshot
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(s.Paths) != 1 || s.Paths[0].Chosen.Ifname != "eth0" || s.Paths[0].Src != h0.Addr.Addr() {
		t.Fatalf("paths %+v", s.Paths)
	}
	out, err = runCmd(t, newTopoCmd(), "--netns", h0.Netns)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LINKS", "eth0", h0.MAC.String(), h0.Addr.String(), h0.Addr.Masked().String()} {
		if !strings.Contains(out, want) {
			t.Fatalf("text output lacks %q:\n%s", want, out)
		}
	}
	if _, err := runCmd(t, newTopoCmd(), "--path-to", "nonsense"); err == nil || !strings.Contains(err.Error(), "--path-to") {
		t.Fatalf("bad --path-to: %v", err)
	}
}

// TestTopoLLDPDInterop is the issue's check: lldpd in h1, `onetdp topo
// --lldp-listen` in h0; each shows the other.
func TestTopoLLDPDInterop(t *testing.T) {
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
	peer, us := "lldpd-"+l.Name, "onetdp-"+l.Name
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

	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := runCmd(t, newTopoCmd(), "--netns", h0.Netns, "--lldp-listen", "3s", "--lldp-interval", "1s", "--iface", "eth0", "--system-name", us)
		done <- result{out, err}
	}()
	// While the command listens, lldpd shows us (on exit the agent sends
	// a shutdown LLDPDU and lldpd forgets us at once).
	var shown []byte
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		shown, err = h1.Command(context.Background(), "lldpcli", "-u", sock, "show", "neighbors").Output()
		if err == nil && strings.Contains(string(shown), us) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(shown), "SysName:      "+us) || !strings.Contains(string(shown), "PortID:       ifname eth0") {
		t.Fatalf("lldpcli does not show us (%s): %v\n%s", us, err, shown)
	}
	r := <-done
	out, err := r.out, r.err
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(out, "LLDP NEIGHBOURS")
	if i < 0 {
		t.Fatalf("no LLDP section:\n%s", out)
	}
	var row string
	for _, line := range strings.Split(out[i:], "\n") {
		if strings.Contains(line, peer) {
			row = line
		}
	}
	f := strings.Fields(row)
	// interface, system name, chassis id, port id, port description, ...
	if len(f) < 5 || f[0] != "eth0" || f[1] != peer || f[2] != h1.MAC.String() || f[3] != h1.MAC.String() || f[4] != "eth0" {
		t.Fatalf("lldpd row %q in:\n%s", row, out[i:])
	}
}
