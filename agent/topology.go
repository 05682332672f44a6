package agent

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/opennetworks/onetdp/telemetry/lldp"
)

// Topology answers {"op":"topology"}: the links of the agent's network
// namespace with their addresses.
type Topology struct {
	Links []Link `json:"links"`
	// LLDPEnabled says whether the agent runs LLDP (Options.LLDP); LLDP is
	// then its neighbour table: one entry per remote agent heard on a
	// managed interface, until its TTL runs out.
	LLDPEnabled bool            `json:"lldp_enabled"`
	LLDP        []lldp.Neighbor `json:"lldp,omitempty"`
}

// Link is one network interface.
type Link struct {
	Name      string   `json:"name"`
	Index     int      `json:"index"`
	Type      string   `json:"type"`
	MTU       int      `json:"mtu"`
	MAC       string   `json:"mac,omitempty"`
	OperState string   `json:"oper_state"`
	Up        bool     `json:"up"`
	XDPProgID uint32   `json:"xdp_prog_id,omitempty"`
	Addresses []string `json:"addresses"`
	// Managed is true for interfaces this agent attached to.
	Managed bool `json:"managed"`
}

// Topology lists links and their addresses through netlink.
func (a *Agent) Topology() (Topology, error) {
	links, err := a.nl.LinkList()
	if err != nil {
		return Topology{}, fmt.Errorf("topology: list links: %w", err)
	}
	t := Topology{Links: []Link{}}
	for _, l := range links {
		at := l.Attrs()
		lk := Link{
			Name: at.Name, Index: at.Index, Type: l.Type(), MTU: at.MTU,
			OperState: at.OperState.String(), Up: at.Flags&net.FlagUp != 0,
			Addresses: []string{},
		}
		if len(at.HardwareAddr) > 0 {
			lk.MAC = at.HardwareAddr.String()
		}
		if at.Xdp != nil && at.Xdp.Attached {
			lk.XDPProgID = at.Xdp.ProgId
		}
		for _, ifc := range a.ifaces {
			if ifc.ifindex == at.Index {
				lk.Managed = true
			}
		}
		addrs, err := a.nl.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return Topology{}, fmt.Errorf("topology: addresses of %s: %w", at.Name, err)
		}
		for _, ad := range addrs {
			lk.Addresses = append(lk.Addresses, ad.IPNet.String())
		}
		t.Links = append(t.Links, lk)
	}
	if a.lldp != nil {
		t.LLDPEnabled = true
		t.LLDP = a.lldp.Neighbors()
	}
	return t, nil
}
