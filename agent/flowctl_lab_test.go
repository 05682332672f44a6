package agent

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/telemetry"
)

// sendTOS sends n datagrams of 32 bytes with IP TOS tos from host from to
// to:port (ICMP port unreachable answers are expected and ignored).
func sendTOS(t *testing.T, from *lab.Host, to netip.Addr, port uint16, tos, n int) {
	t.Helper()
	var c *net.UDPConn
	err := from.Do(func() error {
		var err error
		c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, port)))
		if err != nil {
			return err
		}
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS, tos) }); err != nil {
			return err
		}
		return serr
	})
	if err != nil {
		t.Fatalf("udp socket in %s: %v", from.Name, err)
	}
	defer c.Close()
	buf := make([]byte, 32)
	for i := 0; i < n; i++ {
		for tries := 0; ; tries++ {
			_, err := c.Write(buf)
			if err == nil {
				break
			}
			if tries > 10 || !strings.Contains(err.Error(), "connection refused") {
				t.Fatalf("send datagram %d: %v", i, err)
			}
		}
	}
}

// waitFlowctl polls the marker on the agent's one interface until ok.
func waitFlowctl(t *testing.T, c *Client, what string, ok func(FlowctlIface) bool) FlowctlIface {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := c.Flowctl("", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Interfaces) != 1 {
			t.Fatalf("flowctl: %+v", r)
		}
		if ok(r.Interfaces[0]) {
			return r.Interfaces[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: marker %+v", what, r.Interfaces[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAgentFlowctl: an agent with the ECN marker reports and changes its
// parameters through the control API, and the kernel program follows
// them: with Kmin = Kmax = 0 every ECT packet leaves CE-marked, disabled
// none does.
func TestAgentFlowctl(t *testing.T) {
	l := newLab(t)
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	opts := testOptions(t, h0)
	opts.ECNMarker = &ECNMarkerOptions{RateBps: 1_000_000_000}
	opts.UnpinOnExit = true
	a, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			a.Close()
		}
	})
	c, err := Dial(opts.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	r, err := c.Flowctl("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := FlowctlIface{Iface: h0.Ifname, Hook: "tcx", RateBps: 1e9, KminBytes: DefaultECNKminBytes, KmaxBytes: DefaultECNKmaxBytes, PmaxPPM: DefaultECNPmaxPPM, Enabled: true}
	got := r.Interfaces[0]
	got.QueueBytes, got.Counters = 0, bpf.ECNCounters{}
	if !r.ECNMarkerEnabled || len(r.Interfaces) != 1 || got != want || len(r.DCQCNPresets) != 3 {
		t.Fatalf("read: %+v, want %+v", r, want)
	}
	if st, _ := c.Status(); !st.ECNMarker || st.LLDP {
		t.Fatalf("status: ecn %v lldp %v", st.ECNMarker, st.LLDP)
	}

	// Mark everything: 10 ECT(0) datagrams leave h0 marked.
	zero := uint32(0)
	r, err = c.Flowctl(h0.Ifname, &FlowctlSet{KminBytes: &zero, KmaxBytes: &zero})
	if err != nil || r.Interfaces[0].KminBytes != 0 || r.Interfaces[0].KmaxBytes != 0 || r.Interfaces[0].PmaxPPM != DefaultECNPmaxPPM {
		t.Fatalf("set kmin=kmax=0: %+v %v", r, err)
	}
	sendTOS(t, h0, h1.Addr.Addr(), 9, 2, 10)
	waitFlowctl(t, c, "10 ECT marked", func(f FlowctlIface) bool { return f.Counters.ECT == 10 && f.Counters.CEMarked == 10 })

	// Disabled: packets counted, nothing parsed or marked.
	off := false
	if _, err := c.Flowctl("", &FlowctlSet{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	sendTOS(t, h0, h1.Addr.Addr(), 9, 2, 10)
	f := waitFlowctl(t, c, "disabled", func(f FlowctlIface) bool { return f.Counters.Packets-f.Counters.ParseSkipped == 20 })
	if f.Counters.CEMarked != 10 || f.Counters.ECT != 10 || f.Enabled {
		t.Fatalf("disabled marker marked: %+v", f)
	}

	// Bad changes: clear errors, nothing changed.
	big := uint32(300_000)
	one := uint64(1)
	for _, b := range []struct {
		iface string
		set   FlowctlSet
		msg   string
	}{
		{"", FlowctlSet{KminBytes: &big}, "kmin_bytes 300000 above kmax_bytes 0"},
		{"", FlowctlSet{RateBps: &one}, "rate 1 bit/s outside"},
		{"eth9", FlowctlSet{Enabled: &off}, `iface "eth9" is not attached`},
	} {
		_, err := c.Flowctl(b.iface, &b.set)
		if err == nil || !strings.Contains(err.Error(), b.msg) || !strings.Contains(err.Error(), "("+CodeBadArgument+")") {
			t.Fatalf("set %+v on %q: %v, want bad_argument with %q", b.set, b.iface, err, b.msg)
		}
	}
	resp, err := c.Raw([]byte(`{"op":"flowctl","set":{"kmin_bytes":"many"}}`))
	if err != nil || resp.Code != CodeBadArgument || !strings.Contains(resp.Error, `set.kmin_bytes "many"`) {
		t.Fatalf("raw bad value: %+v %v", resp, err)
	}
	if f := waitFlowctl(t, c, "unchanged", func(FlowctlIface) bool { return true }); f.KminBytes != 0 || f.RateBps != 1e9 || f.Enabled {
		t.Fatalf("a refused change changed the marker: %+v", f)
	}

	// The marker's counters and the congestion gauges are on /metrics.
	_, body := httpGet(t, httpClientIn(h0), "http://"+a.MetricsAddr()+"/metrics")
	for _, w := range []string{
		`onet_ecnmark_ce_marked_packets_total{interface="` + h0.Ifname + `"} 10`,
		`onet_ecnmark_ect_packets_total{interface="` + h0.Ifname + `"} 10`,
		`onet_congestion_warning{kind="ce"} 0`,
		`onet_congestion_threshold{kind="ce"} 0.01`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}

	// Close detaches the marker and removes its pins.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if _, err := os.Stat(opts.PinDir + "/" + h0.Ifname + "/ecn"); !os.IsNotExist(err) {
		t.Fatalf("ecn pins left: %v", err)
	}
	var progs int
	err = h0.Do(func() error {
		ifi, err := net.InterfaceByName(h0.Ifname)
		if err != nil {
			return err
		}
		progs, err = tcxEgressPrograms(ifi.Index)
		return err
	})
	if err != nil || progs != 0 {
		t.Fatalf("tcx egress programs after Close: %d %v", progs, err)
	}
}

// TestAgentCongestionWarning: CE-marked traffic into the agent's interface
// raises the CE warning in the status and on /metrics; unmarked traffic
// clears it.
func TestAgentCongestionWarning(t *testing.T) {
	l := newLab(t)
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	opts := testOptions(t, h0)
	opts.CongestionInterval = Duration(50 * time.Millisecond)
	opts.Congestion = telemetry.CongestionThresholds{CERatio: 0.1, MinPackets: 20}
	opts.UnpinOnExit = true
	a, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	waitWarning := func(what string, want bool) Status {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			s := a.Status()
			has := false
			for _, w := range s.Warnings {
				if strings.HasPrefix(w, "congestion: CE ratio") {
					has = true
				}
			}
			if has == want {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: warnings %q, congestion %+v, classes %+v", what, s.Warnings, s.Congestion, s.Interfaces[0].Classes)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Wait for the detector's second sample, so that the first (its
	// baseline) is taken before the traffic.
	deadline := time.Now().Add(5 * time.Second)
	for a.Status().Congestion.IntervalSeconds == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the congestion detector took no second sample")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := waitWarning("idle", false); s.Congestion == nil || s.Congestion.Thresholds.CERatio != 0.1 || len(s.Warnings) != 0 {
		t.Fatalf("idle status: %+v", s)
	}
	sendTOS(t, h1, h0.Addr.Addr(), testOnetPort, 3, 200) // CE
	s := waitWarning("after 200 CE datagrams", true)
	if w, ok := s.Congestion.Warning(telemetry.CongestionCE); !ok || w.Value <= 0.1 {
		t.Fatalf("CE warning %+v", s.Congestion)
	}
	_, body := httpGet(t, httpClientIn(h0), "http://"+a.MetricsAddr()+"/metrics")
	if !strings.Contains(body, `onet_congestion_warning{kind="ce"} 1`) {
		t.Fatalf("/metrics lacks the CE warning:\n%s", grepLines(body, "onet_congestion"))
	}
	sendTOS(t, h1, h0.Addr.Addr(), testOnetPort, 2, 2000) // ECT(0), not marked
	waitWarning("after 2000 unmarked datagrams", false)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// tcxEgressPrograms counts the programs on ifindex's tcx egress hook.
func tcxEgressPrograms(ifindex int) (int, error) {
	r, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: ebpf.AttachTCXEgress})
	if err != nil {
		return 0, err
	}
	return len(r.Programs), nil
}
