//go:build linux

package dataplane

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Low-level helpers for the kernel UDP port: raw sendmmsg/recvmmsg calls,
// socket addresses and control messages encoded in place in preallocated
// buffers, so that the hot path never allocates.

// sockaddrLen is the size of the per-message address storage: large enough
// for either family.
const sockaddrLen = unix.SizeofSockaddrInet6

// Control message sizes. Every control message the port writes or expects
// carries at most a 4-byte payload.
var (
	cmsgHdrLen = unix.CmsgLen(0)
	cmsgSpace4 = unix.CmsgSpace(4)
	// txOOBLen fits a TOS/TCLASS cmsg and a UDP_SEGMENT cmsg.
	txOOBLen = 2 * cmsgSpace4
	// rxOOBLen fits IP_TOS or IPV6_TCLASS, UDP_GRO, with room for one
	// unexpected extra.
	rxOOBLen = 4 * cmsgSpace4
)

// sendmmsg sends msgs on fd without blocking and returns how many messages
// the kernel took.
func sendmmsg(fd uintptr, msgs []unix.Mmsghdr) (int, unix.Errno) {
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd,
		uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
	return int(n), errno
}

// recvmmsg receives into msgs without blocking and returns how many messages
// it filled.
func recvmmsg(fd uintptr, msgs []unix.Mmsghdr) (int, unix.Errno) {
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd,
		uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
	return int(n), errno
}

// putSockaddr encodes ap into sa for a socket of the given family (AF_INET or
// AF_INET6) and returns the address length, or 0 when ap cannot be reached
// from that family (IPv6 destination on an IPv4 socket, or the reverse: the
// IPv6 socket is bound IPV6_V6ONLY).
func putSockaddr(sa *[sockaddrLen]byte, family int, ap netip.AddrPort) uint32 {
	a := ap.Addr()
	port := ap.Port()
	if family == unix.AF_INET {
		if a.Is4In6() {
			a = a.Unmap()
		}
		if !a.Is4() {
			return 0
		}
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		s4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s4.Port))[:], port)
		s4.Addr = a.As4()
		s4.Zero = [8]uint8{}
		return unix.SizeofSockaddrInet4
	}
	if !a.Is6() || a.Is4In6() {
		return 0
	}
	s6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
	s6.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s6.Port))[:], port)
	s6.Flowinfo = 0
	s6.Addr = a.As16()
	s6.Scope_id = 0
	return unix.SizeofSockaddrInet6
}

// getSockaddr decodes a source address written by the kernel. IPv4 comes
// back as a plain 4-byte address; IPv6 link-local zones are not reported.
func getSockaddr(sa *[sockaddrLen]byte, namelen uint32) netip.AddrPort {
	family := *(*uint16)(unsafe.Pointer(sa))
	switch {
	case family == unix.AF_INET && namelen >= unix.SizeofSockaddrInet4:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&s4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), port)
	case family == unix.AF_INET6 && namelen >= unix.SizeofSockaddrInet6:
		s6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&s6.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(s6.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}

// putCmsgInt writes a control message with a 4-byte native-endian integer
// payload at oob[0:] and returns the space it used.
func putCmsgInt(oob []byte, level, typ int32, v uint32) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = level
	h.Type = typ
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(oob[cmsgHdrLen:], v)
	return cmsgSpace4
}

// putCmsgUint16 writes a control message with a 2-byte payload (UDP_SEGMENT
// takes exactly a __u16) and returns the space it used.
func putCmsgUint16(oob []byte, level, typ int32, v uint16) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = level
	h.Type = typ
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[cmsgHdrLen:], v)
	return unix.CmsgSpace(2)
}

// rxMeta is what the port reads from a received message's control data.
type rxMeta struct {
	tos     uint8
	gsoSize int // UDP_GRO segment size, 0 when not coalesced
}

// parseRxCmsgs walks the control messages of one received datagram without
// allocating. Unknown or malformed entries are skipped.
func parseRxCmsgs(oob []byte) rxMeta {
	var m rxMeta
	for len(oob) >= cmsgHdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < cmsgHdrLen || l > len(oob) {
			break
		}
		data := oob[cmsgHdrLen:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TOS && len(data) >= 1:
			m.tos = data[0]
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_TCLASS && len(data) >= 4:
			m.tos = uint8(binary.NativeEndian.Uint32(data))
		case h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= 4:
			m.gsoSize = int(int32(binary.NativeEndian.Uint32(data)))
		}
		next := cmsgAlign(l)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return m
}

// cmsgAlign rounds n up to the control message alignment (the word size).
func cmsgAlign(n int) int {
	const a = int(unsafe.Sizeof(uintptr(0)))
	return (n + a - 1) &^ (a - 1)
}
