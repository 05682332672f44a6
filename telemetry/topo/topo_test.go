package topo

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
	"github.com/opennetworks/onetdp/telemetry/lldp"
)

func findRoute(s *Snapshot, dst netip.Prefix) *Route {
	for i := range s.Routes {
		if s.Routes[i].Dst == dst {
			return &s.Routes[i]
		}
	}
	return nil
}

func TestSnapshotLabHost(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 3})
	h0, h1, h2 := &l.Hosts[0], &l.Hosts[1], &l.Hosts[2]

	// An ECMP route in h0 over h1 and h2 (weights 1 and 2), and a
	// permanent neighbour entry, both through netlink.
	ecmp := netip.MustParsePrefix("198.19.254.0/24")
	if l.Hosts[0].Addr.Overlaps(ecmp) {
		t.Fatalf("lab subnet %v overlaps the test prefix", h0.Addr)
	}
	nbrMAC := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 7}
	nbrIP := h2.Addr.Addr()
	if err := h0.Do(func() error {
		err := netlink.RouteAdd(&netlink.Route{
			Dst: &net.IPNet{IP: ecmp.Addr().AsSlice(), Mask: net.CIDRMask(24, 32)},
			MultiPath: []*netlink.NexthopInfo{
				{LinkIndex: h0.Ifindex, Gw: h1.Addr.Addr().AsSlice(), Hops: 0},
				{LinkIndex: h0.Ifindex, Gw: h2.Addr.Addr().AsSlice(), Hops: 1},
			},
		})
		if err != nil {
			return err
		}
		return netlink.NeighAdd(&netlink.Neigh{LinkIndex: h0.Ifindex, IP: nbrIP.AsSlice(), HardwareAddr: nbrMAC, State: netlink.NUD_PERMANENT, Family: netlink.FAMILY_V4})
	}); err != nil {
		t.Fatal(err)
	}

	s, err := Take(Options{Netns: h0.Netns, PathTo: []netip.Addr{netip.MustParseAddr("198.19.254.77"), h1.Addr.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	var eth0 *Link
	for i := range s.Links {
		if s.Links[i].Name == "eth0" {
			eth0 = &s.Links[i]
		}
	}
	if eth0 == nil || eth0.Index != h0.Ifindex || eth0.MAC != h0.MAC.String() || eth0.MTU != 1500 || eth0.Type != "veth" || !eth0.AdminUp || eth0.OperState != "up" {
		t.Fatalf("eth0 %+v (links %+v)", eth0, s.Links)
	}
	found := false
	for _, a := range s.Addresses {
		if a.Ifname == "eth0" && a.Prefix == h0.Addr && a.Scope == "global" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no %v on eth0: %+v", h0.Addr, s.Addresses)
	}
	conn := findRoute(s, h0.Addr.Masked())
	if conn == nil || conn.Multipath() || conn.NextHops[0].Ifname != "eth0" || conn.NextHops[0].Gateway.IsValid() || conn.Scope != "link" || conn.Protocol != "kernel" || conn.Src != h0.Addr.Addr() {
		t.Fatalf("connected route %+v", conn)
	}
	r := findRoute(s, ecmp)
	if r == nil || !r.Multipath() || len(r.NextHops) != 2 {
		t.Fatalf("ecmp route %+v", r)
	}
	want := []NextHop{
		{Gateway: h1.Addr.Addr(), Ifindex: h0.Ifindex, Ifname: "eth0", Weight: 1},
		{Gateway: h2.Addr.Addr(), Ifindex: h0.Ifindex, Ifname: "eth0", Weight: 2},
	}
	if r.NextHops[0] != want[0] || r.NextHops[1] != want[1] {
		t.Fatalf("ecmp next hops %+v, want %+v", r.NextHops, want)
	}
	found = false
	for _, n := range s.Neighbors {
		if n.IP == nbrIP && n.MAC == nbrMAC.String() && n.State == "permanent" && n.Ifname == "eth0" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no permanent neighbour %v: %+v", nbrIP, s.Neighbors)
	}

	// Path analysis: the ECMP prefix gives both next hops and the kernel's
	// pick among them; a lab address is directly connected.
	p := s.Paths[0]
	if p.Route == nil || p.Route.Dst != ecmp || len(p.NextHops) != 2 || p.Src != h0.Addr.Addr() {
		t.Fatalf("path to ecmp %+v", p)
	}
	if p.Chosen != want[0] && p.Chosen != want[1] {
		t.Fatalf("chosen %+v is not one of %+v", p.Chosen, want)
	}
	p = s.Paths[1]
	if p.Route == nil || p.Route.Dst != h0.Addr.Masked() || p.Chosen.Gateway.IsValid() || p.Chosen.Ifname != "eth0" {
		t.Fatalf("path to %v: %+v", h1.Addr, p)
	}
	if _, err := PathTo(h0.Netns, netip.MustParseAddr("198.18.255.255")); !errors.Is(err, ErrNoRoute) {
		// h0 has no default route: anything outside its subnets is
		// unreachable.
		t.Fatalf("path without route: %v", err)
	}

	// JSON renders addresses as text.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil || back["dst"] != "198.19.254.0/24" {
		t.Fatalf("json %s: %v", b, err)
	}
}

func TestSnapshotLLDP(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2})
	var a0, a1 *lldp.Agent
	if err := l.Hosts[0].Do(func() (err error) {
		a0, err = lldp.NewAgent(lldp.AgentOptions{Interfaces: []string{"eth0"}, ReceiveOnly: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer a0.Close()
	if err := l.Hosts[1].Do(func() (err error) {
		a1, err = lldp.NewAgent(lldp.AgentOptions{Interfaces: []string{"eth0"}, SystemName: "peer1"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer a1.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		s, err := Take(Options{Netns: l.Hosts[0].Netns, LLDP: a0})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.LLDP) == 1 && s.LLDP[0].PDU.SystemName == "peer1" && s.LLDP[0].PortID == "eth0" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lldp in snapshot: %+v", s.LLDP)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTakeBadNetns(t *testing.T) {
	if _, err := Take(Options{Netns: "/nonexistent/netns"}); err == nil {
		t.Fatal("missing netns accepted")
	}
}
