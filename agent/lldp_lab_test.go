package agent

import (
	"strings"
	"testing"
	"time"
)

// TestAgentLLDP: two agents with LLDP on either end of a lab link see each
// other in their topology answers, with system name and port, and count
// the neighbour on /metrics.
func TestAgentLLDP(t *testing.T) {
	l := newLab(t)
	var agents [2]*Agent
	var clients [2]*Client
	for i := range agents {
		h := &l.Hosts[i]
		opts := testOptions(t, h)
		opts.LLDP = true
		opts.LLDPInterval = Duration(500 * time.Millisecond)
		opts.LLDPSystemName = "onet-agent-" + h.Name
		opts.UnpinOnExit = true
		a, err := Start(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		agents[i] = a
		c, err := Dial(opts.ControlSocket)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients[i] = c
	}
	for i, c := range clients {
		me, peer := &l.Hosts[i], &l.Hosts[1-i]
		deadline := time.Now().Add(10 * time.Second)
		for {
			topo, err := c.Topology()
			if err != nil {
				t.Fatal(err)
			}
			if !topo.LLDPEnabled {
				t.Fatalf("%s: topology says LLDP is off", me.Name)
			}
			if len(topo.LLDP) == 1 {
				n := topo.LLDP[0]
				if n.PDU.SystemName != "onet-agent-"+peer.Name || n.PortID != peer.Ifname || n.Ifname != me.Ifname || n.ChassisID != peer.MAC.String() {
					t.Fatalf("%s hears %+v, want %s port %s chassis %s on %s", me.Name, n, "onet-agent-"+peer.Name, peer.Ifname, peer.MAC, me.Ifname)
				}
				found := false
				for _, m := range n.PDU.ManagementAddresses {
					if m.String() == peer.Addr.Addr().String() {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: management addresses %v lack %s", me.Name, n.PDU.ManagementAddresses, peer.Addr.Addr())
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: LLDP neighbours %+v after 10 s", me.Name, topo.LLDP)
			}
			time.Sleep(50 * time.Millisecond)
		}
		st, err := c.Status()
		if err != nil || !st.LLDP {
			t.Fatalf("status: lldp %v %v", st.LLDP, err)
		}
		_, body := httpGet(t, httpClientIn(me), "http://"+agents[i].MetricsAddr()+"/metrics")
		if !strings.Contains(body, "onet_lldp_neighbors 1\n") || !strings.Contains(body, "onet_lldp_malformed_total 0\n") {
			t.Fatalf("%s /metrics:\n%s", me.Name, grepLines(body, "onet_lldp"))
		}
	}
}
