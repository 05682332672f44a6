package lab

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/internal/nsenter"
)

// nsConn is an open namespace and a netlink handle inside it.
type nsConn struct {
	path string
	ns   netns.NsHandle
	nl   *netlink.Handle
}

func openNs(path string) (*nsConn, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink handle in %s: %w", path, err)
	}
	return &nsConn{path: path, ns: ns, nl: h}, nil
}

func (c *nsConn) Close() {
	c.nl.Close()
	c.ns.Close()
}

// build creates the lab that o describes. The namespaces must not exist yet.
// On error the caller tears down whatever was created.
func build(o Options, want *Lab) error {
	names := make([]string, 0, o.Hosts+1)
	for i := 0; i < o.Hosts; i++ {
		names = append(names, HostNetns(o.Name, i))
	}
	if want.Switched {
		names = append(names, SwitchNetns(o.Name))
	}
	if err := createNamed(names); err != nil {
		return err
	}
	conns := make([]*nsConn, 0, len(names))
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, n := range names {
		c, err := openNs(netnsPath(n))
		if err != nil {
			return err
		}
		conns = append(conns, c)
		// Before any link exists, so that new links inherit "default".
		if err := quietIPv6(c.path, o.IPv6 && n != SwitchNetns(o.Name)); err != nil {
			return err
		}
		if err := setUpByName(c, "lo"); err != nil {
			return err
		}
	}
	hosts := conns[:o.Hosts]
	if want.Switched {
		if err := buildSwitch(o, want, conns[o.Hosts], hosts); err != nil {
			return err
		}
	} else if err := buildPair(o, want, hosts[0], hosts[1]); err != nil {
		return err
	}
	for i, c := range hosts {
		if err := configureHost(c, &want.Hosts[i]); err != nil {
			return err
		}
	}
	if b := o.Bottleneck; b != nil {
		// The link into host b.Host: its switch port, or the peer's eth0.
		c, ifname := conns[len(conns)-1], switchPort(b.Host)
		if !want.Switched {
			c, ifname = hosts[1-b.Host], hostIfname
		}
		if err := addTBF(c, ifname, b); err != nil {
			return err
		}
	}
	return nil
}

func setUpByName(c *nsConn, ifname string) error {
	l, err := c.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", ifname, c.path, err)
	}
	if err := c.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up in %s: %w", ifname, c.path, err)
	}
	return nil
}

// newVeth is a veth named name in the namespace it is created in, whose peer
// "eth0" (MAC peerMAC) lands in peerNs.
func newVeth(o Options, name string, mac net.HardwareAddr, peerNs netns.NsHandle, peerMAC net.HardwareAddr) *netlink.Veth {
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.MTU = o.MTU
	la.TxQLen = txQueueLen
	la.HardwareAddr = mac
	la.NumRxQueues = o.RxQueues
	la.NumTxQueues = o.RxQueues
	return &netlink.Veth{
		LinkAttrs:        la,
		PeerName:         hostIfname,
		PeerHardwareAddr: peerMAC,
		PeerNamespace:    netlink.NsFd(int(peerNs)),
		PeerTxQLen:       txQueueLen,
		PeerNumRxQueues:  uint32(o.RxQueues),
		PeerNumTxQueues:  uint32(o.RxQueues),
		PeerMTU:          uint32(o.MTU),
	}
}

// buildPair creates one veth: eth0 in h0, its peer eth0 in h1.
func buildPair(o Options, want *Lab, h0, h1 *nsConn) error {
	v := newVeth(o, hostIfname, want.Hosts[0].MAC, h1.ns, want.Hosts[1].MAC)
	if err := h0.nl.LinkAdd(v); err != nil {
		return fmt.Errorf("add veth %s <-> %s: %w", h0.path, h1.path, err)
	}
	return nil
}

// buildSwitch creates br0 in the switch namespace and one veth per host:
// p<i> on the bridge, eth0 in host i.
func buildSwitch(o Options, want *Lab, sw *nsConn, hosts []*nsConn) error {
	la := netlink.NewLinkAttrs()
	la.Name = bridgeName
	la.MTU = o.MTU
	// A plain switch: multicast is flooded, and the bridge sends no IGMP/MLD
	// queries of its own (with snooping on it sends two at startup).
	snoop := false
	br := &netlink.Bridge{LinkAttrs: la, MulticastSnooping: &snoop}
	if err := sw.nl.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge in %s: %w", sw.path, err)
	}
	brLink, err := sw.nl.LinkByName(bridgeName)
	if err != nil {
		return fmt.Errorf("find bridge in %s: %w", sw.path, err)
	}
	if err := nsenter.DoPath(sw.path, func() error { return setBridgeNoDelay(brLink.Attrs().Index) }); err != nil {
		return err
	}
	for i, h := range hosts {
		name := switchPort(i)
		if err := sw.nl.LinkAdd(newVeth(o, name, nil, h.ns, want.Hosts[i].MAC)); err != nil {
			return fmt.Errorf("add veth %s <-> %s: %w", name, h.path, err)
		}
		p, err := sw.nl.LinkByName(name)
		if err != nil {
			return fmt.Errorf("find %s in %s: %w", name, sw.path, err)
		}
		if err := sw.nl.LinkSetMaster(p, brLink); err != nil {
			return fmt.Errorf("attach %s to %s: %w", name, bridgeName, err)
		}
		if err := sw.nl.LinkSetUp(p); err != nil {
			return fmt.Errorf("set %s up in %s: %w", name, sw.path, err)
		}
	}
	// Enslaving ports may have lowered the bridge MTU; pin it.
	if err := sw.nl.LinkSetMTU(brLink, o.MTU); err != nil {
		return fmt.Errorf("set %s mtu %d: %w", bridgeName, o.MTU, err)
	}
	return setUpByName(sw, bridgeName)
}

// setBridgeNoDelay turns STP off and the forward delay to 0 on the bridge
// with that ifindex in the calling thread's namespace, so that ports forward
// as soon as they are up. (The netlink.Bridge type has no forward delay.)
func setBridgeNoDelay(ifindex int) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(ifindex)
	req.AddData(msg)
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(nl.IFLA_BR_FORWARD_DELAY, nl.Uint32Attr(0))
	data.AddRtAttr(nl.IFLA_BR_STP_STATE, nl.Uint32Attr(0))
	req.AddData(info)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("set bridge forward delay 0: %w", err)
	}
	return nil
}

// configureHost addresses eth0 in a host namespace and brings it up.
func configureHost(c *nsConn, h *Host) error {
	l, err := c.nl.LinkByName(hostIfname)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", hostIfname, c.path, err)
	}
	a := &netlink.Addr{IPNet: prefixToIPNet(h.Addr)}
	if err := c.nl.AddrAdd(l, a); err != nil {
		return fmt.Errorf("add %s to %s in %s: %w", h.Addr, hostIfname, c.path, err)
	}
	if h.Addr6.IsValid() {
		a6 := &netlink.Addr{IPNet: prefixToIPNet(h.Addr6), Flags: unix.IFA_F_NODAD}
		if err := c.nl.AddrAdd(l, a6); err != nil {
			return fmt.Errorf("add %s to %s in %s: %w", h.Addr6, hostIfname, c.path, err)
		}
	}
	if err := c.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up in %s: %w", hostIfname, c.path, err)
	}
	return nil
}

// tbfFor is the TBF qdisc that b asks for on the link with that ifindex.
func tbfFor(ifindex int, b *Bottleneck) *netlink.Tbf {
	rate := b.RateBps / 8
	return &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: ifindex,
			Handle:    netlink.MakeHandle(1, 0),
			Parent:    netlink.HANDLE_ROOT,
		},
		Rate:   rate,
		Limit:  b.LimitBytes,
		Buffer: burstTicks(rate, b.BurstBytes),
	}
}

// burstTicks is the time to send size bytes at rate bytes/s in packet
// scheduler ticks (64 ns), the unit of the TBF buffer. Unlike
// netlink.Xmittime it does not round through whole microseconds, so that
// burstBytes gives the size back exactly for round numbers.
func burstTicks(rate uint64, size uint32) uint32 {
	return uint32(math.Round(float64(size) / float64(rate) * 1e6 * netlink.TickInUsec()))
}

// burstBytes inverts burstTicks.
func burstBytes(rate uint64, ticks uint32) uint32 {
	return uint32(math.Round(float64(ticks) / netlink.TickInUsec() / 1e6 * float64(rate)))
}

func addTBF(c *nsConn, ifname string, b *Bottleneck) error {
	l, err := c.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", ifname, c.path, err)
	}
	if err := c.nl.QdiscAdd(tbfFor(l.Attrs().Index, b)); err != nil {
		return fmt.Errorf("add tbf on %s in %s: %w", ifname, c.path, err)
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// quietIPv6 keeps the lab's wire silent unless a test sends: with IPv6 off
// (always in the switch namespace) it disables IPv6 in the namespace, so
// links get no link-local address and send no DAD, router solicitations or
// MLD reports; with IPv6 on it skips DAD and router solicitations (a few MLD
// reports remain when a link comes up).
func quietIPv6(nsPath string, ipv6 bool) error {
	settings := [][2]string{
		{"all/disable_ipv6", "1"}, {"default/disable_ipv6", "1"},
	}
	if ipv6 {
		settings = [][2]string{
			{"all/accept_dad", "0"}, {"default/accept_dad", "0"},
			{"all/router_solicitations", "0"}, {"default/router_solicitations", "0"},
			{"default/accept_ra", "0"},
		}
	}
	return nsenter.DoPath(nsPath, func() error {
		// /proc/sys/net resolves against the opening thread's netns.
		for _, kv := range settings {
			p := "/proc/sys/net/ipv6/conf/" + kv[0]
			if err := os.WriteFile(p, []byte(kv[1]), 0); err != nil {
				return fmt.Errorf("set %s=%s in %s: %w", p, kv[1], nsPath, err)
			}
		}
		return nil
	})
}
