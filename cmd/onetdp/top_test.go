package main

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/agent"
	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

// TestTopTmux runs the real binary: an agent on h1, `onetdp top` in a
// detached tmux session in h1's namespace, 25 onet datagrams from h0, and
// reads the pane until it shows them.
func TestTopTmux(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireBPFFS(t)
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed (.ci/run installs it): the dashboard test drives a real terminal")
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("nsenter (util-linux) is not installed: top must run in the agent's namespace")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "onetdp")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	l := labtest.New(t, lab.Options{Hosts: 2})
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	sock := filepath.Join(dir, "agent.sock")
	pin := filepath.Join("/sys/fs/bpf", testutil.UniqueName("onettop"))
	t.Cleanup(func() { os.RemoveAll(pin) })
	const metricsAddr = "127.0.0.1:9469" // h1's own loopback: no clash with other tests

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	agentCmd := exec.CommandContext(ctx, bin, "agent", "--netns", h1.Netns, "--iface", h1.Ifname, "--pin-dir", pin,
		"--socket", sock, "--listen", metricsAddr, "--unpin-on-exit")
	var agentOut strings.Builder
	agentCmd.Stdout, agentCmd.Stderr = &agentOut, &agentOut
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agentCmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { agentCmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			agentCmd.Process.Kill()
			<-done
		}
	})
	for end := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(end) {
			t.Fatalf("agent socket not up after 10 s:\n%s", agentOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	topArgs := []string{"--net=" + h1.Netns, bin, "top", "--socket", sock, "--metrics", "http://" + metricsAddr + "/metrics"}

	// A private tmux server (-L) so the test touches no one else's sessions.
	server, session := testutil.UniqueName("onettop"), "top"
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-L", server}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { tm("kill-server") })
	shell := shellQuote(nsenter, topArgs...) + " --interval 300ms; echo TOP-EXITED $?; sleep 60"
	if out, err := tm("new-session", "-d", "-s", session, "-x", "160", "-y", "50", shell); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}

	sendOnet(t, h0, h1, 25)

	want := regexp.MustCompile(`onet\s+packets 25\s`)
	var pane string
	for end := time.Now().Add(15 * time.Second); ; {
		pane, err = tm("capture-pane", "-p", "-t", session)
		if err != nil {
			t.Fatalf("capture-pane: %v\n%s", err, pane)
		}
		if strings.Contains(pane, h1.Ifname) && want.MatchString(pane) && strings.Contains(pane, "attached") &&
			strings.Contains(pane, "cpu0") && // a second sample: rates and CPU drawn
			strings.Contains(pane, h0.Addr.Addr().String()+":") {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("pane never showed %s with 25 onet packets and the flow after 15 s:\n%s\nagent:\n%s", h1.Ifname, pane, agentOut.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, s := range []string{"onetdp top", "(over ", "CE marks 0/s", "Warnings", "no latency data"} {
		if !strings.Contains(pane, s) {
			t.Errorf("pane lacks %q:\n%s", s, pane)
		}
	}

	// s changes the flow sort; the footer line says so.
	if out, err := tm("send-keys", "-t", session, "s"); err != nil {
		t.Fatalf("send-keys s: %v\n%s", err, out)
	}
	waitPane(t, tm, session, "now by bytes)", 5*time.Second)

	// Fault drops rising are a warning: drop every onet frame, send 5 more.
	cl, err := agent.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.SetFault(h1.Ifname, "onet", 1_000_000)
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	sendOnet(t, h0, h1, 5)
	waitPane(t, tm, session, "! "+h1.Ifname+": fault drops rising (+", 10*time.Second)

	if out, err := tm("send-keys", "-t", session, "q"); err != nil {
		t.Fatalf("send-keys: %v\n%s", err, out)
	}
	waitPane(t, tm, session, "TOP-EXITED 0", 5*time.Second)

	// --once with stdout not a terminal prints one frame: 30 onet frames (the
	// last 5 counted and fault-dropped).
	out, err := exec.Command(nsenter, append(topArgs, "--once", "--interval", "200ms")...).CombinedOutput()
	if err != nil || !regexp.MustCompile(`onet\s+packets 30\s`).MatchString(string(out)) || !strings.Contains(string(out), "no latency data") {
		t.Fatalf("top --once: %v\n%s", err, out)
	}
}

// shellQuote joins a command line for sh -c, single-quoting every word.
func shellQuote(name string, args ...string) string {
	words := append([]string{name}, args...)
	for i, w := range words {
		words[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(words, " ")
}

// sendOnet sends n 64-byte datagrams from h0 to h1's onet port.
func sendOnet(t *testing.T, h0, h1 *lab.Host, n int) {
	t.Helper()
	if err := h0.Do(func() error {
		// Unconnected, so h1's ICMP port unreachable does not fail later writes.
		c, err := net.ListenUDP("udp", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(h1.Addr.Addr(), agent.DefaultOnetPort))
		for i := 0; i < n; i++ {
			if _, err := c.WriteToUDP(make([]byte, 64), dst); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// waitPane captures the tmux pane until it contains want, or fails after d.
func waitPane(t *testing.T, tm func(...string) (string, error), session, want string, d time.Duration) string {
	t.Helper()
	for end := time.Now().Add(d); ; {
		pane, err := tm("capture-pane", "-p", "-t", session)
		if err != nil {
			t.Fatalf("capture-pane: %v\n%s", err, pane)
		}
		if strings.Contains(pane, want) {
			return pane
		}
		if time.Now().After(end) {
			t.Fatalf("pane never showed %q in %v:\n%s", want, d, pane)
		}
		time.Sleep(50 * time.Millisecond) // under the 300 ms frame a one-interval warning lasts
	}
}
