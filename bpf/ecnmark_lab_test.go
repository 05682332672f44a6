package bpf

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

// ecnSocketOpts are the socket options that set and receive the ECN field
// for one IP version.
type ecnSocketOpts struct {
	network         string
	level           int
	setTOS, recvTOS int // IP_TOS/IP_RECVTOS or IPV6_TCLASS/IPV6_RECVTCLASS
}

var (
	ecnSock4 = ecnSocketOpts{"udp4", unix.IPPROTO_IP, unix.IP_TOS, unix.IP_RECVTOS}
	ecnSock6 = ecnSocketOpts{"udp6", unix.IPPROTO_IPV6, unix.IPV6_TCLASS, unix.IPV6_RECVTCLASS}
)

func setSockInt(c *net.UDPConn, level, opt, val int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, val) }); err != nil {
		return err
	}
	return serr
}

// ecnArrival is one received datagram: its first payload byte and ECN field.
type ecnArrival struct {
	kind byte // 'E' sent ECT(0), 'N' sent Not-ECT
	ecn  uint8
}

// readECN reads up to n datagrams (stopping after 2 s of silence) and
// returns them with the ECN field from the control message.
func readECN(t *testing.T, c *net.UDPConn, so ecnSocketOpts, n int) []ecnArrival {
	t.Helper()
	var got []ecnArrival
	buf := make([]byte, 2048)
	oob := make([]byte, 128)
	for len(got) < n {
		if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
		nb, noob, _, _, err := c.ReadMsgUDP(buf, oob)
		if err != nil {
			break
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:noob])
		if err != nil {
			t.Fatalf("parse control message: %v", err)
		}
		ecn := -1
		for _, m := range msgs {
			if int(m.Header.Level) == so.level && int(m.Header.Type) == so.setTOS && len(m.Data) > 0 {
				ecn = int(m.Data[0] & 3) // IP_TOS: 1 byte; IPV6_TCLASS: an int, little endian here
			}
		}
		if ecn < 0 || nb == 0 {
			t.Fatalf("datagram of %d bytes without a TOS/TCLASS control message (%d bytes of oob)", nb, noob)
		}
		got = append(got, ecnArrival{kind: buf[0], ecn: uint8(ecn)})
	}
	return got
}

// TestECNMarkerLab attaches the marker to h0's eth0 egress at 10 Mbit/s and
// sends bursts of ECT(0) and Not-ECT UDP datagrams from kernel sockets to
// h1, which reads the ECN field of each through IP_RECVTOS/IPV6_RECVTCLASS.
func TestECNMarkerLab(t *testing.T) {
	l := labtest.New(t, lab.Options{IPv6: true})
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	for _, c := range []struct {
		name   string
		so     ecnSocketOpts
		dst    netip.Addr
		legacy bool
	}{
		{"tcx-udp4", ecnSock4, h1.Addr.Addr(), false},
		{"tcx-udp6", ecnSock6, h1.Addr6.Addr(), false},
		{"legacy-tc-udp4", ecnSock4, h1.Addr.Addr(), true},
	} {
		t.Run(c.name, func(t *testing.T) { testECNMarkerLab(t, h0, h1, c.so, c.dst, c.legacy) })
	}
}

func testECNMarkerLab(t *testing.T, h0, h1 *lab.Host, so ecnSocketOpts, dst netip.Addr, legacy bool) {
	opts := ECNMarkerOptions{RateBps: 10_000_000, KminBytes: 3000, KmaxBytes: 15_000, PmaxPPM: 200_000}
	var m *ECNMarker
	if err := h0.Do(func() error {
		var err error
		m, err = attachECNMarker(h0.Ifindex, opts, legacy)
		return err
	}); err != nil {
		t.Fatalf("attach ecn marker on %s eth0: %v", h0.Name, err)
	}
	closeMarker := func() error { return h0.Do(m.Close) } // legacy tc: netlink in h0
	t.Cleanup(func() {
		if err := closeMarker(); err != nil {
			t.Errorf("close ecn marker: %v", err)
		}
	})
	if want := map[bool]string{false: "tcx", true: "tc"}[legacy]; m.Hook() != want {
		t.Fatalf("hook = %q, want %q", m.Hook(), want)
	}

	var rx *net.UDPConn
	if err := h1.Do(func() error {
		var err error
		rx, err = net.ListenUDP(so.network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 0)))
		if err != nil {
			return err
		}
		if err := setSockInt(rx, so.level, so.recvTOS, 1); err != nil {
			return fmt.Errorf("enable receive of tos: %w", err)
		}
		return setSockInt(rx, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
	}); err != nil {
		t.Fatalf("receiver in %s: %v", h1.Name, err)
	}
	t.Cleanup(func() { rx.Close() })
	raddr := rx.LocalAddr().(*net.UDPAddr)

	var ect, notECT *net.UDPConn
	if err := h0.Do(func() error {
		var err error
		if ect, err = net.DialUDP(so.network, nil, raddr); err != nil {
			return err
		}
		if err := setSockInt(ect, so.level, so.setTOS, 0x02); err != nil {
			return fmt.Errorf("set ECT(0): %w", err)
		}
		notECT, err = net.DialUDP(so.network, nil, raddr)
		return err
	}); err != nil {
		t.Fatalf("senders in %s: %v", h0.Name, err)
	}
	t.Cleanup(func() { ect.Close(); notECT.Close() })

	send := func(c *net.UDPConn, kind byte, n int) {
		t.Helper()
		payload := make([]byte, 1000)
		payload[0] = kind
		for i := 0; i < n; i++ {
			if _, err := c.Write(payload); err != nil {
				t.Fatalf("send %c datagram %d: %v", kind, i, err)
			}
		}
	}
	// 300 back-to-back datagrams of ~1 KB leave in a few ms: far faster than
	// 10 Mbit/s, so the phantom queue passes Kmax after ~15 of them. The
	// Not-ECT burst follows while the queue is still ~300 KB (240 ms).
	const nECT, nNot = 300, 100
	send(ect, 'E', nECT)
	send(notECT, 'N', nNot)
	got := readECN(t, rx, so, nECT+nNot)

	var ce, ectArrived, notArrived int
	for _, a := range got {
		switch {
		case a.kind == 'E' && a.ecn == 3:
			ce++
		case a.kind == 'E' && a.ecn == 2:
			ectArrived++
		case a.kind == 'N' && a.ecn == 0:
			notArrived++
		default:
			t.Errorf("datagram %c arrived with ECN %d", a.kind, a.ecn)
		}
	}
	c, err := m.Counters()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d CE, %d ECT(0), %d Not-ECT arrived of %d+%d; marker %+v", so.network, ce, ectArrived, notArrived, nECT, nNot, c)
	if len(got) < (nECT+nNot)*95/100 {
		t.Errorf("only %d of %d datagrams arrived", len(got), nECT+nNot)
	}
	if ce == 0 || uint64(ce) > c.CEMarked || c.CEMarked > nECT {
		t.Errorf("%d CE arrivals, marker marked %d: want 0 < arrivals <= marked <= %d", ce, c.CEMarked, nECT)
	}
	if ectArrived == 0 {
		t.Error("no datagram arrived unmarked: the first ones are below Kmin")
	}
	// Neighbour discovery and ARP share the link: a few more Not-ECT
	// packets may pass while the queue is high.
	if c.NotECTOver < nNot*9/10 || c.NotECTOver > nNot+5 {
		t.Errorf("marker counted %d Not-ECT over threshold, want %d..%d", c.NotECTOver, nNot*9/10, nNot+5)
	}
	if c.ECT < nECT {
		t.Errorf("marker saw %d ECT packets, want >= %d", c.ECT, nECT)
	}

	// After Close nothing is marked even though the burst would be.
	if err := closeMarker(); err != nil {
		t.Fatalf("close: %v", err)
	}
	send(ect, 'E', 100)
	for _, a := range readECN(t, rx, so, 100) {
		if a.ecn != 2 {
			t.Fatalf("after detach a datagram %c arrived with ECN %d, want ECT(0)", a.kind, a.ecn)
		}
	}
}
