package dataplane

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NextHop is where frames to a destination go: the outgoing interface, the
// addresses to put in the headers and the link MTU. ResolveNextHop returns
// it by value; it is immutable data the caller owns.
type NextHop struct {
	// Ifindex and Ifname identify the outgoing interface.
	Ifindex int
	Ifname  string
	// Src is the route's preferred source address, or the first address of
	// the interface in the destination's family when the route has none.
	Src netip.Addr
	// Gateway is the router the route goes through; the zero Addr when the
	// destination is on-link. It may be IPv6 for an IPv4 destination (RFC
	// 5549 "via inet6" routes).
	Gateway netip.Addr
	// SrcMAC is the interface's address, DstMAC the next hop's (the
	// gateway's, or the destination's when on-link).
	SrcMAC, DstMAC [6]byte
	// MTU is the largest IP packet the path takes: the interface MTU, or the
	// route's MTU metric when smaller.
	MTU int
}

// usableNUD are the neighbour states with a link-layer address we may send to.
const usableNUD = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_PERMANENT | unix.NUD_DELAY

// Polling and re-probing cadence of ResolveNextHop while the kernel resolves.
const (
	neighPollMin  = time.Millisecond
	neighPollMax  = 50 * time.Millisecond
	neighReprobe  = time.Second // kernel gives up after ~3 probes 1 s apart
	discardPort   = 9           // RFC 863 discard: the resolution trigger's port
	ethAddrLength = 6
)

// ResolveNextHop finds the route to dst and the link-layer address of its
// next hop in the network namespace of the calling thread (callers that work
// in another namespace lock their OS thread and switch it before calling;
// ResolveNextHop starts no goroutines and opens every socket on the calling
// thread).
//
// If the next hop's neighbour entry is not REACHABLE, STALE, PERMANENT or
// DELAY it triggers resolution by sending one empty UDP datagram to dst port
// 9 (discard) from a kernel UDP socket, then polls the neighbour table until
// the entry is usable, re-sending the trigger every second in case the kernel
// gave up, until ctx is done.
//
// Errors wrap ErrNoRoute when there is no route, the route is not unicast or
// local, or the neighbour does not resolve before ctx is done (then the error
// also wraps ctx.Err()); ErrNotSupported when the outgoing interface has no
// Ethernet address (loopback, tun, point-to-point).
func ResolveNextHop(ctx context.Context, dst netip.Addr) (NextHop, error) {
	var nh NextHop
	dst = dst.Unmap()
	if !dst.IsValid() || dst.IsUnspecified() || dst.IsMulticast() || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return nh, fmt.Errorf("resolve next hop of %v: not a unicast address: %w", dst, ErrNoRoute)
	}
	routes, err := netlink.RouteGet(dst.AsSlice())
	if err != nil {
		return nh, fmt.Errorf("route to %v: %w: %w", dst, ErrNoRoute, err)
	}
	if len(routes) == 0 {
		return nh, fmt.Errorf("route to %v: kernel returned no route: %w", dst, ErrNoRoute)
	}
	r := routes[0]
	if r.Type != unix.RTN_UNICAST {
		return nh, fmt.Errorf("route to %v: %s route, not unicast: %w", dst, routeTypeName(r.Type), ErrNoRoute)
	}

	link, err := netlink.LinkByIndex(r.LinkIndex)
	if err != nil {
		return nh, fmt.Errorf("route to %v: link %d: %w", dst, r.LinkIndex, err)
	}
	la := link.Attrs()
	nh.Ifindex, nh.Ifname, nh.MTU = la.Index, la.Name, la.MTU
	if r.MTU > 0 && r.MTU < nh.MTU {
		nh.MTU = r.MTU
	}
	if len(la.HardwareAddr) != ethAddrLength || la.Flags&net.FlagLoopback != 0 || isZeroMAC(la.HardwareAddr) {
		return nh, fmt.Errorf("route to %v goes through %s, which has no Ethernet address: %w", dst, la.Name, ErrNotSupported)
	}
	copy(nh.SrcMAC[:], la.HardwareAddr)

	if a, ok := netip.AddrFromSlice(r.Src); ok {
		nh.Src = a.Unmap()
	} else if nh.Src, err = firstLinkAddr(link, dst); err != nil {
		return nh, err
	}

	if a, ok := netip.AddrFromSlice(r.Gw); ok {
		nh.Gateway = a.Unmap()
	} else if via, ok := r.Via.(*netlink.Via); ok {
		if a, ok := netip.AddrFromSlice(via.Addr); ok {
			nh.Gateway = a.Unmap()
		}
	}
	hop := dst
	if nh.Gateway.IsValid() {
		hop = nh.Gateway
	}

	mac, err := waitNeighbour(ctx, nh.Ifindex, nh.Ifname, hop, dst)
	if err != nil {
		return nh, err
	}
	nh.DstMAC = mac
	return nh, nil
}

// waitNeighbour returns the link-layer address of hop on ifindex, triggering
// resolution with a datagram to dst and polling until ctx is done.
func waitNeighbour(ctx context.Context, ifindex int, ifname string, hop, dst netip.Addr) ([6]byte, error) {
	var mac [6]byte
	state, err := lookupNeighbour(ifindex, hop, &mac)
	if err != nil {
		return mac, err
	}
	if state&usableNUD != 0 {
		return mac, nil
	}
	probeErr := sendResolveProbe(dst, ifindex)
	lastProbe := time.Now()
	delay := neighPollMin
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			detail := "state " + nudName(state)
			if probeErr != nil {
				detail += ", trigger: " + probeErr.Error()
			}
			return mac, fmt.Errorf("resolve neighbour %v on %s (%s): %w: %w", hop, ifname, detail, ErrNoRoute, ctx.Err())
		case <-timer.C:
		}
		if state, err = lookupNeighbour(ifindex, hop, &mac); err != nil {
			return mac, err
		}
		if state&usableNUD != 0 {
			return mac, nil
		}
		if time.Since(lastProbe) >= neighReprobe {
			probeErr = sendResolveProbe(dst, ifindex)
			lastProbe = time.Now()
		}
		delay = min(delay*2, neighPollMax)
		timer.Reset(delay)
	}
}

// lookupNeighbour finds hop in the neighbour table of ifindex and returns its
// NUD state (0 when absent) with its link-layer address in mac when usable.
func lookupNeighbour(ifindex int, hop netip.Addr, mac *[6]byte) (int, error) {
	family := netlink.FAMILY_V6
	if hop.Is4() {
		family = netlink.FAMILY_V4
	}
	hop = hop.WithZone("")
	neighs, err := netlink.NeighList(ifindex, family)
	if err != nil {
		return 0, fmt.Errorf("list neighbours of link %d: %w", ifindex, err)
	}
	for _, n := range neighs {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || a.Unmap() != hop {
			continue
		}
		if n.State&usableNUD != 0 && (len(n.HardwareAddr) != ethAddrLength || isZeroMAC(n.HardwareAddr)) {
			return 0, nil // no usable address despite the state: keep waiting
		}
		copy(mac[:], n.HardwareAddr)
		return n.State, nil
	}
	return 0, nil
}

// sendResolveProbe sends one empty UDP datagram to dst:9 from a socket opened
// on the calling thread (hence in its network namespace), which makes the
// kernel resolve the next hop.
func sendResolveProbe(dst netip.Addr, ifindex int) error {
	var sa unix.Sockaddr
	family := unix.AF_INET6
	if dst.Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: discardPort, Addr: dst.As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: discardPort, Addr: dst.As16(), ZoneId: uint32(ifindex)}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
	if err != nil {
		return fmt.Errorf("open udp socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, nil, 0, sa); err != nil {
		return fmt.Errorf("send to %v port %d: %w", dst, discardPort, err)
	}
	return nil
}

// firstLinkAddr returns the first address of link in dst's family, preferring
// one of the same scope (link-local for link-local destinations, otherwise
// not link-local).
func firstLinkAddr(link netlink.Link, dst netip.Addr) (netip.Addr, error) {
	family := netlink.FAMILY_V6
	if dst.Is4() {
		family = netlink.FAMILY_V4
	}
	addrs, err := netlink.AddrList(link, family)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	var first netip.Addr
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLinkLocalUnicast() == dst.IsLinkLocalUnicast() {
			return ip, nil
		}
		if !first.IsValid() {
			first = ip
		}
	}
	if first.IsValid() {
		return first, nil
	}
	return netip.Addr{}, fmt.Errorf("%s has no address of the family of %v: %w", link.Attrs().Name, dst, ErrNoRoute)
}

func isZeroMAC(m net.HardwareAddr) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}

func routeTypeName(t int) string {
	switch t {
	case unix.RTN_LOCAL:
		return "local"
	case unix.RTN_BROADCAST:
		return "broadcast"
	case unix.RTN_MULTICAST:
		return "multicast"
	case unix.RTN_BLACKHOLE:
		return "blackhole"
	case unix.RTN_UNREACHABLE:
		return "unreachable"
	case unix.RTN_PROHIBIT:
		return "prohibit"
	}
	return fmt.Sprintf("type %d", t)
}

func nudName(s int) string {
	switch {
	case s == 0:
		return "absent"
	case s&unix.NUD_INCOMPLETE != 0:
		return "incomplete"
	case s&unix.NUD_FAILED != 0:
		return "failed"
	case s&unix.NUD_PROBE != 0:
		return "probe"
	case s&unix.NUD_NOARP != 0:
		return "noarp"
	}
	return fmt.Sprintf("%#x", s)
}
