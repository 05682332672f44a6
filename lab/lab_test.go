package lab_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

// udpListen opens a UDP socket on addr:0 inside h.
func udpListen(t *testing.T, h *lab.Host, addr netip.Addr) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := h.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, h.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// checkReach sends a datagram from a socket opened in src to a socket opened
// in dst (retrying while neighbour discovery runs) and checks it arrives with
// the right source address.
func checkReach(t *testing.T, src, dst *lab.Host, from, to netip.Addr) {
	t.Helper()
	rx := udpListen(t, dst, to)
	tx := udpListen(t, src, from)
	msg := []byte(fmt.Sprintf("%s->%s", from, to))
	buf := make([]byte, 256)
	for try := 0; try < 25; try++ {
		if _, err := tx.WriteToUDPAddrPort(msg, rx.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatalf("send %s: %v", msg, err)
		}
		rx.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, peer, err := rx.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		if !bytes.Equal(buf[:n], msg) || peer.Addr().Unmap() != from {
			t.Fatalf("%s: got %q from %s", msg, buf[:n], peer)
		}
		return
	}
	t.Fatalf("%s (%s -> %s): nothing arrived in 5 s", msg, src.Name, dst.Name)
}

func checkAllPairs(t *testing.T, l *lab.Lab, v6 bool) {
	t.Helper()
	for i := range l.Hosts {
		for j := range l.Hosts {
			if i == j {
				continue
			}
			a, b := &l.Hosts[i], &l.Hosts[j]
			checkReach(t, a, b, a.Addr.Addr(), b.Addr.Addr())
			if v6 {
				checkReach(t, a, b, a.Addr6.Addr(), b.Addr6.Addr())
			}
		}
	}
}

// nsHandle opens a netlink handle in the named namespace.
func nsHandle(t *testing.T, name string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	t.Cleanup(h.Close)
	return h
}

func TestTwoHosts(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{Hosts: 2, MTU: 1400, IPv6: true, RxQueues: 2})
	if l.Switched || len(l.Hosts) != 2 {
		t.Fatalf("got switched=%v with %d hosts, want a plain pair of 2", l.Switched, len(l.Hosts))
	}
	if _, err := os.Stat("/run/netns/" + lab.SwitchNetns(l.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("switch namespace for 2 hosts: stat err %v, want not exist", err)
	}
	for i, h := range l.Hosts {
		wantNs := "/run/netns/" + lab.HostNetns(l.Name, i)
		if h.Netns != wantNs || h.Ifname != "eth0" || h.MTU != 1400 || h.RxQueues != 2 {
			t.Errorf("host %d = %+v, want netns %s eth0 mtu 1400 2 queues", i, h, wantNs)
		}
		if h.Addr.Bits() != 24 || !h.Addr.Addr().Is4() || h.Addr6.Bits() != 64 || !strings.HasPrefix(h.Addr6.Addr().String(), "fd00:198:18:") {
			t.Errorf("host %d addresses %s %s", i, h.Addr, h.Addr6)
		}
		// MTU on this end, as the kernel of the namespace sees it (both
		// ends of the pair are host eth0s).
		err := h.Do(func() error {
			ifc, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			if ifc.MTU != 1400 || ifc.HardwareAddr.String() != h.MAC.String() {
				return fmt.Errorf("eth0 mtu %d mac %s, want 1400 %s", ifc.MTU, ifc.HardwareAddr, h.MAC)
			}
			lo, err := net.InterfaceByName("lo")
			if err != nil {
				return err
			}
			if lo.Flags&net.FlagUp == 0 {
				return errors.New("lo is down")
			}
			return nil
		})
		if err != nil {
			t.Errorf("host %d: %v", i, err)
		}
	}
	if l.Hosts[1].Addr.Addr() != l.Hosts[0].Addr.Addr().Next() {
		t.Errorf("addresses %s %s are not consecutive", l.Hosts[0].Addr, l.Hosts[1].Addr)
	}
	checkAllPairs(t, l, true)
}

func TestFourHostsSwitched(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{Hosts: 4, MTU: 3000, IPv6: true})
	if !l.Switched || len(l.Hosts) != 4 {
		t.Fatalf("got switched=%v with %d hosts, want switched 4", l.Switched, len(l.Hosts))
	}
	sw := nsHandle(t, lab.SwitchNetns(l.Name))
	br, err := sw.LinkByName("br0")
	if err != nil {
		t.Fatalf("br0 in switch: %v", err)
	}
	if br.Type() != "bridge" || br.Attrs().Flags&net.FlagUp == 0 || br.Attrs().MTU != 3000 {
		t.Errorf("br0 type %s flags %v mtu %d", br.Type(), br.Attrs().Flags, br.Attrs().MTU)
	}
	for i := range 4 {
		p, err := sw.LinkByName(fmt.Sprintf("p%d", i))
		if err != nil {
			t.Fatalf("p%d: %v", i, err)
		}
		if p.Attrs().MasterIndex != br.Attrs().Index || p.Attrs().MTU != 3000 || p.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("p%d master %d mtu %d flags %v, want master %d mtu 3000 up", i, p.Attrs().MasterIndex, p.Attrs().MTU, p.Attrs().Flags, br.Attrs().Index)
		}
		if l.Hosts[i].MTU != 3000 {
			t.Errorf("host %d mtu %d", i, l.Hosts[i].MTU)
		}
	}
	checkAllPairs(t, l, true)
}

func TestUpIdempotentAndStatus(t *testing.T) {
	t.Parallel()
	opts := lab.Options{Name: testutil.UniqueName("t"), Hosts: 3, Subnet: labtest.RandomSubnet()}
	l := labtest.New(t, opts)
	inode := func() uint64 {
		var st unix.Stat_t
		if err := unix.Stat(l.Hosts[0].Netns, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	before := inode()
	again, err := lab.Up(opts)
	if err != nil {
		t.Fatalf("second up: %v", err)
	}
	if !reflect.DeepEqual(again, l) {
		t.Errorf("second up returned\n%+v\nwant\n%+v", again, l)
	}
	if after := inode(); after != before {
		t.Errorf("second up rebuilt the namespace (inode %d -> %d)", before, after)
	}
	st, err := lab.Status(opts.Name)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if !reflect.DeepEqual(st, l) {
		t.Errorf("status\n%+v\nwant\n%+v", st, l)
	}
	names, err := lab.List()
	if err != nil || !slices.Contains(names, opts.Name) {
		t.Errorf("list = %v, %v; want it to contain %s", names, err, opts.Name)
	}

	// Different options rebuild.
	opts.MTU = 1280
	changed, err := lab.Up(opts)
	if err != nil {
		t.Fatalf("up with mtu 1280: %v", err)
	}
	for i, h := range changed.Hosts {
		if h.MTU != 1280 || h.Addr != l.Hosts[i].Addr {
			t.Errorf("after rebuild host %d mtu %d addr %s", i, h.MTU, h.Addr)
		}
	}
	checkAllPairs(t, changed, false)
}

func TestDown(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{Hosts: 3})
	if err := lab.Down(l.Name); err != nil {
		t.Fatalf("down: %v", err)
	}
	for _, n := range []string{lab.HostNetns(l.Name, 0), lab.HostNetns(l.Name, 1), lab.HostNetns(l.Name, 2), lab.SwitchNetns(l.Name)} {
		if _, err := os.Stat("/run/netns/" + n); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after down: stat err %v", n, err)
		}
		if _, err := netns.GetFromName(n); err == nil {
			t.Errorf("%s still opens after down", n)
		}
	}
	if _, err := lab.Status(l.Name); !errors.Is(err, lab.ErrNotFound) {
		t.Errorf("status after down: %v, want ErrNotFound", err)
	}
	if names, _ := lab.List(); slices.Contains(names, l.Name) {
		t.Errorf("list after down still has %s", l.Name)
	}
	if err := lab.Down(l.Name); err != nil {
		t.Errorf("second down: %v", err)
	}
}

// TestQuietWire: without IPv6 nothing is sent on the lab's links until a
// test sends (no DAD, router solicitations or MLD reports to miscount).
func TestQuietWire(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{Hosts: 3})
	time.Sleep(300 * time.Millisecond)
	sw := nsHandle(t, lab.SwitchNetns(l.Name))
	for i := range l.Hosts {
		h := nsHandle(t, lab.HostNetns(l.Name, i))
		eth, err := h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if s := eth.Attrs().Statistics; s == nil || s.TxPackets != 0 || s.RxPackets != 0 {
			t.Errorf("h%d eth0 stats %+v, want no packets", i, s)
		}
		p, err := sw.LinkByName(fmt.Sprintf("p%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if s := p.Attrs().Statistics; s == nil || s.TxPackets != 0 || s.RxPackets != 0 {
			t.Errorf("p%d stats %+v, want no packets", i, s)
		}
	}
	// And it still works.
	checkReach(t, &l.Hosts[0], &l.Hosts[2], l.Hosts[0].Addr.Addr(), l.Hosts[2].Addr.Addr())
}
