package lab

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/opennetworks/onetdp/internal/nsenter"
)

// Port is the sending end of the link into a host: the switch port toward
// it in a switched lab, or the other host's interface in a two-host lab.
// Its egress is where the lab's bottleneck (TBF) sits and where a
// congestion point such as the ECN marker belongs.
type Port struct {
	// Netns is the namespace path the port lives in.
	Netns string
	// Ifname and Ifindex name the interface inside Netns.
	Ifname  string
	Ifindex int
}

// Do runs fn on an OS thread inside the port's namespace (see Host.Do).
func (p Port) Do(fn func() error) error { return nsenter.DoPath(p.Netns, fn) }

// IngressPort finds the port that sends into host i.
func (l *Lab) IngressPort(i int) (Port, error) {
	if i < 0 || i >= len(l.Hosts) {
		return Port{}, fmt.Errorf("lab %s: host %d (have h0..h%d): %w", l.Name, i, len(l.Hosts)-1, ErrNoSuchHost)
	}
	p := Port{Netns: netnsPath(SwitchNetns(l.Name)), Ifname: switchPort(i)}
	if !l.Switched {
		if len(l.Hosts) != 2 {
			return Port{}, fmt.Errorf("lab %s: %d hosts without a switch: %w", l.Name, len(l.Hosts), ErrIncomplete)
		}
		p.Netns, p.Ifname = l.Hosts[1-i].Netns, hostIfname
	}
	c, err := openNs(p.Netns)
	if err != nil {
		return Port{}, fmt.Errorf("lab %s: %w", l.Name, err)
	}
	defer c.Close()
	link, err := c.nl.LinkByName(p.Ifname)
	if err != nil {
		return Port{}, fmt.Errorf("lab %s: %s in %s: %w", l.Name, p.Ifname, p.Netns, err)
	}
	p.Ifindex = link.Attrs().Index
	return p, nil
}

// QdiscStats are a qdisc's counters.
type QdiscStats struct {
	Packets    uint64 `json:"packets"`
	Bytes      uint64 `json:"bytes"`
	Drops      uint64 `json:"drops"`
	Overlimits uint64 `json:"overlimits"`
	// Backlog is what sits in the queue now.
	BacklogBytes   uint32 `json:"backlog_bytes"`
	BacklogPackets uint32 `json:"backlog_packets"`
}

// BottleneckStats reads the counters of the TBF on the link into host i
// (the lab's Bottleneck). It fails when that link has no TBF.
func (l *Lab) BottleneckStats(i int) (QdiscStats, error) {
	p, err := l.IngressPort(i)
	if err != nil {
		return QdiscStats{}, err
	}
	c, err := openNs(p.Netns)
	if err != nil {
		return QdiscStats{}, fmt.Errorf("lab %s: %w", l.Name, err)
	}
	defer c.Close()
	link, err := c.nl.LinkByIndex(p.Ifindex)
	if err != nil {
		return QdiscStats{}, fmt.Errorf("lab %s: %s in %s: %w", l.Name, p.Ifname, p.Netns, err)
	}
	qs, err := c.nl.QdiscList(link)
	if err != nil {
		return QdiscStats{}, fmt.Errorf("lab %s: qdiscs of %s: %w", l.Name, p.Ifname, err)
	}
	for _, q := range qs {
		if _, ok := q.(*netlink.Tbf); !ok {
			continue
		}
		s := q.Attrs().Statistics
		if s == nil || s.Basic == nil || s.Queue == nil {
			return QdiscStats{}, fmt.Errorf("lab %s: tbf on %s has no statistics", l.Name, p.Ifname)
		}
		return QdiscStats{Packets: uint64(s.Basic.Packets), Bytes: s.Basic.Bytes, Drops: uint64(s.Queue.Drops),
			Overlimits: uint64(s.Queue.Overlimits), BacklogBytes: s.Queue.Backlog, BacklogPackets: s.Queue.Qlen}, nil
	}
	return QdiscStats{}, fmt.Errorf("lab %s: no tbf on %s in %s", l.Name, p.Ifname, p.Netns)
}
