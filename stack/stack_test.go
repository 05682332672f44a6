package stack_test

import (
	"net/netip"
	"testing"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
	"github.com/opennetworks/onetdp/stack"
)

func TestOpenRDMAOnLoopback(t *testing.T) {
	// Kernel UDP works anywhere, root or not.
	dev, err := stack.OpenRDMA(stack.RDMAOptions{Addr: netip.MustParseAddr("127.0.0.1"), Transport: dataplane.TransportUDP})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if dev.Caps().Kind != "udp" || dev.Port().LocalAddr().Port() != 4791 || dev.GIDs()[0].Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("caps %+v, local %v, GID %s", dev.Caps(), dev.Port().LocalAddr(), dev.GIDs()[0])
	}
}

func TestOpenRDMAErrors(t *testing.T) {
	if _, err := stack.OpenRDMA(stack.RDMAOptions{Addr: netip.MustParseAddr("127.0.0.1"), Transport: "nonsense"}); err == nil {
		t.Fatal("unknown transport accepted")
	}
	// 192.0.2.1 (TEST-NET-1) is on no local interface: nothing to bind.
	if _, err := stack.OpenRDMA(stack.RDMAOptions{Addr: netip.MustParseAddr("192.0.2.1"), Transport: dataplane.TransportUDP}); err == nil {
		t.Fatal("opened a stack on an address this host does not have")
	}
}

func TestOpenRDMAAutoInLab(t *testing.T) {
	l := labtest.New(t, lab.Options{})
	h := &l.Hosts[0]
	err := h.Do(func() error {
		dev, err := stack.OpenRDMA(stack.RDMAOptions{Addr: h.Addr.Addr()})
		if err != nil {
			return err
		}
		defer dev.Close()
		if dev.Caps().Kind != "af_xdp" {
			t.Errorf("auto in a lab host as root chose %s (%s), want af_xdp", dev.Caps().Kind, dev.Caps().Reason)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
