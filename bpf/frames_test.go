package bpf

import (
	"encoding/binary"
	"net/netip"
)

// testFrame describes a frame for buildFrame: Ethernet, an optional VLAN
// tag, IPv4 (with options) or IPv6, and UDP (or another protocol).
type testFrame struct {
	vlanTPID  uint16 // 0 = untagged; 0x8100 or 0x88a8
	src, dst  netip.Addr
	ecn       uint8  // low two bits of TOS / traffic class
	proto     uint8  // IP protocol; 0 = UDP
	ipOptions int    // bytes of IPv4 options, a multiple of 4 (<= 40)
	fragOff   uint16 // IPv4 flags+fragment offset field
	extHdrs   int    // IPv6: number of 8-byte destination-options headers
	sport     uint16
	dport     uint16
	payload   []byte
}

var (
	testSrc4 = netip.MustParseAddr("198.18.0.1")
	testDst4 = netip.MustParseAddr("198.18.0.2")
	testSrc6 = netip.MustParseAddr("fd00:198:18::1")
	testDst6 = netip.MustParseAddr("fd00:198:18::2")
)

// bth returns a 12-byte RoCEv2 base transport header (RC SEND ONLY) for
// destination QP qp, followed by n payload bytes and a 4-byte ICRC slot.
func bth(qp uint32, psn uint32, n int) []byte {
	b := make([]byte, 12+n+4)
	b[0] = 0x04 // RC SEND ONLY
	b[1] = 0x40 // migreq
	binary.BigEndian.PutUint16(b[2:], 0xffff)
	b[5], b[6], b[7] = byte(qp>>16), byte(qp>>8), byte(qp)
	b[9], b[10], b[11] = byte(psn>>16), byte(psn>>8), byte(psn)
	for i := 12; i < 12+n; i++ {
		b[i] = byte(i)
	}
	return b
}

// roceFrame is a well-formed IPv4 RoCEv2 frame to QP qp.
func roceFrame(qp uint32, n int) []byte {
	return buildFrame(testFrame{src: testSrc4, dst: testDst4, sport: 0xc001, dport: 4791, payload: bth(qp, 1, n)})
}

func buildFrame(f testFrame) []byte {
	if f.proto == 0 {
		f.proto = 17
	}
	var l4 []byte
	if f.proto == 17 {
		l4 = make([]byte, 8+len(f.payload))
		binary.BigEndian.PutUint16(l4[0:], f.sport)
		binary.BigEndian.PutUint16(l4[2:], f.dport)
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		copy(l4[8:], f.payload)
	} else {
		l4 = append([]byte(nil), f.payload...)
	}

	b := make([]byte, 0, 128+len(l4))
	b = append(b, 0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1) // dst, src MAC
	if f.vlanTPID != 0 {
		b = binary.BigEndian.AppendUint16(b, f.vlanTPID)
		b = binary.BigEndian.AppendUint16(b, 7) // VID 7
	}
	if f.src.Is4() {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		hlen := 20 + f.ipOptions
		ip := make([]byte, hlen)
		ip[0] = 0x40 | byte(hlen/4)
		ip[1] = f.ecn & 3
		binary.BigEndian.PutUint16(ip[2:], uint16(hlen+len(l4)))
		binary.BigEndian.PutUint16(ip[6:], f.fragOff)
		ip[8] = 64
		ip[9] = f.proto
		s, d := f.src.As4(), f.dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		for i := 20; i < hlen; i++ {
			ip[i] = 1 // NOP options
		}
		var sum uint32
		for i := 0; i < hlen; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(ip[i:]))
		}
		for sum > 0xffff {
			sum = sum>>16 + sum&0xffff
		}
		binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
		b = append(b, ip...)
	} else {
		b = binary.BigEndian.AppendUint16(b, 0x86dd)
		ip := make([]byte, 40)
		tc := uint32(f.ecn & 3)
		binary.BigEndian.PutUint32(ip[0:], 6<<28|tc<<20|0x12345)
		binary.BigEndian.PutUint16(ip[4:], uint16(8*f.extHdrs+len(l4)))
		ip[7] = 64
		s, d := f.src.As16(), f.dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		next := 6 // index of the current next-header byte
		for i := 0; i < f.extHdrs; i++ {
			ip[next] = 60 // destination options
			ext := make([]byte, 8)
			ext[2] = 1 // PadN
			ext[3] = 4
			ip = append(ip, ext...)
			next = len(ip) - 8
		}
		ip[next] = f.proto
		b = append(b, ip...)
	}
	return append(b, l4...)
}
