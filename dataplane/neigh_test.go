package dataplane_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

// neighLabMTU differs from the lab default so that the tests see the MTU
// come from the interface.
const neighLabMTU = 1400

// newNeighLab is a 2-host lab with IPv4 and IPv6: h0 (side A, .1 and ::1)
// and h1 (side B, .2 and ::2) on one /24 and one /64.
func newNeighLab(t *testing.T) *lab.Lab {
	t.Helper()
	return labtest.New(t, lab.Options{MTU: neighLabMTU, IPv6: true})
}

// resolveIn runs ResolveNextHop for dst inside h's namespace with timeout,
// and reports how long it took.
func resolveIn(h *lab.Host, dst netip.Addr, timeout time.Duration) (dataplane.NextHop, time.Duration, error) {
	var nh dataplane.NextHop
	var elapsed time.Duration
	err := h.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		var err error
		nh, err = dataplane.ResolveNextHop(ctx, dst)
		elapsed = time.Since(start)
		return err
	})
	return nh, elapsed, err
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func macArray(m net.HardwareAddr) [6]byte {
	var a [6]byte
	copy(a[:], m)
	return a
}

func TestResolveNextHop(t *testing.T) {
	l := newNeighLab(t)
	a, b := &l.Hosts[0], &l.Hosts[1]

	// A gateway route with a smaller MTU metric, for each family, through B.
	// Both live only in A's namespace; gw4 is the /24 after the lab's.
	g := a.Addr.Masked().Addr().As4()
	g[2]++
	gw4 := netip.PrefixFrom(netip.AddrFrom4(g), 24)
	gw6 := netip.MustParsePrefix("fd00:198:18:ff00::/64")
	err := a.Do(func() error {
		for _, r := range []struct {
			dst netip.Prefix
			via netip.Addr
		}{{gw4, b.Addr.Addr()}, {gw6, b.Addr6.Addr()}} {
			route := &netlink.Route{LinkIndex: a.Ifindex, Dst: prefixNet(r.dst), Gw: r.via.AsSlice(), MTU: 1300}
			if err := netlink.RouteAdd(route); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("add gateway routes in %s: %v", a.NetnsName(), err)
	}

	for _, c := range []struct {
		name    string
		dst     netip.Addr
		src     netip.Addr
		gateway netip.Addr
		mtu     int
	}{
		{"ipv4", b.Addr.Addr(), a.Addr.Addr(), netip.Addr{}, neighLabMTU},
		{"ipv4-mapped", netip.AddrFrom16(b.Addr.Addr().As16()), a.Addr.Addr(), netip.Addr{}, neighLabMTU},
		{"ipv6", b.Addr6.Addr(), a.Addr6.Addr(), netip.Addr{}, neighLabMTU},
		{"ipv4-gateway", gw4.Addr().Next(), a.Addr.Addr(), b.Addr.Addr(), 1300},
		{"ipv6-gateway", gw6.Addr().Next(), a.Addr6.Addr(), b.Addr6.Addr(), 1300},
	} {
		t.Run(c.name, func(t *testing.T) {
			nh, _, err := resolveIn(a, c.dst, 5*time.Second)
			if err != nil {
				t.Fatalf("ResolveNextHop(%v): %v", c.dst, err)
			}
			want := dataplane.NextHop{
				Ifindex: a.Ifindex, Ifname: a.Ifname,
				Src: c.src, Gateway: c.gateway,
				SrcMAC: macArray(a.MAC), DstMAC: macArray(b.MAC),
				MTU: c.mtu,
			}
			if nh != want {
				t.Fatalf("ResolveNextHop(%v) =\n %+v\nwant\n %+v", c.dst, nh, want)
			}
		})
	}
}

func TestResolveNextHopFailures(t *testing.T) {
	l := newNeighLab(t)
	a := &l.Hosts[0]
	subnet := a.Addr.Masked()
	// An address two /24s after the lab's: unrouted.
	next := subnet.Addr().As4()
	next[2] += 2
	noRoute4 := netip.AddrFrom4(next).Next()
	unanswered4 := subnet.Addr().As4()
	unanswered4[3] = 99
	unanswered6 := a.Addr6.Addr().As16()
	unanswered6[15] = 0x99
	for _, c := range []struct {
		name    string
		dst     netip.Addr
		timeout time.Duration
		want    []error
	}{
		// No route at all: fails at once, before the deadline.
		{"ipv4-no-route", noRoute4, 5 * time.Second, []error{dataplane.ErrNoRoute}},
		{"ipv6-no-route", netip.MustParseAddr("fd00:198:18:fe00::1"), 5 * time.Second, []error{dataplane.ErrNoRoute}},
		{"ipv4-local", a.Addr.Addr(), 5 * time.Second, []error{dataplane.ErrNoRoute}},
		{"ipv4-invalid", netip.Addr{}, 5 * time.Second, []error{dataplane.ErrNoRoute}},
		{"ipv4-multicast", netip.MustParseAddr("239.1.2.3"), 5 * time.Second, []error{dataplane.ErrNoRoute}},
		// On-link but nobody answers: fails when ctx expires.
		{"ipv4-unanswered", netip.AddrFrom4(unanswered4), 400 * time.Millisecond, []error{dataplane.ErrNoRoute, context.DeadlineExceeded}},
		{"ipv6-unanswered", netip.AddrFrom16(unanswered6), 400 * time.Millisecond, []error{dataplane.ErrNoRoute, context.DeadlineExceeded}},
	} {
		t.Run(c.name, func(t *testing.T) {
			nh, elapsed, err := resolveIn(a, c.dst, c.timeout)
			if err == nil {
				t.Fatalf("ResolveNextHop(%v) = %+v, want an error", c.dst, nh)
			}
			t.Logf("error after %v: %v", elapsed.Round(time.Millisecond), err)
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Errorf("ResolveNextHop(%v) error %q does not wrap %v", c.dst, err, w)
				}
			}
			if len(c.want) == 1 && elapsed > time.Second {
				t.Errorf("took %v: an immediate failure must not wait", elapsed)
			}
			if len(c.want) == 2 && (elapsed < c.timeout || elapsed > c.timeout+time.Second) {
				t.Errorf("took %v, want about the ctx timeout %v", elapsed, c.timeout)
			}
		})
	}
}
