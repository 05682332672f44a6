package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

const testOnetPort = 4792

// newLab builds a two-host lab; the agent goes on h0, traffic comes from h1.
func newLab(t *testing.T) *lab.Lab {
	t.Helper()
	testutil.RequireBPFFS(t)
	return labtest.New(t, lab.Options{Hosts: 2})
}

// testOptions are in-process agent options for host h: a unique pin dir
// (removed at cleanup), metrics on an ephemeral port, a socket in a temp dir.
func testOptions(t *testing.T, h *lab.Host) Options {
	t.Helper()
	pin := filepath.Join("/sys/fs/bpf", testutil.UniqueName("onetag"))
	t.Cleanup(func() {
		for _, ifname := range []string{h.Ifname} {
			os.RemoveAll(filepath.Join(pin, ifname))
		}
		os.Remove(pin)
	})
	return Options{
		Interfaces:    []string{h.Ifname},
		PinDir:        pin,
		MetricsAddr:   "127.0.0.1:0",
		ControlSocket: filepath.Join(t.TempDir(), "agent.sock"),
		OnetPort:      testOnetPort,
		Netns:         h.Netns,
	}
}

// sendUDP sends n datagrams of 32 bytes from host from to to:port through
// a kernel UDP socket and returns once they are written.
func sendUDP(t *testing.T, from *lab.Host, to netip.Addr, port uint16, n int) {
	t.Helper()
	var c *net.UDPConn
	err := from.Do(func() error {
		var err error
		c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, port)))
		return err
	})
	if err != nil {
		t.Fatalf("udp socket in %s: %v", from.Name, err)
	}
	defer c.Close()
	buf := make([]byte, 32)
	for i := 0; i < n; i++ {
		// Unreachable-port ICMP answers make later writes fail with
		// ECONNREFUSED; those datagrams were still sent, so retry the
		// same one only when the write itself did not happen.
		for tries := 0; ; tries++ {
			_, err := c.Write(buf)
			if err == nil {
				break
			}
			if tries > 10 || !strings.Contains(err.Error(), "connection refused") {
				t.Fatalf("send datagram %d to %s:%d: %v", i, to, port, err)
			}
		}
	}
}

// xdpAttached reports whether netlink shows an XDP program on h's interface.
func xdpAttached(t *testing.T, h *lab.Host) bool {
	t.Helper()
	var att bool
	err := h.Do(func() error {
		l, err := netlink.LinkByName(h.Ifname)
		if err != nil {
			return err
		}
		att = l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
		return nil
	})
	if err != nil {
		t.Fatalf("link %s in %s: %v", h.Ifname, h.Name, err)
	}
	return att
}

// httpClientIn returns an HTTP client whose connections are opened in h's
// namespace.
func httpClientIn(h *lab.Host) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := h.Do(func() error {
			var err error
			c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func httpGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// waitClasses polls the agent's status until the packet counts of the
// classes in want are exactly those (at most 5 s) and returns the last.
func waitClasses(t *testing.T, a *Agent, want map[string]uint64) map[string]ClassStatus {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := a.Status()
		if len(s.Interfaces) != 1 {
			t.Fatalf("status has %d interfaces", len(s.Interfaces))
		}
		cs := s.Interfaces[0].Classes
		ok := true
		for k, v := range want {
			if cs[k].Packets != v {
				ok = false
			}
		}
		if ok {
			return cs
		}
		if time.Now().After(deadline) {
			t.Fatalf("class counters %+v, want packets %v", cs, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentRestartKeepsPinnedCounters(t *testing.T) {
	l := newLab(t)
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	dst := h0.Addr.Addr()
	opts := testOptions(t, h0)

	a, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if !xdpAttached(t, h0) {
		t.Fatal("no XDP program on h0 after Start")
	}
	hc := httpClientIn(h0)
	code, body := httpGet(t, hc, "http://"+a.MetricsAddr()+"/healthz")
	var hs Status
	if err := json.Unmarshal([]byte(body), &hs); code != http.StatusOK || err != nil || !hs.Healthy || !hs.Interfaces[0].Attached {
		t.Fatalf("healthz %d %v: %s", code, err, body)
	}
	sendUDP(t, h1, dst, testOnetPort, 7)
	sendUDP(t, h1, dst, 4791, 5)
	waitClasses(t, a, map[string]uint64{"onet": 7, "rocev2": 5})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if xdpAttached(t, h0) {
		t.Fatal("XDP program still attached after Close")
	}
	if _, err := os.Stat(filepath.Join(opts.PinDir, h0.Ifname, "onet_counters")); err != nil {
		t.Fatalf("counters not pinned after Close: %v", err)
	}
	if _, err := os.Stat(opts.ControlSocket); !os.IsNotExist(err) {
		t.Fatalf("control socket left behind: %v", err)
	}

	// Traffic while no agent runs is not counted; the restart continues.
	sendUDP(t, h1, dst, testOnetPort, 2)
	a2, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a2.Close() })
	waitClasses(t, a2, map[string]uint64{"onet": 7, "rocev2": 5})
	sendUDP(t, h1, dst, testOnetPort, 3)
	waitClasses(t, a2, map[string]uint64{"onet": 10, "rocev2": 5})

	c, err := Dial(opts.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Unpin(); err != nil {
		t.Fatal(err)
	}
	if err := a2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(opts.PinDir); !os.IsNotExist(err) {
		t.Fatalf("pin dir after unpin and Close: %v", err)
	}
	a3, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a3.Close() })
	waitClasses(t, a3, map[string]uint64{"onet": 0, "rocev2": 0})
	a3.RequestUnpin()
}

func TestAgentSecondInstanceRefused(t *testing.T) {
	l := newLab(t)
	opts := testOptions(t, &l.Hosts[0])
	a, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.RequestUnpin()
	// A second agent on the same socket (and interface) is refused and
	// leaves nothing behind.
	o2 := opts
	o2.PinDir = opts.PinDir + "b"
	if b, err := Start(o2); err == nil {
		b.Close()
		t.Fatal("second agent on the same socket started")
	} else if !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second agent: %v", err)
	}
	if _, err := os.Stat(o2.PinDir); !os.IsNotExist(err) {
		t.Fatalf("refused agent left %s: %v", o2.PinDir, err)
	}
	// An agent that cannot attach (the interface is taken) cleans up too.
	o3 := opts
	o3.PinDir, o3.ControlSocket = opts.PinDir+"c", "off"
	if b, err := Start(o3); err == nil {
		b.Close()
		t.Fatal("second agent on a taken interface started")
	}
	if _, err := os.Stat(o3.PinDir); !os.IsNotExist(err) {
		t.Fatalf("failed agent left %s: %v", o3.PinDir, err)
	}
	if !xdpAttached(t, &l.Hosts[0]) {
		t.Fatal("the failed second start detached the first agent's program")
	}
	if _, err := Start(Options{Interfaces: []string{"nosuch0"}, Netns: l.Hosts[0].Netns, MetricsAddr: "off", ControlSocket: "off", PinDir: opts.PinDir + "d"}); err == nil || !strings.Contains(err.Error(), "interface nosuch0") {
		t.Fatalf("missing interface: %v", err)
	}
}
