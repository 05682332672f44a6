package dataplane_test

import (
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/lab"
)

// TestAFXDPSecondPortInUse: a second AF_XDP port on an interface that an
// open port holds fails with ErrInUse (EBUSY), and Open in auto mode does
// not fall back to a kernel UDP port that would receive nothing (the
// dispatcher hands the address's traffic to the first port). Once the
// first port is closed the interface is free again.
func TestAFXDPSecondPortInUse(t *testing.T) {
	p := newXDPPair(t, lab.Options{}, dataplane.AFXDPOptions{}, false)
	h := &p.lab.Hosts[1]
	local := netip.AddrPortFrom(h.Addr.Addr(), testPort)
	err := h.Do(func() error {
		q, err := dataplane.NewAFXDPPort(dataplane.AFXDPOptions{Ifname: h.Ifname, Local: local})
		if err == nil {
			q.Close()
		}
		return err
	})
	if !errors.Is(err, dataplane.ErrInUse) || !errors.Is(err, unix.EBUSY) {
		t.Fatalf("second AF_XDP port: %v, want ErrInUse (EBUSY)", err)
	}
	err = h.Do(func() error {
		q, err := dataplane.Open(dataplane.OpenOptions{Local: local})
		if err == nil {
			t.Errorf("auto: opened %s (%s)", q.Caps().Kind, q.Caps().Reason)
			q.Close()
		}
		return err
	})
	if !errors.Is(err, dataplane.ErrInUse) {
		t.Fatalf("auto open beside an AF_XDP port: %v, want ErrInUse", err)
	}
	p.b.Close()
	err = h.Do(func() error {
		q, err := dataplane.NewAFXDPPort(dataplane.AFXDPOptions{Ifname: h.Ifname, Local: local})
		if err == nil {
			q.Close()
		}
		return err
	})
	if err != nil {
		t.Fatalf("AF_XDP port after the first closed: %v", err)
	}
}
