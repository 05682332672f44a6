package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"

	"github.com/opennetworks/onetdp/agent"
	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

func TestAgentOptionsPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.json")
	os.WriteFile(cfg, []byte(`{"interfaces":["cfg0"],"mode":"generic","onet_port":5000,"pin_dir":"/sys/fs/bpf/cfg","metrics_addr":"127.0.0.1:1"}`), 0o600)
	t.Setenv("ONET_AGENT_ONET_PORT", "6000")
	t.Setenv("ONET_AGENT_PIN_DIR", "/sys/fs/bpf/env")
	c := newAgentCmd()
	c.SetArgs([]string{"--config", cfg, "--pin-dir", "/sys/fs/bpf/flag"})
	var got agent.Options
	c.RunE = func(c *cobra.Command, _ []string) error {
		var err error
		got, err = agentOptions(c)
		return err
	}
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if len(got.Interfaces) != 1 || got.Interfaces[0] != "cfg0" || got.Mode != "generic" || got.OnetPort != 6000 ||
		got.PinDir != "/sys/fs/bpf/flag" || got.MetricsAddr != "127.0.0.1:1" || got.ControlSocket != agent.DefaultControlSocket {
		t.Fatalf("options %+v", got)
	}
	t.Setenv("ONET_AGENT_ONET_PORT", "70000")
	c = newAgentCmd()
	c.SetArgs([]string{"--iface", "eth0"})
	c.SilenceErrors, c.SilenceUsage = true, true
	if err := c.Execute(); err == nil || !strings.Contains(err.Error(), "ONET_AGENT_ONET_PORT") {
		t.Fatalf("bad env port: %v", err)
	}
}

// runAgentCLI runs `onetdp agent <args>` in-process and returns stdout.
func runAgentCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCmd(t, newAgentCmd(), args...)
}

func TestAgentCLI(t *testing.T) {
	testutil.RequireBPFFS(t)
	l := labtest.New(t, lab.Options{Hosts: 2})
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	sock := filepath.Join(t.TempDir(), "agent.sock")
	pin := filepath.Join("/sys/fs/bpf", testutil.UniqueName("onetcli"))
	t.Cleanup(func() { os.RemoveAll(pin) })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	daemon := newAgentCmd()
	var errOut bytes.Buffer
	daemon.SetOut(&errOut)
	daemon.SetErr(&errOut)
	daemon.SilenceErrors, daemon.SilenceUsage = true, true
	daemon.SetArgs([]string{"--netns", h0.Netns, "--iface", h0.Ifname, "--pin-dir", pin, "--socket", sock,
		"--listen", "127.0.0.1:0", "--unpin-on-exit"})
	done := make(chan error, 1)
	go func() { done <- daemon.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
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

	out, err := runAgentCLI(t, "fault", "onet", "1000000", "--socket", sock)
	if err != nil || !strings.Contains(out, "fault onet 1000000 ppm on ["+h0.Ifname+"]") {
		t.Fatalf("fault: %v\n%s", err, out)
	}
	var c *net.UDPConn
	if err := h1.Do(func() error {
		var err error
		c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(h0.Addr.Addr(), agent.DefaultOnetPort)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		if _, err := c.Write(make([]byte, 20)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	var st agent.Status
	for end := time.Now().Add(5 * time.Second); ; {
		out, err = runAgentCLI(t, "status", "--json", "--socket", sock)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		if st.Interfaces[0].Classes["onet"].FaultDrop == 6 || time.Now().After(end) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if on := st.Interfaces[0].Classes["onet"]; !st.Healthy || on.Packets != 6 || on.FaultDrop != 6 || on.FaultPPM != 1000000 {
		t.Fatalf("status after 6 fault-dropped datagrams: %+v", st)
	}
	out, err = runAgentCLI(t, "status", "--socket", sock)
	if err != nil || !strings.Contains(out, "agent healthy") || !strings.Contains(out, "FAULT_DROP") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	out, err = runAgentCLI(t, "flows", "--json", "--socket", sock)
	var fl []agent.Flow
	if err != nil || json.Unmarshal([]byte(out), &fl) != nil || len(fl) != 1 || fl[0].Packets != 6 {
		t.Fatalf("flows: %v\n%s", err, out)
	}
	out, err = runAgentCLI(t, "topology", "--socket", sock)
	if err != nil || !strings.Contains(out, h0.Ifname) || !strings.Contains(out, h0.Addr.String()) {
		t.Fatalf("topology: %v\n%s", err, out)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"fault", "bulk", "5"}, `class "bulk" (want rocev2, onet or other) (bad_argument)`},
		{[]string{"fault", "onet", "--", "-3"}, "ppm -3 (want an integer 0..1000000) (bad_argument)"},
		{[]string{"fault", "onet", "x"}, `ppm "x": want an integer`},
		{[]string{"fault", "onet", "1", "--iface", "eth7"}, `iface "eth7" is not attached`},
		{[]string{"flows", "--limit", "0"}, "--limit 0: want 1..10000"},
	} {
		_, err := runAgentCLI(t, append([]string{"--socket", sock}, bad.args...)...)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("%v: %v, want an error with %q", bad.args, err, bad.want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop 10 s after cancel")
	}
	if err := h0.Do(func() error {
		l, err := netlink.LinkByName(h0.Ifname)
		if err != nil {
			return err
		}
		if l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached {
			t.Error("XDP program still attached after the agent stopped")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Fatalf("--unpin-on-exit left %s: %v", pin, err)
	}
}
