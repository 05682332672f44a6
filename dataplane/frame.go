package dataplane

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Header sizes and field values of the frames this package builds and parses.
const (
	EthHeaderLen  = 14
	VLANTagLen    = 4
	IPv4HeaderLen = 20 // without options
	IPv6HeaderLen = 40
	UDPHeaderLen  = 8

	EtherTypeIPv4  = 0x0800
	EtherTypeIPv6  = 0x86DD
	EtherTypeVLAN  = 0x8100 // 802.1Q C-tag
	EtherTypeQinQ  = 0x88A8 // 802.1ad S-tag
	IPProtocolUDP  = 17
	DefaultTTL     = 64
	ipv4FlagDF     = 0x4000
	ipv4FragMask   = 0x3FFF // MF flag and fragment offset
	maxIPv4Payload = 0xFFFF - IPv4HeaderLen - UDPHeaderLen
	maxIPv6Payload = 0xFFFF - UDPHeaderLen
)

// Errors of WriteUDPFrame and ParseUDPFrame. They are returned bare (never
// wrapped) so that the per-packet paths do not allocate; compare with ==
// or errors.Is.
var (
	// ErrShortBuffer: the buffer given to WriteUDPFrame cannot hold the
	// headers plus the payload.
	ErrShortBuffer = errors.New("dataplane: frame buffer too short")
	// ErrFamilyMismatch: FrameSpec.Src and Dst are not both valid IPv4 or
	// both valid IPv6 addresses (4in6-mapped ones count as IPv4).
	ErrFamilyMismatch = errors.New("dataplane: source and destination address families differ or are invalid")
	// ErrPayloadTooLarge: the payload length is negative or does not fit the
	// 16-bit IP and UDP length fields.
	ErrPayloadTooLarge = errors.New("dataplane: payload does not fit 16-bit IP/UDP lengths")

	// ErrTruncated: the frame ends before a header, or before the length a
	// header claims.
	ErrTruncated = errors.New("dataplane: truncated frame")
	// ErrNotUDP: the frame is well-formed so far but is not UDP over IPv4 or
	// IPv6 this parser handles (other EtherType or protocol, two VLAN tags,
	// IPv6 extension headers).
	ErrNotUDP = errors.New("dataplane: not a UDP/IP frame")
	// ErrFragment: the IPv4 packet is a fragment (MF set or non-zero offset).
	ErrFragment = errors.New("dataplane: IPv4 fragment")
	// ErrBadChecksum: the IPv4 header checksum does not verify.
	ErrBadChecksum = errors.New("dataplane: bad IPv4 header checksum")
	// ErrMalformed: header fields contradict each other or the protocol
	// (wrong IP version, IHL < 5, lengths shorter than the headers, UDP
	// length larger than the IP payload, IPv6 jumbogram).
	ErrMalformed = errors.New("dataplane: malformed frame")
)

// FrameSpec describes the headers of outgoing UDP frames. Build it once per
// destination and reuse it for every packet; WriteUDPFrame only reads it, so
// one FrameSpec may be shared by goroutines as long as nobody modifies it.
type FrameSpec struct {
	// SrcMAC and DstMAC are the Ethernet source and destination addresses
	// (from NextHop.SrcMAC and NextHop.DstMAC).
	SrcMAC, DstMAC [6]byte
	// VLAN is the 802.1Q TCI (PCP<<13 | DEI<<12 | VID); 0 sends untagged.
	VLAN uint16
	// Src and Dst are the UDP endpoints; both IPv4 or both IPv6.
	// 4in6-mapped addresses are unmapped (sent as IPv4).
	Src, Dst netip.AddrPort
	// TOS is the IPv4 TOS / IPv6 traffic class byte (DSCP<<2 | ECN).
	TOS uint8
	// TTL is the IPv4 TTL / IPv6 hop limit; 0 means DefaultTTL (64).
	TTL uint8
	// FlowLabel is the IPv6 flow label (low 20 bits used); ignored for IPv4.
	FlowLabel uint32
	// NoUDPChecksum leaves the UDP checksum 0 (IPv4 only, as RoCEv2 NICs
	// do); IPv6 always carries a checksum.
	NoUDPChecksum bool
}

// is4 reports whether the spec builds IPv4 frames (by Dst's family).
func (s *FrameSpec) is4() bool { return s.Dst.Addr().Unmap().Is4() }

// HeaderLen returns the number of header bytes WriteUDPFrame writes:
// Ethernet (plus a VLAN tag when VLAN != 0), IPv4 or IPv6, and UDP. The
// payload goes at buf[HeaderLen():].
func (s *FrameSpec) HeaderLen() int {
	n := EthHeaderLen + UDPHeaderLen
	if s.VLAN != 0 {
		n += VLANTagLen
	}
	if s.is4() {
		return n + IPv4HeaderLen
	}
	return n + IPv6HeaderLen
}

// MaxPayload returns the largest UDP payload that fits the IP packet size
// mtu (the link MTU, which excludes the Ethernet header and VLAN tag).
func (s *FrameSpec) MaxPayload(mtu int) int {
	if s.is4() {
		return mtu - IPv4HeaderLen - UDPHeaderLen
	}
	return mtu - IPv6HeaderLen - UDPHeaderLen
}

// WriteUDPFrame writes the Ethernet, IP and UDP headers described by s in
// front of a payload the caller already placed at
// buf[s.HeaderLen():s.HeaderLen()+payloadLen], and returns the frame length
// (HeaderLen()+payloadLen). It does not pad short frames to the Ethernet
// minimum (the device does).
//
// IPv4 headers carry no options, DF set, ID 0 and a header checksum. The UDP
// checksum covers the pseudo-header, UDP header and payload; a computed 0 is
// sent as 0xFFFF. With s.NoUDPChecksum an IPv4 frame carries checksum 0.
//
// Errors (bare sentinels, no allocation): ErrFamilyMismatch,
// ErrPayloadTooLarge, ErrShortBuffer. On error buf is unchanged.
func WriteUDPFrame(buf []byte, s *FrameSpec, payloadLen int) (int, error) {
	src, dst := s.Src.Addr().Unmap(), s.Dst.Addr().Unmap()
	v4 := dst.Is4()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != v4 {
		return 0, ErrFamilyMismatch
	}
	if payloadLen < 0 || (v4 && payloadLen > maxIPv4Payload) || (!v4 && payloadLen > maxIPv6Payload) {
		return 0, ErrPayloadTooLarge
	}
	hl := s.HeaderLen()
	n := hl + payloadLen
	if len(buf) < n {
		return 0, ErrShortBuffer
	}
	b := buf[:n]

	copy(b[0:6], s.DstMAC[:])
	copy(b[6:12], s.SrcMAC[:])
	off := 12
	if s.VLAN != 0 {
		binary.BigEndian.PutUint16(b[12:14], EtherTypeVLAN)
		binary.BigEndian.PutUint16(b[14:16], s.VLAN)
		off = 16
	}
	ttl := s.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	udpLen := UDPHeaderLen + payloadLen
	var pseudo uint32
	if v4 {
		binary.BigEndian.PutUint16(b[off:], EtherTypeIPv4)
		ip := b[off+2 : off+2+IPv4HeaderLen]
		ip[0] = 0x45
		ip[1] = s.TOS
		binary.BigEndian.PutUint16(ip[2:4], uint16(IPv4HeaderLen+udpLen))
		binary.BigEndian.PutUint32(ip[4:8], ipv4FlagDF) // ID 0, DF, offset 0
		ip[8] = ttl
		ip[9] = IPProtocolUDP
		ip[10], ip[11] = 0, 0
		s4, d4 := src.As4(), dst.As4()
		copy(ip[12:16], s4[:])
		copy(ip[16:20], d4[:])
		binary.BigEndian.PutUint16(ip[10:12], Checksum(ip))
		if !s.NoUDPChecksum {
			pseudo = pseudoHeaderSum(ip[12:16], ip[16:20], IPProtocolUDP, udpLen)
		}
	} else {
		binary.BigEndian.PutUint16(b[off:], EtherTypeIPv6)
		ip := b[off+2 : off+2+IPv6HeaderLen]
		binary.BigEndian.PutUint32(ip[0:4], 6<<28|uint32(s.TOS)<<20|s.FlowLabel&0xFFFFF)
		binary.BigEndian.PutUint16(ip[4:6], uint16(udpLen))
		ip[6] = IPProtocolUDP
		ip[7] = ttl
		s16, d16 := src.As16(), dst.As16()
		copy(ip[8:24], s16[:])
		copy(ip[24:40], d16[:])
		pseudo = pseudoHeaderSum(ip[8:24], ip[24:40], IPProtocolUDP, udpLen)
	}

	udp := b[hl-UDPHeaderLen:]
	binary.BigEndian.PutUint16(udp[0:2], s.Src.Port())
	binary.BigEndian.PutUint16(udp[2:4], s.Dst.Port())
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpLen))
	udp[6], udp[7] = 0, 0
	if v4 && s.NoUDPChecksum {
		return n, nil
	}
	sum := ChecksumFinish(ChecksumPartial(udp, pseudo))
	if sum == 0 {
		sum = 0xFFFF
	}
	binary.BigEndian.PutUint16(udp[6:8], sum)
	return n, nil
}
