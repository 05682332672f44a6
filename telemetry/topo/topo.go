package topo

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/telemetry/lldp"
)

// Options configure Take. Owned by the caller.
type Options struct {
	// Netns is the path of the network namespace to read
	// ("/run/netns/x"); empty means the current one.
	Netns string
	// AllTables lists routes of every routing table (local included);
	// by default only the main table.
	AllTables bool
	// LLDP, when set, adds its neighbour table to the snapshot.
	LLDP *lldp.Agent
	// PathTo lists destinations to analyse (see Path).
	PathTo []netip.Addr
}

// Snapshot is a host's topology at one time.
type Snapshot struct {
	Time      time.Time       `json:"time"`
	Netns     string          `json:"netns,omitempty"`
	Links     []Link          `json:"links"`
	Addresses []Address       `json:"addresses"`
	Neighbors []Neighbor      `json:"neighbors"`
	Routes    []Route         `json:"routes"`
	Paths     []Path          `json:"paths,omitempty"`
	LLDP      []lldp.Neighbor `json:"lldp,omitempty"`
}

// Link is one network interface.
type Link struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	// Type is the driver kind netlink reports ("veth", "bridge",
	// "device", ...).
	Type string `json:"type"`
	MTU  int    `json:"mtu"`
	// AdminUp is the IFF_UP flag; OperState the RFC 2863 state ("up",
	// "down", "lowerlayerdown", "unknown", ...).
	AdminUp   bool   `json:"admin_up"`
	OperState string `json:"oper_state"`
	MAC       string `json:"mac,omitempty"`
	// Master is the name of the bridge or bond the link is enslaved to.
	Master      string `json:"master,omitempty"`
	MasterIndex int    `json:"master_index,omitempty"`
}

// Address is one interface address.
type Address struct {
	Ifindex int          `json:"ifindex"`
	Ifname  string       `json:"ifname"`
	Prefix  netip.Prefix `json:"prefix"`
	Scope   string       `json:"scope"`
}

// Neighbor is one ARP or NDP cache entry.
type Neighbor struct {
	Ifindex int        `json:"ifindex"`
	Ifname  string     `json:"ifname"`
	IP      netip.Addr `json:"ip"`
	MAC     string     `json:"mac,omitempty"`
	State   string     `json:"state"`
}

// NextHop is one next hop of a route: a gateway (invalid for a directly
// connected destination) through an interface. Weight is 1 for a
// single-path route, else the multipath weight (kernel hops + 1).
type NextHop struct {
	Gateway netip.Addr `json:"gateway,omitzero"`
	Ifindex int        `json:"ifindex"`
	Ifname  string     `json:"ifname"`
	Weight  int        `json:"weight"`
}

// Route is one routing table entry. NextHops has one element for a
// single-path route and several for an ECMP (multipath) route.
type Route struct {
	// Dst is the destination prefix; 0.0.0.0/0 or ::/0 for a default
	// route.
	Dst      netip.Prefix `json:"dst"`
	Table    int          `json:"table"`
	Protocol string       `json:"protocol"`
	Scope    string       `json:"scope"`
	Type     string       `json:"type"`
	Src      netip.Addr   `json:"src,omitzero"`
	Metric   int          `json:"metric"`
	NextHops []NextHop    `json:"next_hops"`
}

// Multipath reports whether the route has more than one next hop.
func (r Route) Multipath() bool { return len(r.NextHops) > 1 }

// Take reads a snapshot.
func Take(opts Options) (*Snapshot, error) {
	h, err := handle(opts.Netns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	s := &Snapshot{Time: time.Now(), Netns: opts.Netns}
	names, err := s.readLinks(h)
	if err != nil {
		return nil, err
	}
	if err := s.readAddrs(h, names); err != nil {
		return nil, err
	}
	if err := s.readNeighbors(h, names); err != nil {
		return nil, err
	}
	if s.Routes, err = listRoutes(h, names, opts.AllTables); err != nil {
		return nil, err
	}
	for _, dst := range opts.PathTo {
		p, err := pathTo(h, names, s.Routes, dst)
		if err != nil {
			return nil, err
		}
		s.Paths = append(s.Paths, *p)
	}
	if opts.LLDP != nil {
		s.LLDP = opts.LLDP.Neighbors()
	}
	return s, nil
}

// handle opens a netlink handle in the namespace at path (current if empty).
func handle(path string) (*netlink.Handle, error) {
	if path == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("topo: netlink: %w", err)
		}
		return h, nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("topo: open netns %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("topo: netlink in %s: %w", path, err)
	}
	return h, nil
}

func (s *Snapshot) readLinks(h *netlink.Handle) (map[int]string, error) {
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("topo: list links: %w", err)
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	for _, l := range links {
		a := l.Attrs()
		s.Links = append(s.Links, Link{
			Index: a.Index, Name: a.Name, Type: l.Type(), MTU: a.MTU,
			AdminUp: a.Flags&net.FlagUp != 0, OperState: a.OperState.String(),
			MAC: macString(a.HardwareAddr), Master: names[a.MasterIndex], MasterIndex: a.MasterIndex,
		})
	}
	slices.SortFunc(s.Links, func(x, y Link) int { return x.Index - y.Index })
	return names, nil
}

func (s *Snapshot) readAddrs(h *netlink.Handle, names map[int]string) error {
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("topo: list addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.IPNet == nil {
			continue
		}
		ones, _ := a.Mask.Size()
		s.Addresses = append(s.Addresses, Address{
			Ifindex: a.LinkIndex, Ifname: names[a.LinkIndex],
			Prefix: netip.PrefixFrom(ip.Unmap(), ones), Scope: scopeString(netlink.Scope(a.Scope)),
		})
	}
	return nil
}

func (s *Snapshot) readNeighbors(h *netlink.Handle, names map[int]string) error {
	neighs, err := h.NeighList(0, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("topo: list neighbours: %w", err)
	}
	for _, n := range neighs {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue // bridge fdb entries have no IP
		}
		s.Neighbors = append(s.Neighbors, Neighbor{
			Ifindex: n.LinkIndex, Ifname: names[n.LinkIndex], IP: ip.Unmap(),
			MAC: macString(n.HardwareAddr), State: neighState(n.State),
		})
	}
	return nil
}

// ErrNoRoute is returned by path analysis when the kernel has no route to
// the destination.
var ErrNoRoute = errors.New("no route")

func listRoutes(h *netlink.Handle, names map[int]string, all bool) ([]Route, error) {
	filter, mask := &netlink.Route{}, uint64(0)
	if all {
		filter, mask = &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE
	}
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, filter, mask)
	if err != nil {
		return nil, fmt.Errorf("topo: list routes: %w", err)
	}
	out := make([]Route, 0, len(rs))
	for _, r := range rs {
		out = append(out, convertRoute(r, names))
	}
	return out, nil
}

func convertRoute(r netlink.Route, names map[int]string) Route {
	out := Route{
		Table: r.Table, Protocol: r.Protocol.String(), Scope: scopeString(r.Scope),
		Type: routeType(r.Type), Metric: r.Priority, Src: addrOf(r.Src),
	}
	if r.Dst != nil {
		ip, _ := netip.AddrFromSlice(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		out.Dst = netip.PrefixFrom(ip.Unmap(), ones)
	} else if r.Family == unix.AF_INET6 {
		out.Dst = netip.MustParsePrefix("::/0")
	} else {
		out.Dst = netip.MustParsePrefix("0.0.0.0/0")
	}
	if len(r.MultiPath) == 0 {
		out.NextHops = []NextHop{{Gateway: addrOf(r.Gw), Ifindex: r.LinkIndex, Ifname: names[r.LinkIndex], Weight: 1}}
	}
	for _, nh := range r.MultiPath {
		out.NextHops = append(out.NextHops, NextHop{Gateway: addrOf(nh.Gw), Ifindex: nh.LinkIndex, Ifname: names[nh.LinkIndex], Weight: nh.Hops + 1})
	}
	return out
}

func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

func macString(m net.HardwareAddr) string {
	if len(m) == 0 {
		return ""
	}
	return m.String()
}
