package cm

import (
	"errors"
	"net/netip"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := sampleEndpoint()
	if err := ok.Validate(); err != nil {
		t.Fatalf("sample endpoint: %v", err)
	}
	for _, mtu := range []uint16{256, 512, 1024, 2048, 4096} {
		e := ok
		e.MTU = mtu
		if err := e.Validate(); err != nil {
			t.Errorf("mtu %d: %v", mtu, err)
		}
	}
	bad := map[string]func(e *Endpoint){
		"zero gid":       func(e *Endpoint) { e.GID = [16]byte{} },
		"qpn 0":          func(e *Endpoint) { e.QPN = 0 },
		"qpn 1":          func(e *Endpoint) { e.QPN = 1 },
		"qpn 1<<24":      func(e *Endpoint) { e.QPN = 1 << 24 },
		"psn 1<<24":      func(e *Endpoint) { e.PSN = 1 << 24 },
		"mtu 0":          func(e *Endpoint) { e.MTU = 0 },
		"mtu 1500":       func(e *Endpoint) { e.MTU = 1500 },
		"mtu 8192":       func(e *Endpoint) { e.MTU = 8192 },
		"udp port 1234":  func(e *Endpoint) { e.UDPSrcPort = 1234 },
		"udp port bfff":  func(e *Endpoint) { e.UDPSrcPort = 0xbfff },
		"buffer wraps":   func(e *Endpoint) { e.Addr, e.Len = ^uint64(0)-10, 11 },
		"psn max uint32": func(e *Endpoint) { e.PSN = ^uint32(0) },
	}
	for name, f := range bad {
		e := ok
		f(&e)
		if err := e.Validate(); !errors.Is(err, ErrInvalidEndpoint) {
			t.Errorf("%s: err %v, want ErrInvalidEndpoint", name, err)
		}
	}
}

func TestGID(t *testing.T) {
	e := Endpoint{GID: GIDFromAddr(netip.MustParseAddr("198.18.0.1"))}
	want := [16]byte{10: 0xff, 11: 0xff, 12: 198, 13: 18, 14: 0, 15: 1}
	if e.GID != want {
		t.Errorf("GIDFromAddr(198.18.0.1) = % x, want % x", e.GID, want)
	}
	if got := e.IPAddr(); got != netip.MustParseAddr("198.18.0.1") {
		t.Errorf("IPAddr = %v, want 198.18.0.1", got)
	}
	v6 := netip.MustParseAddr("fd00:198:18::7")
	if got := (Endpoint{GID: GIDFromAddr(v6)}).IPAddr(); got != v6 {
		t.Errorf("IPAddr = %v, want %v", got, v6)
	}
}

func TestPerftestString(t *testing.T) {
	e := Endpoint{
		GID:  GIDFromAddr(netip.MustParseAddr("198.18.0.1")),
		QPN:  0x11,
		PSN:  0x3e8a6b,
		MTU:  1024,
		RKey: 0x13c,
		Addr: 0x7f2a1c000000,
		Len:  65536,
	}
	want := " local address: LID 0000 QPN 0x0011 PSN 0x3e8a6b RKey 0x00013c VAddr 0x007f2a1c000000\n" +
		" GID: 00:00:00:00:00:00:00:00:00:00:255:255:198:18:00:01\n"
	if got := e.PerftestString(); got != want {
		t.Errorf("PerftestString:\n got %q\nwant %q", got, want)
	}
	// Two-sided endpoints (SEND tests) print no RKey/VAddr; C's %#06x prints
	// zero as 000000, without 0x.
	e2 := Endpoint{GID: GIDFromAddr(netip.MustParseAddr("fd00:198:18::2")), QPN: 0x1234, PSN: 0, MTU: 4096}
	want2 := " remote address: LID 0000 QPN 0x1234 PSN 000000\n" +
		" GID: 253:00:01:152:00:24:00:00:00:00:00:00:00:00:00:02\n"
	if got := e2.PerftestSide("remote"); got != want2 {
		t.Errorf("PerftestSide(remote):\n got %q\nwant %q", got, want2)
	}
}

func TestCAltHex(t *testing.T) {
	for _, c := range []struct {
		v     uint64
		width int
		want  string
	}{
		{0, 4, "0000"}, {0x11, 6, "0x0011"}, {0xabcdef, 6, "0xabcdef"}, {0x1abcdef, 6, "0x1abcdef"},
		{0x13c, 8, "0x00013c"}, {0x7f2a1c000000, 16, "0x007f2a1c000000"}, {1, 2, "0x1"},
	} {
		if got := cAltHex(c.v, c.width); got != c.want {
			t.Errorf("cAltHex(%#x, %d) = %q, want %q", c.v, c.width, got, c.want)
		}
	}
}
