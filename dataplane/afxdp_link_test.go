package dataplane_test

import (
	"errors"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/lab"
)

// onLink runs fn on host h's interface, inside its namespace.
func onLink(t *testing.T, h *lab.Host, fn func(netlink.Link) error) {
	t.Helper()
	err := h.Do(func() error {
		l, err := netlink.LinkByName(h.Ifname)
		if err != nil {
			return err
		}
		return fn(l)
	})
	if err != nil {
		t.Fatalf("%s on %s: %v", h.Ifname, h.Name, err)
	}
}

// TestAFXDPInterfaceDown: while the sender's interface is down, Send keeps
// the frames on the tx ring without an error (asavie/xdp would panic on the
// ENETDOWN), and they leave once it is up again.
func TestAFXDPInterfaceDown(t *testing.T) {
	p := newXDPPair(t, lab.Options{}, dataplane.AFXDPOptions{}, false)
	if err := p.a.AddPeer(p.b.LocalAddr().Addr()); err != nil {
		t.Fatal(err)
	}
	a := &p.lab.Hosts[0]
	onLink(t, a, netlink.LinkSetDown)
	pkts := []dataplane.Packet{{Buf: make([]byte, 64), Addr: p.b.LocalAddr()}}
	for i := 0; i < 3; i++ {
		payload(pkts[0].Buf, uint64(i))
		if n, err := p.a.Send(pkts); n != 1 || err != nil {
			t.Fatalf("send #%d with the interface down = %d, %v; want 1, nil", i, n, err)
		}
	}
	onLink(t, a, netlink.LinkSetUp)
	r, stop := startReceiver(p.b, 64, -1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		// An empty Send kicks the ring.
		if _, err := p.a.Send(nil); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		got := len(r.seen)
		r.mu.Unlock()
		if got == 3 {
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("received %d of the 3 frames queued while the interface was down", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if r.bad != 0 || r.err != nil {
		t.Fatalf("receiver: %d corrupted, error %v", r.bad, r.err)
	}
}

// TestAFXDPInterfaceGone: once the interface is deleted, Send fails with
// an error wrapping ErrClosed (asavie/xdp would panic on the ENXIO), counts
// the batch dropped, Recv times out, and Close still cleans up.
func TestAFXDPInterfaceGone(t *testing.T) {
	p := newXDPPair(t, lab.Options{}, dataplane.AFXDPOptions{}, false)
	if err := p.a.AddPeer(p.b.LocalAddr().Addr()); err != nil {
		t.Fatal(err)
	}
	onLink(t, &p.lab.Hosts[0], netlink.LinkDel) // takes the peer with it
	pkts := []dataplane.Packet{{Buf: make([]byte, 64), Addr: p.b.LocalAddr()}}
	n, err := p.a.Send(pkts)
	if !errors.Is(err, dataplane.ErrClosed) {
		t.Fatalf("send after the interface went away = %d, %v; want an error wrapping ErrClosed", n, err)
	}
	t.Logf("send: %v", err)
	if got := p.a.Stats().TxDropped.Load(); got != uint64(n) || p.a.Stats().TxPackets.Load() != 0 {
		t.Fatalf("TxDropped %d TxPackets %d, want %d and 0", got, p.a.Stats().TxPackets.Load(), n)
	}
	p.b.SetRecvTimeout(50 * time.Millisecond)
	if _, err := p.b.Recv(make([]dataplane.Packet, 1)); !errors.Is(err, dataplane.ErrTimeout) {
		t.Fatalf("recv after the interface went away: %v, want ErrTimeout", err)
	}
	if err := p.a.Close(); err != nil {
		t.Fatalf("close a: %v", err)
	}
	if err := p.b.Close(); err != nil {
		t.Fatalf("close b: %v", err)
	}
}
