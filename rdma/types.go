package rdma

import (
	"fmt"
	"net/netip"
)

// GID is a 128-bit global identifier. RoCEv2 GIDs are IPv6 addresses, or
// IPv4 addresses mapped into ::ffff:0:0/96.
type GID [16]byte

// GIDFromAddr returns the RoCEv2 GID of an IP address.
func GIDFromAddr(a netip.Addr) GID { return GID(a.As16()) }

// Addr is the IP address the GID stands for (IPv4 for mapped GIDs).
func (g GID) Addr() netip.Addr { return netip.AddrFrom16(g).Unmap() }

// String formats the GID as verbs tools print it (fe80:0000:...).
func (g GID) String() string {
	return fmt.Sprintf("%04x:%04x:%04x:%04x:%04x:%04x:%04x:%04x",
		uint16(g[0])<<8|uint16(g[1]), uint16(g[2])<<8|uint16(g[3]), uint16(g[4])<<8|uint16(g[5]), uint16(g[6])<<8|uint16(g[7]),
		uint16(g[8])<<8|uint16(g[9]), uint16(g[10])<<8|uint16(g[11]), uint16(g[12])<<8|uint16(g[13]), uint16(g[14])<<8|uint16(g[15]))
}

// AccessFlags say what a memory region (or a QP's responder) allows, as
// IBV_ACCESS_* do.
type AccessFlags uint32

const (
	// AccessLocalWrite lets the local HCA/engine write the region: needed
	// for RECV buffers and READ/atomic destinations.
	AccessLocalWrite AccessFlags = 1 << iota
	// AccessRemoteWrite lets peers RDMA WRITE into the region.
	AccessRemoteWrite
	// AccessRemoteRead lets peers RDMA READ from the region.
	AccessRemoteRead
	// AccessRemoteAtomic lets peers run atomics on the region.
	AccessRemoteAtomic
)

// Has reports whether every flag in want is set.
func (a AccessFlags) Has(want AccessFlags) bool { return a&want == want }

// MTU is a path MTU as verbs enumerates it (IBV_MTU_256 = 1 ... IBV_MTU_4096 = 5).
type MTU uint8

// Path MTUs.
const (
	MTU256  MTU = 1
	MTU512  MTU = 2
	MTU1024 MTU = 3
	MTU2048 MTU = 4
	MTU4096 MTU = 5
)

// Bytes is the MTU's payload size in bytes, 0 for an invalid value.
func (m MTU) Bytes() int {
	if m < MTU256 || m > MTU4096 {
		return 0
	}
	return 128 << m
}

// MTUFromBytes returns the largest path MTU not above n bytes, or 0 when n is
// below 256.
func MTUFromBytes(n int) MTU {
	for m := MTU4096; m >= MTU256; m-- {
		if m.Bytes() <= n {
			return m
		}
	}
	return 0
}

func (m MTU) String() string {
	if b := m.Bytes(); b > 0 {
		return fmt.Sprint(b)
	}
	return fmt.Sprintf("MTU(%d)", uint8(m))
}
