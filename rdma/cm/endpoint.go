package cm

import (
	"fmt"
	"net/netip"
	"strings"
)

// Field limits.
const (
	// MaxQPN and MaxPSN: QP numbers and PSNs are 24-bit on the wire (BTH).
	MaxQPN = 1<<24 - 1
	MaxPSN = 1<<24 - 1
	// MinUDPSrcPort is the bottom of the RoCEv2 entropy range 0xC000-0xFFFF.
	MinUDPSrcPort = 0xC000
)

// Endpoint is what one side of an RC connection tells the other: enough to
// move the peer's QP to RTR (GID, QPN, PSN, MTU) and, for one-sided verbs, the
// advertised buffer (Addr, RKey, Len).
//
// An Endpoint is a plain value: the caller owns it, and copies may be used
// from any goroutine.
type Endpoint struct {
	// GID is the port's global identifier: an IPv6 address, or an IPv4
	// address mapped as ::ffff:a.b.c.d (see GIDFromAddr). Must not be zero.
	GID [16]byte
	// QPN is this side's queue pair number, 24 bits, not 0 or 1 (QP0/QP1 are
	// the subnet management and general services QPs, never RC).
	QPN uint32
	// PSN is the first PSN this side will send, 24 bits. The peer sets its
	// expected receive PSN (rq_psn) to it.
	PSN uint32
	// MTU is the path MTU in bytes: 256, 512, 1024, 2048 or 4096. Each side
	// uses the smaller of the two.
	MTU uint16
	// Addr is the virtual address of the buffer advertised for one-sided
	// WRITE/READ/atomics; zero when none is advertised.
	Addr uint64
	// RKey is the remote key of the advertised buffer; zero when none.
	RKey uint32
	// Len is the advertised buffer's length in bytes; zero when none.
	Len uint64
	// UDPSrcPort is the RoCEv2 UDP source port (ECMP entropy) this side uses
	// for the QP, 0xC000-0xFFFF, or zero when not told. Informational only.
	UDPSrcPort uint16
}

// GIDFromAddr returns the GID for an IP address: IPv6 as is, IPv4 mapped as
// ::ffff:a.b.c.d (the RoCEv2 convention). A zone is dropped.
func GIDFromAddr(a netip.Addr) [16]byte {
	return a.As16()
}

// IPAddr returns the GID as an IP address, unmapping ::ffff:a.b.c.d to the
// IPv4 address.
func (e Endpoint) IPAddr() netip.Addr {
	return netip.AddrFrom16(e.GID).Unmap()
}

// ValidMTU reports whether mtu is a path MTU an RC QP accepts.
func ValidMTU(mtu uint16) bool {
	switch mtu {
	case 256, 512, 1024, 2048, 4096:
		return true
	}
	return false
}

// Validate returns an error wrapping ErrInvalidEndpoint naming the first field
// out of range, or nil.
func (e Endpoint) Validate() error {
	switch {
	case e.GID == [16]byte{}:
		return fmt.Errorf("gid is unset (all zeros): %w", ErrInvalidEndpoint)
	case e.QPN > MaxQPN:
		return fmt.Errorf("qpn %#x wider than 24 bits: %w", e.QPN, ErrInvalidEndpoint)
	case e.QPN < 2:
		return fmt.Errorf("qpn %d is reserved (QP0/QP1), not an RC queue pair: %w", e.QPN, ErrInvalidEndpoint)
	case e.PSN > MaxPSN:
		return fmt.Errorf("psn %#x wider than 24 bits: %w", e.PSN, ErrInvalidEndpoint)
	case !ValidMTU(e.MTU):
		return fmt.Errorf("mtu %d not one of 256, 512, 1024, 2048, 4096: %w", e.MTU, ErrInvalidEndpoint)
	case e.UDPSrcPort != 0 && e.UDPSrcPort < MinUDPSrcPort:
		return fmt.Errorf("udp source port %#x outside 0xc000-0xffff: %w", e.UDPSrcPort, ErrInvalidEndpoint)
	case e.Addr+e.Len < e.Addr:
		return fmt.Errorf("buffer %#x+%d wraps the address space: %w", e.Addr, e.Len, ErrInvalidEndpoint)
	}
	return nil
}

// PerftestString formats the endpoint the way perftest prints its own side
// before a test (ctx_print_pingpong_data with --gid-index set): an address
// line and a GID line, each ending in a newline, so that
//
//	fmt.Print(e.PerftestString())
//
// prints, for example (each line starts with one space, as in perftest),
//
//	local address: LID 0000 QPN 0x0011 PSN 0x3e8a6b RKey 0x00013c VAddr 0x007f2a1c000000
//	GID: 00:00:00:00:00:00:00:00:00:00:255:255:198:18:00:01
//
// RKey and VAddr appear when the endpoint advertises a buffer (Addr, RKey or
// Len non-zero), as perftest shows them for READ and WRITE tests. LID is
// always 0 (RoCE has no LIDs). The GID bytes are decimal, as perftest prints
// them.
func (e Endpoint) PerftestString() string { return e.PerftestSide("local") }

// PerftestSide is PerftestString with the side word chosen ("local" or
// "remote", as perftest prints the peer's endpoint after the exchange).
func (e Endpoint) PerftestSide(side string) string {
	var b strings.Builder
	b.Grow(160)
	b.WriteString(" ")
	b.WriteString(side)
	b.WriteString(" address: LID ")
	b.WriteString(cAltHex(0, 4))
	b.WriteString(" QPN ")
	b.WriteString(cAltHex(uint64(e.QPN), 6))
	b.WriteString(" PSN ")
	b.WriteString(cAltHex(uint64(e.PSN), 6))
	if e.Addr != 0 || e.RKey != 0 || e.Len != 0 {
		b.WriteString(" RKey ")
		b.WriteString(cAltHex(uint64(e.RKey), 8))
		b.WriteString(" VAddr ")
		b.WriteString(cAltHex(e.Addr, 16))
	}
	b.WriteString("\n GID: ")
	for i, g := range e.GID {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02d", g)
	}
	b.WriteString("\n")
	return b.String()
}

// cAltHex formats v as C's printf("%#0*x", width, v) does: "0x" counts
// towards the width, and zero gets no prefix at all (so LID 0 prints "0000").
func cAltHex(v uint64, width int) string {
	if v == 0 {
		return strings.Repeat("0", width)
	}
	return fmt.Sprintf("0x%0*x", max(width-2, 0), v)
}
