//go:build linux

package dataplane

import (
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestParseRxCmsgs(t *testing.T) {
	oob := make([]byte, rxOOBLen)
	off := putCmsgInt(oob, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xb9)
	off += putCmsgInt(oob[off:], unix.SOL_UDP, unix.UDP_GRO, 1200)
	m := parseRxCmsgs(oob[:off])
	if m.tos != 0xb9 || m.gsoSize != 1200 {
		t.Fatalf("parsed %+v, want tos 0xb9 gso 1200", m)
	}
	// IPv4 IP_TOS carries one byte.
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_TOS
	h.SetLen(unix.CmsgLen(1))
	oob[cmsgHdrLen] = 0x03
	if m := parseRxCmsgs(oob[:unix.CmsgSpace(1)]); m.tos != 3 || m.gsoSize != 0 {
		t.Fatalf("parsed %+v, want tos 3 gso 0", m)
	}
	// A length running past the buffer stops the walk.
	h.SetLen(1000)
	if m := parseRxCmsgs(oob[:off]); m != (rxMeta{}) {
		t.Fatalf("parsed %+v from a corrupt header, want nothing", m)
	}
}

func TestSockaddrRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		family int
		in     string
		want   string // "" = unreachable from this family
	}{
		{unix.AF_INET, "127.0.0.1:4791", "127.0.0.1:4791"},
		{unix.AF_INET, "[::ffff:198.18.0.1]:9", "198.18.0.1:9"},
		{unix.AF_INET, "[::1]:9", ""},
		{unix.AF_INET6, "[fd00:198:18::1]:65535", "[fd00:198:18::1]:65535"},
		{unix.AF_INET6, "198.18.0.1:9", ""},
	} {
		var sa [sockaddrLen]byte
		n := putSockaddr(&sa, tc.family, netip.MustParseAddrPort(tc.in))
		if tc.want == "" {
			if n != 0 {
				t.Errorf("%s on family %d: encoded, want unreachable", tc.in, tc.family)
			}
			continue
		}
		if got := getSockaddr(&sa, n); got != netip.MustParseAddrPort(tc.want) {
			t.Errorf("%s on family %d: round trip %v, want %s", tc.in, tc.family, got, tc.want)
		}
	}
}

// FuzzParseRxCmsgs feeds arbitrary control data to the parser, which must
// never panic nor read outside the buffer.
func FuzzParseRxCmsgs(f *testing.F) {
	oob := make([]byte, rxOOBLen)
	off := putCmsgInt(oob, unix.IPPROTO_IP, unix.IP_TOS, 2)
	off += putCmsgInt(oob[off:], unix.SOL_UDP, unix.UDP_GRO, 1400)
	f.Add(oob[:off])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = parseRxCmsgs(b)
		var sa [sockaddrLen]byte
		copy(sa[:], b)
		_ = getSockaddr(&sa, uint32(len(b)))
	})
}
