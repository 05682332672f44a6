package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// parseEntry splits a namespace name into lab name and role: host index, or
// -1 for the switch. ok is false for names that no lab would create.
func parseEntry(e string) (lab string, host int, ok bool) {
	if l, found := strings.CutSuffix(e, "-sw"); found {
		return l, -1, ValidateName(l) == nil
	}
	i := strings.LastIndex(e, "-h")
	if i < 0 {
		return "", 0, false
	}
	digits := e[i+2:]
	if len(digits) == 0 || len(digits) > 3 || (len(digits) > 1 && digits[0] == '0') {
		return "", 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || strings.ContainsAny(digits, "+-") {
		return "", 0, false
	}
	return e[:i], n, ValidateName(e[:i]) == nil
}

// scan lists the host indexes (sorted) and whether the switch namespace of
// lab name exist under NetnsDir.
func scan(name string) (hosts []int, sw bool, err error) {
	entries, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", NetnsDir, err)
	}
	for _, e := range entries {
		l, h, ok := parseEntry(e.Name())
		if !ok || l != name {
			continue
		}
		if h < 0 {
			sw = true
		} else {
			hosts = append(hosts, h)
		}
	}
	slices.Sort(hosts)
	return hosts, sw, nil
}

// List returns the names of the labs that have at least one namespace under
// NetnsDir, sorted.
func List() ([]string, error) {
	entries, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", NetnsDir, err)
	}
	var names []string
	for _, e := range entries {
		if l, _, ok := parseEntry(e.Name()); ok && !slices.Contains(names, l) {
			names = append(names, l)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Status reads lab name back from its namespaces. It fails with ErrNotFound
// when no namespace of the lab exists, and with ErrIncomplete when pieces
// are missing (run Up to repair). Bottleneck.BurstBytes is recomputed from
// the kernel's bucket time (64 ns ticks) and may differ from the requested
// value by a few bytes of rounding.
func Status(name string) (*Lab, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	obs, err := readLab(name)
	if err != nil {
		return nil, err
	}
	return obs.lab, nil
}

// observed is a lab read back, with what Up also checks before reusing it.
type observed struct {
	lab       *Lab
	problems  []string // drift that Status tolerates but Up repairs
	tbfBuffer uint32   // the bottleneck's bucket in scheduler ticks
	tbfCount  int
}

func (ob *observed) problem(format string, args ...any) {
	ob.problems = append(ob.problems, fmt.Sprintf(format, args...))
}

func readLab(name string) (*observed, error) {
	hosts, sw, err := scan(name)
	if err != nil {
		return nil, err
	}
	if len(hosts) == 0 && !sw {
		return nil, fmt.Errorf("lab %s: %w", name, ErrNotFound)
	}
	for i, h := range hosts {
		if h != i {
			return nil, fmt.Errorf("lab %s: host namespace %s missing: %w", name, HostNetns(name, i), ErrIncomplete)
		}
	}
	if len(hosts) < 2 {
		return nil, fmt.Errorf("lab %s: %d host namespaces: %w", name, len(hosts), ErrIncomplete)
	}
	ob := &observed{lab: &Lab{Name: name, Switched: sw, Hosts: make([]Host, len(hosts))}}
	if sw != (len(hosts) > 2) {
		ob.problem("switch namespace present=%v with %d hosts", sw, len(hosts))
	}
	for i := range hosts {
		if err := ob.readHost(name, i); err != nil {
			return nil, err
		}
	}
	if sw {
		if err := ob.readSwitch(name, len(hosts)); err != nil {
			return nil, err
		}
	}
	if ob.tbfCount > 1 {
		ob.problem("%d tbf qdiscs", ob.tbfCount)
	}
	return ob, nil
}

func (ob *observed) readHost(name string, i int) error {
	h := &ob.lab.Hosts[i]
	h.Name = "h" + strconv.Itoa(i)
	h.Netns = netnsPath(HostNetns(name, i))
	c, err := openNs(h.Netns)
	if err != nil {
		return fmt.Errorf("lab %s: %w: %w", name, ErrIncomplete, err)
	}
	defer c.Close()
	ob.checkUp(c, "lo")
	l, err := c.nl.LinkByName(hostIfname)
	if err != nil {
		return fmt.Errorf("lab %s: no %s in %s: %w", name, hostIfname, h.Netns, ErrIncomplete)
	}
	a := l.Attrs()
	h.Ifname, h.Ifindex, h.MAC, h.MTU, h.RxQueues = a.Name, a.Index, a.HardwareAddr, a.MTU, a.NumRxQueues
	if a.Flags&net.FlagUp == 0 {
		ob.problem("%s down in %s", hostIfname, h.Netns)
	}
	v4, err := c.nl.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("lab %s: addresses in %s: %w", name, h.Netns, err)
	}
	v6, err := c.nl.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return fmt.Errorf("lab %s: addresses in %s: %w", name, h.Netns, err)
	}
	for _, ad := range append(v4, v6...) {
		if ad.Scope != unix.RT_SCOPE_UNIVERSE {
			continue // link-local
		}
		p := ipNetToPrefix(ad.IPNet)
		dst := &h.Addr
		if p.Addr().Is6() {
			dst = &h.Addr6
		}
		if dst.IsValid() {
			ob.problem("extra address %s in %s", p, h.Netns)
			continue
		}
		*dst = p
	}
	if !ob.lab.Switched && len(ob.lab.Hosts) == 2 {
		// Two hosts: the bottleneck into host 1-i sits on host i's egress.
		ob.readTBF(c, l, 1-i)
	}
	return nil
}

func (ob *observed) readSwitch(name string, hosts int) error {
	path := netnsPath(SwitchNetns(name))
	c, err := openNs(path)
	if err != nil {
		return fmt.Errorf("lab %s: %w: %w", name, ErrIncomplete, err)
	}
	defer c.Close()
	ob.checkUp(c, "lo")
	br, err := c.nl.LinkByName(bridgeName)
	if err != nil {
		return fmt.Errorf("lab %s: no %s in %s: %w", name, bridgeName, path, ErrIncomplete)
	}
	if br.Type() != "bridge" {
		ob.problem("%s in %s is a %s", bridgeName, path, br.Type())
	}
	ob.checkUp(c, bridgeName)
	links, err := c.nl.LinkList()
	if err != nil {
		return fmt.Errorf("lab %s: links in %s: %w", name, path, err)
	}
	ports := 0
	for _, l := range links {
		a := l.Attrs()
		switch {
		case a.Name == "lo" || a.Name == bridgeName:
			continue
		case !strings.HasPrefix(a.Name, "p"):
			ob.problem("unexpected link %s in %s", a.Name, path)
			continue
		}
		i, err := strconv.Atoi(a.Name[1:])
		if err != nil || i < 0 || i >= hosts || switchPort(i) != a.Name {
			ob.problem("unexpected link %s in %s", a.Name, path)
			continue
		}
		ports++
		if a.MasterIndex != br.Attrs().Index {
			ob.problem("%s not on %s", a.Name, bridgeName)
		}
		if a.Flags&net.FlagUp == 0 {
			ob.problem("%s down in %s", a.Name, path)
		}
		if a.MTU != ob.lab.Hosts[i].MTU {
			ob.problem("%s mtu %d, host %d", a.Name, a.MTU, ob.lab.Hosts[i].MTU)
		}
		if a.NumRxQueues != ob.lab.Hosts[i].RxQueues {
			ob.problem("%s has %d rx queues", a.Name, a.NumRxQueues)
		}
		ob.readTBF(c, l, i)
	}
	if ports != hosts {
		return fmt.Errorf("lab %s: %d of %d switch ports in %s: %w", name, ports, hosts, path, ErrIncomplete)
	}
	return nil
}

func (ob *observed) checkUp(c *nsConn, ifname string) {
	l, err := c.nl.LinkByName(ifname)
	if err != nil {
		ob.problem("no %s in %s", ifname, c.path)
		return
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		ob.problem("%s down in %s", ifname, c.path)
	}
}

// readTBF records a root TBF on link l as the bottleneck into host into.
func (ob *observed) readTBF(c *nsConn, l netlink.Link, into int) {
	qs, err := c.nl.QdiscList(l)
	if err != nil {
		ob.problem("list qdiscs of %s in %s: %v", l.Attrs().Name, c.path, err)
		return
	}
	for _, q := range qs {
		t, ok := q.(*netlink.Tbf)
		if !ok || q.Attrs().Parent != netlink.HANDLE_ROOT {
			continue
		}
		ob.tbfCount++
		ob.tbfBuffer = t.Buffer
		ob.lab.Bottleneck = &Bottleneck{
			Host:       into,
			RateBps:    t.Rate * 8,
			BurstBytes: burstBytes(t.Rate, t.Buffer),
			LimitBytes: t.Limit,
		}
	}
}

// diff describes the first way the observed lab differs from want and o, or
// returns "" when it matches.
func (ob *observed) diff(want *Lab, o Options) string {
	if len(ob.problems) > 0 {
		return ob.problems[0]
	}
	got := ob.lab
	if got.Switched != want.Switched || len(got.Hosts) != len(want.Hosts) {
		return fmt.Sprintf("%d hosts (switched=%v), want %d (switched=%v)", len(got.Hosts), got.Switched, len(want.Hosts), want.Switched)
	}
	for i := range want.Hosts {
		g, w := &got.Hosts[i], &want.Hosts[i]
		switch {
		case g.Name != w.Name || g.Netns != w.Netns || g.Ifname != w.Ifname:
			return fmt.Sprintf("host %d is %s/%s/%s", i, g.Name, g.Netns, g.Ifname)
		case g.MAC.String() != w.MAC.String():
			return fmt.Sprintf("host %d mac %s, want %s", i, g.MAC, w.MAC)
		case g.Addr != w.Addr || g.Addr6 != w.Addr6:
			return fmt.Sprintf("host %d addresses %s %s, want %s %s", i, g.Addr, g.Addr6, w.Addr, w.Addr6)
		case g.MTU != w.MTU || g.RxQueues != w.RxQueues:
			return fmt.Sprintf("host %d mtu %d queues %d, want %d %d", i, g.MTU, g.RxQueues, w.MTU, w.RxQueues)
		}
	}
	gb, wb := got.Bottleneck, o.Bottleneck
	switch {
	case gb == nil && wb == nil:
		return ""
	case gb == nil || wb == nil:
		return fmt.Sprintf("bottleneck %v, want %v", gb, wb)
	}
	if t := tbfFor(0, wb); gb.Host != wb.Host || gb.RateBps != t.Rate*8 || gb.LimitBytes != t.Limit || ob.tbfBuffer != t.Buffer {
		return fmt.Sprintf("bottleneck %+v, want %+v", *gb, *wb)
	}
	return ""
}

func ipNetToPrefix(n *net.IPNet) netip.Prefix {
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}
