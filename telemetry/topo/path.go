package topo

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Path is the kernel's answer for one destination: the routing table entry
// that covers it (longest prefix, lowest metric, among the routes read), all
// of that route's next hops (several for ECMP), and the one next hop the
// kernel picked for a packet with no flow information (RouteGet).
type Path struct {
	Dst netip.Addr `json:"dst"`
	// Route is the covering route from the table; nil when only the
	// kernel's lookup found one (a table not read, a policy rule).
	Route *Route `json:"route,omitempty"`
	// NextHops are Route's next hops, or Chosen alone when Route is nil.
	NextHops []NextHop `json:"next_hops"`
	// Chosen is the next hop RouteGet returned.
	Chosen NextHop `json:"chosen"`
	// Src is the source address the kernel would use.
	Src netip.Addr `json:"src,omitzero"`
}

// PathTo analyses the path to dst in the namespace at netns (current if
// empty). It wraps ErrNoRoute when the kernel has none.
func PathTo(netns string, dst netip.Addr) (*Path, error) {
	s, err := Take(Options{Netns: netns, PathTo: []netip.Addr{dst}})
	if err != nil {
		return nil, err
	}
	return &s.Paths[0], nil
}

func pathTo(h *netlink.Handle, names map[int]string, routes []Route, dst netip.Addr) (*Path, error) {
	rs, err := h.RouteGet(dst.AsSlice())
	if err != nil || len(rs) == 0 {
		return nil, fmt.Errorf("topo: path to %v: %w (%v)", dst, ErrNoRoute, err)
	}
	got := rs[0]
	p := &Path{Dst: dst, Src: addrOf(got.Src),
		Chosen: NextHop{Gateway: addrOf(got.Gw), Ifindex: got.LinkIndex, Ifname: names[got.LinkIndex], Weight: 1}}
	best := -1
	for i, r := range routes {
		if r.Type != "unicast" || !r.Dst.Contains(dst) || r.Dst.Addr().Is4() != dst.Is4() {
			continue
		}
		if best < 0 || r.Dst.Bits() > routes[best].Dst.Bits() ||
			(r.Dst.Bits() == routes[best].Dst.Bits() && r.Metric < routes[best].Metric) {
			best = i
		}
	}
	if best >= 0 {
		r := routes[best]
		p.Route = &r
		p.NextHops = r.NextHops
		for _, nh := range r.NextHops {
			if nh.Ifindex == p.Chosen.Ifindex && nh.Gateway == p.Chosen.Gateway {
				p.Chosen.Weight = nh.Weight
			}
		}
	} else {
		p.NextHops = []NextHop{p.Chosen}
	}
	return p, nil
}
