package lab_test

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

// TestBottleneckStats sends more than the TBF's queue holds into h0 and
// reads the counters back: every datagram is either forwarded or dropped.
func TestBottleneckStats(t *testing.T) {
	t.Parallel()
	b := &lab.Bottleneck{Host: 0, RateBps: 10e6, BurstBytes: 16 << 10, LimitBytes: 64 << 10}
	l := labtest.New(t, lab.Options{Hosts: 3, Bottleneck: b})
	p, err := l.IngressPort(0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Ifname != "p0" || p.Netns != "/run/netns/"+lab.SwitchNetns(l.Name) || p.Ifindex <= 0 {
		t.Fatalf("ingress port of h0 = %+v, want p0 in the switch", p)
	}
	if _, err := l.IngressPort(3); !errors.Is(err, lab.ErrNoSuchHost) {
		t.Fatalf("IngressPort(3) = %v, want ErrNoSuchHost", err)
	}
	if _, err := l.BottleneckStats(1); err == nil {
		t.Fatal("BottleneckStats of a link without a tbf succeeded")
	}
	before, err := l.BottleneckStats(0)
	if err != nil {
		t.Fatal(err)
	}
	const n, size = 300, 1000 // 300 kB into a 64 KiB queue at 10 Mbit/s
	h1 := &l.Hosts[1]
	if err := h1.Do(func() error {
		// Unconnected: h0's ICMP port unreachables must not fail the writes.
		c, err := net.ListenUDP("udp4", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.Hosts[0].Addr.Addr(), 9))
		buf := make([]byte, size)
		for range n {
			if _, err := c.WriteToUDP(buf, to); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after, err := l.BottleneckStats(0)
	if err != nil {
		t.Fatal(err)
	}
	sent, dropped := after.Packets-before.Packets, after.Drops-before.Drops
	if dropped == 0 || sent+dropped+uint64(after.BacklogPackets) < n {
		t.Fatalf("tbf counted %d sent, %d dropped, %d queued of %d datagrams (%+v)", sent, dropped, after.BacklogPackets, n, after)
	}
	t.Logf("tbf: %+v", after)
}

func TestIngressPortPair(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{})
	p, err := l.IngressPort(1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Netns != l.Hosts[0].Netns || p.Ifname != "eth0" || p.Ifindex != l.Hosts[0].Ifindex {
		t.Fatalf("ingress port of h1 = %+v, want h0's eth0", p)
	}
}
