package dataplane_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

func TestOpenFallsBackWithoutRoot(t *testing.T) {
	defer dataplane.SetGeteuid(func() int { return 1000 })()
	p, err := dataplane.Open(dataplane.OpenOptions{Local: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := p.Caps()
	if c.Kind != "udp" || !strings.Contains(c.Reason, "not root") {
		t.Fatalf("caps = %+v, want kernel udp saying it is not root", c)
	}
}

func TestOpenUnknownTransport(t *testing.T) {
	if _, err := dataplane.Open(dataplane.OpenOptions{Transport: "carrier-pigeon", Local: netip.MustParseAddrPort("127.0.0.1:0")}); err == nil {
		t.Fatal("Open with an unknown transport succeeded")
	}
}

// TestOpenAuto: as root in a lab host, auto picks AF_XDP; where AF_XDP
// cannot work (an MTU no UMEM frame holds) it falls back to kernel UDP and
// says why.
func TestOpenAuto(t *testing.T) {
	for _, tc := range []struct {
		mtu      int
		kind     string
		inReason string
	}{
		{1500, "af_xdp", "copy mode"},
		{9000, "udp", "does not fit frame size"},
	} {
		l := labtest.New(t, lab.Options{MTU: tc.mtu})
		h := &l.Hosts[0]
		err := h.Do(func() error {
			p, err := dataplane.Open(dataplane.OpenOptions{Local: netip.AddrPortFrom(h.Addr.Addr(), testPort)})
			if err != nil {
				return err
			}
			defer p.Close()
			if c := p.Caps(); c.Kind != tc.kind || !strings.Contains(c.Reason, tc.inReason) {
				t.Errorf("MTU %d: caps = %+v, want %s with %q in the reason", tc.mtu, c, tc.kind, tc.inReason)
			}
			if tc.kind == "udp" && p.MaxPayload() != tc.mtu-28 {
				t.Errorf("MTU %d: kernel UDP MaxPayload = %d, want %d", tc.mtu, p.MaxPayload(), tc.mtu-28)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
