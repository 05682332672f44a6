package wire

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
)

// The invariant CRC (IBA Vol. 1 section 7.8.1, annex A17.3.3 for RoCEv2)
// is CRC-32 (the IEEE polynomial, as hash/crc32.ChecksumIEEE) over
//
//	8 bytes of 0xFF (standing in for the InfiniBand LRH)
//	the IP header           IPv4: TOS, TTL, header checksum set to ones
//	                        IPv6: traffic class, flow label, hop limit set to ones
//	the UDP header          checksum set to ones
//	the BTH                 byte 4 (FECN, BECN, reserved) set to ones
//	extension headers, payload and pad
//
// and is stored after the pad least-significant byte first. The masked
// fields are the ones routers and switches may change in flight.
//
// The functions here compute it piecewise without copying the packet: the
// IP, UDP and BTH headers (at most 80 bytes) are copied to a stack buffer
// and masked there (their CRC taken by crcUpdateSmall, see crc.go), and the
// rest is fed to hash/crc32 in place.

const (
	ipv4MinHeader = 20
	ipv4MaxHeader = 60
	ipv6Header    = 40
	udpHeader     = 8
	ipProtoUDP    = 17
	ipv4FlagDF    = 0x4000

	// maskedMax is the longest masked prefix: IPv4 with 40 bytes of
	// options, UDP, BTH.
	maskedMax = ipv4MaxHeader + udpHeader + BTHLen
)

// crcSeed is the CRC state after the 8 leading 0xFF bytes.
var crcSeed = crcUpdateSmall(0, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})

// locateRoCE checks that ip is an IPv4 or IPv6 UDP packet whose UDP payload
// can hold a BTH and an ICRC, and returns the IP header length and the end
// of the UDP payload (where the ICRC ends). Bytes beyond the length the IP
// header states (Ethernet padding) are ignored.
func locateRoCE(ip []byte) (ihl, end int, err error) {
	if len(ip) < 1 {
		return 0, 0, ErrTruncated
	}
	var udpLen int
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < ipv4MinHeader {
			return 0, 0, ErrTruncated
		}
		ihl = int(ip[0]&0x0F) * 4
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if ihl < ipv4MinHeader || ip[9] != ipProtoUDP || binary.BigEndian.Uint16(ip[6:8])&0x3FFF != 0 {
			return 0, 0, ErrNotRoCE
		}
		if total < ihl+udpHeader {
			return 0, 0, ErrNotRoCE
		}
		if len(ip) < total {
			return 0, 0, ErrTruncated
		}
		udpLen = total - ihl
	case 6:
		if len(ip) < ipv6Header {
			return 0, 0, ErrTruncated
		}
		ihl = ipv6Header
		if ip[6] != ipProtoUDP {
			return 0, 0, ErrNotRoCE
		}
		udpLen = int(binary.BigEndian.Uint16(ip[4:6]))
		if udpLen < udpHeader {
			return 0, 0, ErrNotRoCE
		}
		if len(ip) < ihl+udpLen {
			return 0, 0, ErrTruncated
		}
	default:
		return 0, 0, ErrNotRoCE
	}
	if int(binary.BigEndian.Uint16(ip[ihl+4:ihl+6])) != udpLen {
		return 0, 0, ErrNotRoCE
	}
	if udpLen < udpHeader+BTHLen+ICRCLen {
		return 0, 0, ErrTruncated
	}
	return ihl, ihl + udpLen, nil
}

// ICRC returns the invariant CRC of a RoCEv2 packet given as ipPacket: the
// bytes from the first byte of the IPv4 or IPv6 header through the end of
// the UDP payload, INCLUDING the 4 ICRC bytes at its end, which are not
// covered (their content does not matter). The end is taken from the IP
// header's length field, so trailing Ethernet padding may be left on.
// IPv4 options are covered; IPv6 extension headers are not supported.
// The UDP destination port is not checked.
//
// The value is the CRC as a number; on the wire it is stored
// least-significant byte first (binary.LittleEndian), as PutICRC does.
//
// Errors: ErrTruncated (shorter than its headers or than the IP length
// says, or a UDP payload under 16 bytes), ErrNotRoCE (not IPv4/IPv6, not
// UDP, an IPv4 fragment, IP and UDP lengths that disagree).
func ICRC(ipPacket []byte) (uint32, error) {
	crc, _, err := icrcOf(ipPacket)
	return crc, err
}

// icrcOf computes the ICRC of ip and returns it with the offset where the
// ICRC field ends.
func icrcOf(ip []byte) (crc uint32, end int, err error) {
	ihl, end, err := locateRoCE(ip)
	if err != nil {
		return 0, 0, err
	}
	var h [maskedMax]byte
	n := copy(h[:], ip[:ihl+udpHeader+BTHLen])
	maskIP(h[:ihl])
	maskUDPBTH(h[ihl:n])
	crc = crcUpdateSmall(crcSeed, h[:n])
	return crc32.Update(crc, crc32.IEEETable, ip[n:end-ICRCLen]), end, nil
}

// PutICRC computes the ICRC of ipPacket (see ICRC for what it spans) and
// stores it in the packet's last 4 bytes, least-significant byte first.
// With a UDP checksum in the frame, the checksum must be computed after
// this (or use PutICRCFromParts before dataplane.WriteUDPFrame).
func PutICRC(ipPacket []byte) error {
	crc, end, err := icrcOf(ipPacket)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(ipPacket[end-ICRCLen:end], crc)
	return nil
}

// CheckICRC reports whether the ICRC stored at the end of ipPacket's UDP
// payload matches its contents. It reports false for anything ICRC
// rejects.
func CheckICRC(ipPacket []byte) bool {
	crc, end, err := icrcOf(ipPacket)
	return err == nil && crc == binary.LittleEndian.Uint32(ipPacket[end-ICRCLen:end])
}

// maskIP sets the variant fields of an IPv4 (TOS, TTL, header checksum) or
// IPv6 (traffic class, flow label, hop limit) header to ones.
func maskIP(h []byte) {
	if h[0]>>4 == 4 {
		h[1] = 0xFF
		h[8] = 0xFF
		h[10], h[11] = 0xFF, 0xFF
		return
	}
	h[0] |= 0x0F
	h[1], h[2], h[3] = 0xFF, 0xFF, 0xFF
	h[7] = 0xFF
}

// maskUDPBTH sets the UDP checksum and BTH byte 4 of h (UDP header then
// BTH) to ones.
func maskUDPBTH(h []byte) {
	h[6], h[7] = 0xFF, 0xFF
	h[udpHeader+4] = 0xFF
}

// ICRCFromParts returns the ICRC of the RoCEv2 packet udpPayload (BTH
// through the 4 ICRC bytes, which are not covered) as it will be, or was,
// sent between the UDP endpoints src and dst, for a caller that does not
// have the IP header in hand (the kernel-UDP transport). It synthesizes the
// header exactly as dataplane.WriteUDPFrame builds it:
//
//	IPv4: version 4, IHL 5 (no options), total length, identification
//	      ipv4ID, flags DF with fragment offset 0, protocol 17, src, dst
//	IPv6: version 6, payload length, next header 17 (no extension
//	      headers), src, dst
//	UDP:  source and destination ports, length
//
// The fields the ICRC masks (TOS/traffic class, flow label, TTL/hop limit,
// checksums) need not be known. Our AF_XDP frames carry ipv4ID 0; so does
// Linux for datagrams sent with DF on an unconnected UDP socket, but a
// connected socket numbers its datagrams, which the sender cannot know.
// 4in6-mapped addresses count as IPv4.
//
// Errors: ErrNotRoCE (src and dst not both valid IPv4 or both IPv6, or a
// payload too long for the IP length fields), ErrTruncated (udpPayload
// shorter than a BTH plus ICRC).
func ICRCFromParts(src, dst netip.AddrPort, ipv4ID uint16, udpPayload []byte) (uint32, error) {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if !s.IsValid() || !d.IsValid() || s.Is4() != d.Is4() {
		return 0, ErrNotRoCE
	}
	if len(udpPayload) < BTHLen+ICRCLen {
		return 0, ErrTruncated
	}
	udpLen := udpHeader + len(udpPayload)
	var h [ipv6Header + udpHeader + BTHLen]byte
	var ihl int
	if s.Is4() {
		if ipv4MinHeader+udpLen > 0xFFFF {
			return 0, ErrNotRoCE
		}
		ihl = ipv4MinHeader
		h[0] = 0x45
		h[1] = 0xFF // TOS
		binary.BigEndian.PutUint16(h[2:4], uint16(ipv4MinHeader+udpLen))
		binary.BigEndian.PutUint16(h[4:6], ipv4ID)
		binary.BigEndian.PutUint16(h[6:8], ipv4FlagDF)
		h[8] = 0xFF // TTL
		h[9] = ipProtoUDP
		h[10], h[11] = 0xFF, 0xFF // header checksum
		s4, d4 := s.As4(), d.As4()
		copy(h[12:16], s4[:])
		copy(h[16:20], d4[:])
	} else {
		if udpLen > 0xFFFF {
			return 0, ErrNotRoCE
		}
		ihl = ipv6Header
		h[0], h[1], h[2], h[3] = 0x6F, 0xFF, 0xFF, 0xFF // version, traffic class, flow label
		binary.BigEndian.PutUint16(h[4:6], uint16(udpLen))
		h[6] = ipProtoUDP
		h[7] = 0xFF // hop limit
		s16, d16 := s.As16(), d.As16()
		copy(h[8:24], s16[:])
		copy(h[24:40], d16[:])
	}
	u := h[ihl:]
	binary.BigEndian.PutUint16(u[0:2], src.Port())
	binary.BigEndian.PutUint16(u[2:4], dst.Port())
	binary.BigEndian.PutUint16(u[4:6], uint16(udpLen))
	copy(u[udpHeader:], udpPayload[:BTHLen])
	maskUDPBTH(u)
	n := ihl + udpHeader + BTHLen
	crc := crcUpdateSmall(crcSeed, h[:n])
	return crc32.Update(crc, crc32.IEEETable, udpPayload[BTHLen:len(udpPayload)-ICRCLen]), nil
}

// PutICRCFromParts computes ICRCFromParts and stores the result in the
// last 4 bytes of udpPayload, least-significant byte first.
func PutICRCFromParts(src, dst netip.AddrPort, ipv4ID uint16, udpPayload []byte) error {
	crc, err := ICRCFromParts(src, dst, ipv4ID, udpPayload)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(udpPayload[len(udpPayload)-ICRCLen:], crc)
	return nil
}
