package lldp

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

// startAgent runs NewAgent inside h's namespace.
func startAgent(t *testing.T, h *lab.Host, opts AgentOptions) *Agent {
	t.Helper()
	var a *Agent
	if err := h.Do(func() (err error) { a, err = NewAgent(opts); return err }); err != nil {
		t.Fatalf("agent in %s: %v", h.Name, err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// waitNeighbor polls a's table until one neighbour has the system name.
func waitNeighbor(t *testing.T, a *Agent, name string, within time.Duration) Neighbor {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, n := range a.Neighbors() {
			if n.PDU.SystemName == name {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no neighbour %q within %v: %+v", name, within, a.Neighbors())
	return Neighbor{}
}

func TestAgentPair(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2})
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	a0 := startAgent(t, h0, AgentOptions{Interfaces: []string{"eth0"}, Interval: 100 * time.Millisecond, SystemName: "a0"})
	a1 := startAgent(t, h1, AgentOptions{Interfaces: []string{"eth0"}, Interval: time.Hour, TTL: 5 * time.Second, SystemName: "a1"})
	n := waitNeighbor(t, a0, "a1", 3*time.Second)
	if n.Ifname != "eth0" || n.Ifindex != h0.Ifindex || n.ChassisID != h1.MAC.String() || n.PortID != "eth0" || n.SrcMAC != h1.MAC.String() || n.PDU.TTL != 5 {
		t.Fatalf("neighbour %+v", n)
	}
	if m := n.PDU.ManagementAddresses; len(m) != 1 || m[0].String() != h1.Addr.Addr().String() || m[0].IfNumber != uint32(h1.Ifindex) {
		t.Fatalf("management addresses %+v, want %v on ifindex %d", m, h1.Addr.Addr(), h1.Ifindex)
	}
	if n := waitNeighbor(t, a1, "a0", 3*time.Second); n.PDU.TTL != 1 {
		t.Fatalf("a0 advertises ttl %d, want 1 (4 × 100 ms rounded up)", n.PDU.TTL)
	}
	if s := a1.Stats(); s.Sent.Load() != 1 || s.Malformed.Load() != 0 {
		t.Fatalf("a1 sent %d malformed %d, want 1 and 0", s.Sent.Load(), s.Malformed.Load())
	}
	// Own frames are not learnt (PACKET_OUTGOING is skipped).
	for _, n := range a0.Neighbors() {
		if n.PDU.SystemName == "a0" {
			t.Fatalf("a0 learnt itself: %+v", n)
		}
	}

	// Malformed frames from h1 are counted and dropped.
	var raw *packetConn
	if err := h1.Do(func() error {
		ifi, err := netInterface("eth0")
		if err != nil {
			return err
		}
		raw, err = openPacketConn(ifi)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer raw.close()
	before := a0.Stats().Malformed.Load()
	bad := append(append(append([]byte{}, NearestBridge...), h1.MAC...), 0x88, 0xcc, 0x04, 0x02, 5, 'x') // port id first
	for range 3 {
		if err := raw.send(bad); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for a0.Stats().Malformed.Load() < before+3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := a0.Stats().Malformed.Load() - before; got != 3 {
		t.Fatalf("malformed counted %d, want 3", got)
	}

	// A shutdown LLDPDU (Close) removes the neighbour at once.
	if err := a1.Close(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Second)
	for len(a0.Neighbors()) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ns := a0.Neighbors(); len(ns) != 0 || a0.Stats().Expired.Load() != 1 {
		t.Fatalf("after shutdown: %+v, expired %d", ns, a0.Stats().Expired.Load())
	}
	if err := a1.SendNow(); err != ErrClosed {
		t.Fatalf("SendNow after Close: %v", err)
	}
	if err := a1.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestAgentTTLExpiry(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2})
	now := time.Now()
	clock := func() time.Time { return now }
	a0 := startAgent(t, &l.Hosts[0], AgentOptions{Interfaces: []string{"eth0"}, ReceiveOnly: true, Now: func() time.Time { return clock() }})
	startAgent(t, &l.Hosts[1], AgentOptions{Interfaces: []string{"eth0"}, TTL: 10 * time.Second, SystemName: "peer"})
	n := waitNeighbor(t, a0, "peer", 3*time.Second)
	if !n.ExpiresAt.Equal(now.Add(10 * time.Second)) {
		t.Fatalf("expires at %v, want now+10s", n.ExpiresAt)
	}
	later := now.Add(10 * time.Second)
	clock = func() time.Time { return later }
	if ns := a0.Neighbors(); len(ns) != 0 || a0.Stats().Expired.Load() != 1 {
		t.Fatalf("after ttl: %+v", ns)
	}
	if a0.Stats().Sent.Load() != 0 {
		t.Fatalf("receive-only agent sent %d", a0.Stats().Sent.Load())
	}
}

func TestNewAgentErrors(t *testing.T) {
	if _, err := NewAgent(AgentOptions{}); err == nil {
		t.Fatal("no interfaces accepted")
	}
	if _, err := NewAgent(AgentOptions{Interfaces: []string{"nosuchif0"}}); err == nil || !strings.Contains(err.Error(), "nosuchif0") {
		t.Fatalf("missing interface: %v", err)
	}
}

// TestLLDPDInterop runs lldpd (Debian's lldpd package) in h1 and our agent
// in h0 and checks that each sees the other.
func TestLLDPDInterop(t *testing.T) {
	lldpd, err := exec.LookPath("lldpd")
	if err != nil {
		lldpd = "/usr/sbin/lldpd"
	}
	if _, err := os.Stat(lldpd); err != nil {
		t.Fatalf("lldpd is not installed (apt-get install lldpd): %v", err)
	}
	l := labtest.New(t, lab.Options{Hosts: 2})
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	// lldpd drops privileges to _lldpd: the control socket's directory
	// must be reachable by it (t.TempDir's parent is private).
	dir, err := os.MkdirTemp("", "onetdp-lldpd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "lldpd.sock")
	conf := filepath.Join(dir, "lldpd.conf")
	peerName := "lldpd-" + l.Name
	ourName := "onetdp-" + l.Name
	cfg := fmt.Sprintf("configure system hostname %s\nconfigure lldp tx-interval 1\n", peerName)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h1.Command(ctx, lldpd, "-d", "-I", "eth0", "-u", sock, "-O", conf)
	var logb strings.Builder
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start lldpd: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("lldpd log:\n%s", logb.String())
		}
	})

	a := startAgent(t, h0, AgentOptions{Interfaces: []string{"eth0"}, Interval: 500 * time.Millisecond, SystemName: ourName})
	n := waitNeighbor(t, a, peerName, 10*time.Second)
	// lldpd's defaults: chassis and port ID are the interface MAC, the
	// port description is the interface name.
	if n.ChassisID != h1.MAC.String() || n.PortID != h1.MAC.String() || n.PDU.PortDescription != "eth0" || n.SrcMAC != h1.MAC.String() {
		t.Fatalf("lldpd neighbour %+v", n)
	}

	var out []byte
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err = h1.Command(context.Background(), "lldpcli", "-u", sock, "-f", "json", "show", "neighbors").Output()
		if err == nil && strings.Contains(string(out), ourName) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var doc struct {
		LLDP struct {
			Interface map[string]struct {
				Chassis map[string]json.RawMessage `json:"chassis"`
				Port    struct {
					ID struct {
						Type  string `json:"type"`
						Value string `json:"value"`
					} `json:"id"`
				} `json:"port"`
			} `json:"interface"`
		} `json:"lldp"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("lldpcli json (%v): %v\n%s", err, err, out)
	}
	eth0, ok := doc.LLDP.Interface["eth0"]
	if !ok {
		t.Fatalf("lldpcli shows no neighbour on eth0:\n%s", out)
	}
	if _, ok := eth0.Chassis[ourName]; !ok || eth0.Port.ID.Type != "ifname" || eth0.Port.ID.Value != "eth0" {
		t.Fatalf("lldpcli neighbour is not us (%s, port eth0):\n%s", ourName, out)
	}
	if !strings.Contains(string(out), `"`+h0.Addr.Addr().String()+`"`) {
		t.Fatalf("lldpcli does not show our management address %v:\n%s", h0.Addr.Addr(), out)
	}
	if m := n.PDU.ManagementAddresses; len(m) == 0 || m[0].String() != h1.Addr.Addr().String() {
		t.Fatalf("lldpd management addresses %+v, want %v", m, h1.Addr.Addr())
	}
}
