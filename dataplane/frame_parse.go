package dataplane

import (
	"encoding/binary"
	"net/netip"
)

// UDPFrame is the result of ParseUDPFrame. Offsets index into the parsed
// frame, which the UDPFrame does not reference: the caller keeps both
// together. A UDPFrame belongs to the goroutine that parses into it.
type UDPFrame struct {
	// SrcMAC and DstMAC are the Ethernet addresses.
	SrcMAC, DstMAC [6]byte
	// VLAN is the TCI of the VLAN tag when HasVLAN (802.1Q or 802.1ad).
	VLAN    uint16
	HasVLAN bool
	// Src and Dst are the UDP endpoints (IPv4 addresses are plain Is4).
	Src, Dst netip.AddrPort
	// TOS is the IPv4 TOS / IPv6 traffic class; TTL the TTL / hop limit.
	TOS uint8
	TTL uint8
	// IPID is the IPv4 identification (0 for IPv6); the RoCEv2 ICRC covers it.
	IPID uint16
	// L3Off is the offset of the IP header, L4Off of the UDP header,
	// PayloadOff of the UDP payload; PayloadLen is the UDP length minus 8.
	L3Off, L4Off, PayloadOff, PayloadLen int
	// UDPChecksum is the checksum field as received (0 on IPv4: none).
	UDPChecksum uint16
}

// Payload returns the UDP payload of frame, which f was parsed from.
func (f *UDPFrame) Payload(frame []byte) []byte {
	return frame[f.PayloadOff : f.PayloadOff+f.PayloadLen]
}

// IsIPv4 reports whether the frame carried IPv4.
func (f *UDPFrame) IsIPv4() bool { return f.Dst.Addr().Is4() }

// ParseUDPFrame parses an Ethernet frame with at most one 802.1Q or 802.1ad
// tag, an IPv4 header (options allowed, fragments rejected) or a fixed IPv6
// header whose next header is UDP (extension headers are rejected with
// ErrNotUDP), and a UDP header, into f. It checks every length against the
// frame and against each other (trailing Ethernet padding is allowed) and
// the IPv4 header checksum. It does not verify the UDP checksum, which the
// kernel may leave partial (CHECKSUM_PARTIAL); call VerifyUDPChecksum for it.
//
// It returns a bare sentinel (ErrTruncated, ErrNotUDP, ErrFragment,
// ErrBadChecksum, ErrMalformed) and never allocates. On error f holds
// partial results and must not be used.
func ParseUDPFrame(frame []byte, f *UDPFrame) error {
	if len(frame) < EthHeaderLen {
		return ErrTruncated
	}
	copy(f.DstMAC[:], frame[0:6])
	copy(f.SrcMAC[:], frame[6:12])
	etype := binary.BigEndian.Uint16(frame[12:14])
	l3 := EthHeaderLen
	f.VLAN, f.HasVLAN = 0, false
	if etype == EtherTypeVLAN || etype == EtherTypeQinQ {
		if len(frame) < EthHeaderLen+VLANTagLen {
			return ErrTruncated
		}
		f.VLAN = binary.BigEndian.Uint16(frame[14:16])
		f.HasVLAN = true
		etype = binary.BigEndian.Uint16(frame[16:18])
		l3 += VLANTagLen
	}
	f.L3Off = l3

	var src, dst netip.Addr
	var l4, ipEnd int
	switch etype {
	case EtherTypeIPv4:
		if len(frame) < l3+IPv4HeaderLen {
			return ErrTruncated
		}
		ip := frame[l3:]
		if ip[0]>>4 != 4 {
			return ErrMalformed
		}
		ihl := int(ip[0]&0x0F) * 4
		if ihl < IPv4HeaderLen {
			return ErrMalformed
		}
		if len(ip) < ihl {
			return ErrTruncated
		}
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if total < ihl {
			return ErrMalformed
		}
		if total > len(ip) {
			return ErrTruncated
		}
		if ip[9] != IPProtocolUDP {
			return ErrNotUDP
		}
		if binary.BigEndian.Uint16(ip[6:8])&ipv4FragMask != 0 {
			return ErrFragment
		}
		if ChecksumPartial(ip[:ihl], 0) != 0xFFFF {
			return ErrBadChecksum
		}
		f.TOS = ip[1]
		f.TTL = ip[8]
		f.IPID = binary.BigEndian.Uint16(ip[4:6])
		src = netip.AddrFrom4([4]byte(ip[12:16]))
		dst = netip.AddrFrom4([4]byte(ip[16:20]))
		l4 = l3 + ihl
		ipEnd = l3 + total
	case EtherTypeIPv6:
		if len(frame) < l3+IPv6HeaderLen {
			return ErrTruncated
		}
		ip := frame[l3:]
		vtf := binary.BigEndian.Uint32(ip[0:4])
		if vtf>>28 != 6 {
			return ErrMalformed
		}
		plen := int(binary.BigEndian.Uint16(ip[4:6]))
		if plen == 0 {
			return ErrMalformed // jumbogram (RFC 2675) or empty
		}
		if IPv6HeaderLen+plen > len(ip) {
			return ErrTruncated
		}
		if ip[6] != IPProtocolUDP {
			return ErrNotUDP
		}
		f.TOS = uint8(vtf >> 20)
		f.TTL = ip[7]
		f.IPID = 0
		src = netip.AddrFrom16([16]byte(ip[8:24]))
		dst = netip.AddrFrom16([16]byte(ip[24:40]))
		l4 = l3 + IPv6HeaderLen
		ipEnd = l4 + plen
	case EtherTypeVLAN, EtherTypeQinQ:
		return ErrNotUDP // a second tag: stacked VLANs are not handled
	default:
		return ErrNotUDP
	}

	if ipEnd-l4 < UDPHeaderLen {
		return ErrMalformed
	}
	udp := frame[l4:ipEnd]
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < UDPHeaderLen || ulen > len(udp) {
		return ErrMalformed
	}
	f.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp[0:2]))
	f.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(udp[2:4]))
	f.UDPChecksum = binary.BigEndian.Uint16(udp[6:8])
	f.L4Off = l4
	f.PayloadOff = l4 + UDPHeaderLen
	f.PayloadLen = ulen - UDPHeaderLen
	return nil
}

// VerifyUDPChecksum reports whether the UDP checksum of frame, which f was
// parsed from by ParseUDPFrame, is correct. A zero checksum is accepted on
// IPv4 (no checksum) and rejected on IPv6 (mandatory there). It returns
// false when f does not fit frame.
func VerifyUDPChecksum(frame []byte, f *UDPFrame) bool {
	ulen := f.PayloadLen + UDPHeaderLen
	if f.L3Off < 0 || f.L4Off < f.L3Off || f.PayloadLen < 0 || f.L4Off+ulen > len(frame) {
		return false
	}
	var pseudo uint32
	if f.Dst.Addr().Is4() {
		if f.UDPChecksum == 0 {
			return true
		}
		if f.L3Off+IPv4HeaderLen > len(frame) {
			return false
		}
		ip := frame[f.L3Off:]
		pseudo = pseudoHeaderSum(ip[12:16], ip[16:20], IPProtocolUDP, ulen)
	} else {
		if f.UDPChecksum == 0 || f.L3Off+IPv6HeaderLen > len(frame) {
			return false
		}
		ip := frame[f.L3Off:]
		pseudo = pseudoHeaderSum(ip[8:24], ip[24:40], IPProtocolUDP, ulen)
	}
	return ChecksumPartial(frame[f.L4Off:f.L4Off+ulen], pseudo) == 0xFFFF
}
