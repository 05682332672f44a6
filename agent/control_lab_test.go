package agent

import (
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestAgentControlAPI(t *testing.T) {
	l := newLab(t)
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	opts := testOptions(t, h0)
	a, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	a.RequestUnpin()
	c, err := Dial(opts.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Fault injection: every onet frame dropped and counted.
	fr, err := c.SetFault("", "onet", 1_000_000)
	if err != nil || len(fr.Interfaces) != 1 || fr.Interfaces[0] != h0.Ifname {
		t.Fatalf("fault: %+v %v", fr, err)
	}
	sendUDP(t, h1, h0.Addr.Addr(), testOnetPort, 4)
	cs := waitClasses(t, a, map[string]uint64{"onet": 4})
	if cs["onet"].FaultDrop != 4 || cs["onet"].FaultPPM != 1_000_000 {
		t.Fatalf("onet after full fault: %+v", cs["onet"])
	}
	if _, err := c.SetFault(h0.Ifname, "onet", 0); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status()
	if err != nil || !st.Healthy || st.Interfaces[0].Classes["onet"].FaultPPM != 0 || st.OnetPort != testOnetPort || !st.UnpinOnExit {
		t.Fatalf("status: %+v %v", st, err)
	}

	flows, err := c.Flows(5)
	if err != nil || len(flows) != 1 {
		t.Fatalf("flows: %+v %v", flows, err)
	}
	if f := flows[0]; f.Class != "onet" || f.Dst != h0.Addr.Addr().String() || f.Src != h1.Addr.Addr().String() || f.DstPort != testOnetPort || f.Packets != 4 || f.Iface != h0.Ifname {
		t.Fatalf("flow %+v", f)
	}

	topo, err := c.Topology()
	if err != nil {
		t.Fatal(err)
	}
	var eth *Link
	for i := range topo.Links {
		if topo.Links[i].Name == h0.Ifname {
			eth = &topo.Links[i]
		}
	}
	if eth == nil || !eth.Managed || eth.XDPProgID == 0 || eth.MAC != h0.MAC.String() || !containsStr(eth.Addresses, h0.Addr.String()) {
		t.Fatalf("topology eth0 %+v in %+v", eth, topo)
	}

	// Malformed requests: a clear error each, the connection stays usable.
	bad := []struct{ in, code, msg string }{
		{`{"op":`, CodeMalformed, "unexpected EOF"},
		{`not json`, CodeMalformed, "invalid character"},
		{`{"op":"shutdown"}`, CodeUnknownOp, `unknown op "shutdown"`},
		{`{"op":"flows","limit":100000}`, CodeBadArgument, "limit 100000"},
		{`{"op":"fault","class":"onet","ppm":2000000}`, CodeBadArgument, "ppm 2000000"},
		{`{"op":"fault","iface":"eth9","class":"onet","ppm":1}`, CodeBadArgument, `iface "eth9" is not attached`},
	}
	for _, b := range bad {
		r, err := c.Raw([]byte(b.in))
		if err != nil {
			t.Fatalf("%s: %v", b.in, err)
		}
		if r.Code != b.code || !strings.Contains(r.Error, b.msg) || r.Result != nil {
			t.Fatalf("%s: %+v, want code %s with %q", b.in, r, b.code, b.msg)
		}
	}
	if err := c.Do(Request{Op: "nope"}, nil); !errors.Is(err, ErrRemote) {
		t.Fatalf("Do with a bad op: %v", err)
	}
	// A line over the limit is answered, then the connection is closed.
	big, err := Dial(opts.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	r, err := big.Raw([]byte(`{"op":"status","x":"` + strings.Repeat("a", MaxRequestBytes) + `"}`))
	big.Close()
	if err != nil || r.Code != CodeMalformed || !strings.Contains(r.Error, "longer than") {
		t.Fatalf("oversized request: %+v %v", r, err)
	}
	// A request cut short by the client closing its side is answered as
	// malformed, and does not disturb the agent.
	raw, err := net.Dial("unix", opts.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte(`{"op":"sta`))
	raw.(*net.UnixConn).CloseWrite()
	ans, err := io.ReadAll(raw)
	raw.Close()
	if err != nil || !strings.Contains(string(ans), `"code":"malformed"`) {
		t.Fatalf("truncated request: %s %v", ans, err)
	}
	if _, err := c.Status(); err != nil {
		t.Fatalf("status after the bad requests: %v", err)
	}

	// The errors are counted on /metrics.
	_, body := httpGet(t, httpClientIn(h0), "http://"+a.MetricsAddr()+"/metrics")
	want := map[string]int{CodeMalformed: 4, CodeUnknownOp: 2, CodeBadArgument: 3, CodeFailed: 0}
	for code, n := range want {
		re := regexp.MustCompile(`(?m)^onet_agent_control_errors_total\{code="` + code + `"\} (\d+)$`)
		m := re.FindStringSubmatch(body)
		if m == nil || m[1] != strconv.Itoa(n) {
			t.Fatalf("control errors %s: %v, want %d", code, m, n)
		}
	}
	if !strings.Contains(body, `onet_xdp_fault_drops_total{class="onet",interface="`+h0.Ifname+`"} 4`) {
		t.Fatalf("metrics lack the fault drops:\n%.3000s", body)
	}
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
