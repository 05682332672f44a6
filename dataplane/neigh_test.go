package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// vethPair is two network namespaces joined by a veth pair, with
// 198.18.<octet>.1/24 + fd00:198:18:<octet>::1/64 on side A and .2/::2 on B.
type vethPair struct {
	nsA, nsB     netns.NsHandle
	linkA, linkB netlink.Link // attributes as seen inside each namespace
	octet        int
}

const vethPairMTU = 1400

func (p *vethPair) v4(host int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(p.octet), byte(host)})
}

func (p *vethPair) v6(host int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("fd00:198:18:%x::%x", p.octet, host))
}

// newNamedNetns creates a named namespace without leaving the calling
// thread in it, and removes it when the test ends.
func newNamedNetns(t *testing.T, prefix string) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("get current netns: %v", err)
	}
	defer orig.Close()
	name := testutil.UniqueName(prefix)
	ns, err := netns.NewNamed(name) // switches this thread into ns
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	if err := netns.Set(orig); err != nil {
		// Keep the thread locked: it is in the wrong namespace, so let the
		// runtime retire it with this goroutine.
		runtime.LockOSThread()
		t.Fatalf("return to original netns: %v", err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	return ns
}

func newVethPair(t *testing.T) *vethPair {
	t.Helper()
	testutil.RequireRoot(t)
	p := &vethPair{octet: rand.IntN(256)}
	p.nsA = newNamedNetns(t, "dpna")
	p.nsB = newNamedNetns(t, "dpnb")

	ha, err := netlink.NewHandleAt(p.nsA)
	if err != nil {
		t.Fatalf("netlink handle in netns A: %v", err)
	}
	t.Cleanup(ha.Close)
	hb, err := netlink.NewHandleAt(p.nsB)
	if err != nil {
		t.Fatalf("netlink handle in netns B: %v", err)
	}
	t.Cleanup(hb.Close)

	nameA, nameB := testutil.UniqueName("dpva"), testutil.UniqueName("dpvb")
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: nameA, MTU: vethPairMTU},
		PeerName:      nameB,
		PeerNamespace: netlink.NsFd(int(p.nsB)),
	}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s/%s: %v", nameA, nameB, err)
	}
	// The links go away with their namespaces.
	for _, side := range []struct {
		h    *netlink.Handle
		name string
		host int
		link *netlink.Link
	}{{ha, nameA, 1, &p.linkA}, {hb, nameB, 2, &p.linkB}} {
		l, err := side.h.LinkByName(side.name)
		if err != nil {
			t.Fatalf("find %s: %v", side.name, err)
		}
		for _, a := range []netip.Prefix{netip.PrefixFrom(p.v4(side.host), 24), netip.PrefixFrom(p.v6(side.host), 64)} {
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
			if a.Addr().Is6() {
				addr.Flags = unix.IFA_F_NODAD
			}
			if err := side.h.AddrAdd(l, addr); err != nil {
				t.Fatalf("add %v to %s: %v", a, side.name, err)
			}
		}
		if err := side.h.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", side.name, err)
		}
		if l, err = side.h.LinkByName(side.name); err != nil {
			t.Fatalf("find %s: %v", side.name, err)
		}
		*side.link = l
	}
	return p
}

// enterNetns locks the calling goroutine's thread and switches it into ns;
// the returned function switches back (call it with defer). If switching
// back fails the thread stays locked so that the runtime retires it.
func enterNetns(t *testing.T, ns netns.NsHandle) func() {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	if err := netns.Set(ns); err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("enter netns: %v", err)
	}
	return func() {
		defer orig.Close()
		if err := netns.Set(orig); err != nil {
			t.Errorf("return to original netns: %v (thread retired)", err)
			return
		}
		runtime.UnlockOSThread()
	}
}

func macOf(l netlink.Link) [6]byte {
	var m [6]byte
	copy(m[:], l.Attrs().HardwareAddr)
	return m
}

func TestResolveNextHop(t *testing.T) {
	p := newVethPair(t)
	wantSrcMAC, wantDstMAC := macOf(p.linkA), macOf(p.linkB)

	// A gateway route with a smaller MTU metric, for each family, through B.
	ha, err := netlink.NewHandleAt(p.nsA)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	gw4 := netip.MustParsePrefix(fmt.Sprintf("198.19.%d.0/24", p.octet))
	gw6 := netip.MustParsePrefix("fd00:198:18:ff00::/64")
	for _, r := range []struct {
		dst netip.Prefix
		via netip.Addr
	}{{gw4, p.v4(2)}, {gw6, p.v6(2)}} {
		route := &netlink.Route{
			LinkIndex: p.linkA.Attrs().Index,
			Dst:       &net.IPNet{IP: r.dst.Addr().AsSlice(), Mask: net.CIDRMask(r.dst.Bits(), r.dst.Addr().BitLen())},
			Gw:        r.via.AsSlice(),
			MTU:       1300,
		}
		if err := ha.RouteAdd(route); err != nil {
			t.Fatalf("add route %v via %v: %v", r.dst, r.via, err)
		}
	}

	for _, c := range []struct {
		name    string
		dst     netip.Addr
		src     netip.Addr
		gateway netip.Addr
		mtu     int
	}{
		{"ipv4", p.v4(2), p.v4(1), netip.Addr{}, vethPairMTU},
		{"ipv4-mapped", netip.AddrFrom16(p.v4(2).As16()), p.v4(1), netip.Addr{}, vethPairMTU},
		{"ipv6", p.v6(2), p.v6(1), netip.Addr{}, vethPairMTU},
		{"ipv4-gateway", gw4.Addr().Next(), p.v4(1), p.v4(2), 1300},
		{"ipv6-gateway", gw6.Addr().Next(), p.v6(1), p.v6(2), 1300},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer enterNetns(t, p.nsA)()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			nh, err := ResolveNextHop(ctx, c.dst)
			if err != nil {
				t.Fatalf("ResolveNextHop(%v): %v", c.dst, err)
			}
			want := NextHop{
				Ifindex: p.linkA.Attrs().Index, Ifname: p.linkA.Attrs().Name,
				Src: c.src, Gateway: c.gateway,
				SrcMAC: wantSrcMAC, DstMAC: wantDstMAC,
				MTU: c.mtu,
			}
			if nh != want {
				t.Fatalf("ResolveNextHop(%v) =\n %+v\nwant\n %+v", c.dst, nh, want)
			}
		})
	}
}

func TestResolveNextHopFailures(t *testing.T) {
	p := newVethPair(t)
	noRoute4 := netip.AddrFrom4([4]byte{198, 18, byte(p.octet + 1), 1}) // another /24: unrouted
	for _, c := range []struct {
		name    string
		dst     netip.Addr
		timeout time.Duration
		want    []error
	}{
		// No route at all: fails at once, before the deadline.
		{"ipv4-no-route", noRoute4, 5 * time.Second, []error{ErrNoRoute}},
		{"ipv6-no-route", netip.MustParseAddr("fd00:198:18:fe00::1"), 5 * time.Second, []error{ErrNoRoute}},
		{"ipv4-local", p.v4(1), 5 * time.Second, []error{ErrNoRoute}},
		{"ipv4-invalid", netip.Addr{}, 5 * time.Second, []error{ErrNoRoute}},
		{"ipv4-multicast", netip.MustParseAddr("239.1.2.3"), 5 * time.Second, []error{ErrNoRoute}},
		// On-link but nobody answers: fails when ctx expires.
		{"ipv4-unanswered", p.v4(99), 400 * time.Millisecond, []error{ErrNoRoute, context.DeadlineExceeded}},
		{"ipv6-unanswered", p.v6(0x99), 400 * time.Millisecond, []error{ErrNoRoute, context.DeadlineExceeded}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer enterNetns(t, p.nsA)()
			ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
			defer cancel()
			start := time.Now()
			nh, err := ResolveNextHop(ctx, c.dst)
			elapsed := time.Since(start)
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
