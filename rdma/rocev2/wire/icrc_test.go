package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/opennetworks/onetdp/dataplane"
)

// unhex decodes hex with spaces, newlines and // comments allowed.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// connectX4CNP is a CNP captured from a Mellanox ConnectX-4 Lx (published
// with scapy's RoCE regression tests), from the Ethernet header on. Its
// ICRC was computed by the NIC: a known answer independent of this code.
const connectX4CNP = `
e41d2dab2bc2 7cfe90643b32 0800                 // Ethernet
45 c2 003c 718c 4000 40 11 9161 0a001101 0a001201 // IPv4: TOS 0xc2, len 60, ID 0x718c, DF, TTL 64, UDP
0000 12b7 0028 0000                            // UDP: 0 -> 4791, len 40, no checksum
81 00 ffff 40 000118 00 000000                 // BTH: CNP, P_Key 0xffff, BECN, QP 0x118, PSN 0
00000000000000000000000000000000               // 16 reserved bytes
82fd002a                                       // ICRC, LSB first: 0x2a00fd82
`

func TestICRCKnownAnswerConnectX4CNP(t *testing.T) {
	frame := unhex(t, connectX4CNP)
	ip := frame[dataplane.EthHeaderLen:]
	const want = 0x2a00fd82
	got, err := ICRC(ip)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("ICRC = %#08x, want %#08x (the NIC's)", got, want)
	}
	if !CheckICRC(ip) {
		t.Fatal("CheckICRC rejects the NIC's packet")
	}
	src := netip.MustParseAddrPort("10.0.17.1:0")
	dst := netip.MustParseAddrPort("10.0.18.1:4791")
	udp := ip[20+8:]
	if fp, err := ICRCFromParts(src, dst, 0x718c, udp); err != nil || fp != want {
		t.Fatalf("ICRCFromParts = %#08x, %v; want %#08x", fp, err, want)
	}

	// Our CNP encoder produces the NIC's bytes (ICRC aside).
	var p Packet
	if err := Decode(udp, &p); err != nil {
		t.Fatal(err)
	}
	if p.OpCode != OpCNP || !p.BECN || p.FECN || p.DestQP != 0x118 || p.PSN != 0 || p.PKey != 0xffff || len(p.Payload) != 0 {
		t.Fatalf("decoded CNP = %+v", p)
	}
	buf := make([]byte, 64)
	n, err := EncodeCNP(buf, 0x118)
	if err != nil || n != CNPLen || n != len(udp) {
		t.Fatalf("EncodeCNP = %d, %v; want %d", n, err, len(udp))
	}
	if !bytes.Equal(buf[:n-ICRCLen], udp[:len(udp)-ICRCLen]) {
		t.Fatalf("EncodeCNP = % x\nNIC sent   % x", buf[:n-ICRCLen], udp[:len(udp)-ICRCLen])
	}
	if err := PutICRCFromParts(src, dst, 0x718c, buf[:n]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], udp) {
		t.Fatalf("CNP with ICRC = % x\nNIC sent        % x", buf[:n], udp)
	}
}

// scapyUCSendOnly is the example UC SEND_ONLY packet of scapy's RoCE
// regression tests with the ICRC scapy asserts (wire bytes 78 f3 53 f3),
// from the IP header on. The opcode is UC (0x24), which Decode does not
// accept, but the ICRC does not depend on the transport.
const scapyUCSendOnly = `
45 01 0040 0478 4000 40 11 b4d5 c0a80007 c0a80007 // IPv4: TOS 1, len 64, ID 1144, DF, TTL 64
c000 12b7 002c aca2                            // UDP: 49152 -> 4791, len 44, checksum
24 60 ffff 00 0000d3 00 cf1710                 // BTH: UC_SEND_ONLY, MigReq, pad 2, QP 211, PSN 13571856
4630818be28935d90e9a955054 01be885e50 0000     // 18 bytes payload, 2 bytes pad
78f353f3                                       // ICRC
`

func TestICRCKnownAnswerScapyUC(t *testing.T) {
	ip := unhex(t, scapyUCSendOnly)
	const want = 0xf353f378
	if got, err := ICRC(ip); err != nil || got != want {
		t.Fatalf("ICRC = %#08x, %v; want %#08x", got, err, want)
	}
	if !CheckICRC(ip) {
		t.Fatal("CheckICRC rejects scapy's packet")
	}
}

// refICRC is a deliberately plain second implementation of DESIGN.md §4:
// copy the packet, set the variant fields to ones, prepend 8 bytes of
// 0xFF, crc32.ChecksumIEEE up to the ICRC.
func refICRC(ip []byte) uint32 {
	c := bytes.Clone(ip)
	var ihl, end int
	if c[0]>>4 == 4 {
		ihl = int(c[0]&15) * 4
		end = int(binary.BigEndian.Uint16(c[2:4]))
		c[1], c[8], c[10], c[11] = 0xff, 0xff, 0xff, 0xff // TOS, TTL, checksum
	} else {
		ihl = 40
		end = 40 + int(binary.BigEndian.Uint16(c[4:6]))
		c[0] |= 0x0f                                    // traffic class high nibble
		c[1], c[2], c[3], c[7] = 0xff, 0xff, 0xff, 0xff // traffic class, flow label, hop limit
	}
	c[ihl+6], c[ihl+7] = 0xff, 0xff // UDP checksum
	c[ihl+8+4] = 0xff               // BTH byte 4
	data := append(bytes.Repeat([]byte{0xff}, 8), c[:end-4]...)
	return crc32.ChecksumIEEE(data)
}

// randomIPPacket builds an IPv4 (with 0-40 bytes of options) or IPv6 UDP
// packet with random header fields and a random RoCE payload of
// payloadLen bytes (BTH through ICRC), plus trailing garbage that the
// length fields exclude.
func randomIPPacket(r *rand.Rand, v6 bool, payloadLen int) []byte {
	var ip []byte
	var ihl int
	udpLen := 8 + payloadLen
	if !v6 {
		ihl = 20 + 4*r.IntN(11)
		ip = make([]byte, ihl+udpLen)
		fillRandom(r, ip)
		ip[0] = 0x40 | byte(ihl/4)
		binary.BigEndian.PutUint16(ip[2:4], uint16(ihl+udpLen))
		binary.BigEndian.PutUint16(ip[6:8], uint16(r.IntN(2))<<14) // DF or not, no fragment
		ip[9] = 17
	} else {
		ihl = 40
		ip = make([]byte, ihl+udpLen)
		fillRandom(r, ip)
		ip[0] = 0x60 | ip[0]&0x0f
		binary.BigEndian.PutUint16(ip[4:6], uint16(udpLen))
		ip[6] = 17
	}
	binary.BigEndian.PutUint16(ip[ihl+4:], uint16(udpLen))
	trailer := make([]byte, r.IntN(8))
	fillRandom(r, trailer)
	return append(ip, trailer...)
}

func fillRandom(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

func TestICRCMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		v6 := i%2 == 1
		n := 16 + 4*r.IntN(300)
		if i%7 == 0 {
			n = 16 + r.IntN(4) // also lengths that are not multiples of 4
		}
		ip := randomIPPacket(r, v6, n)
		want := refICRC(ip)
		got, err := ICRC(ip)
		if err != nil || got != want {
			t.Fatalf("packet %d (v6=%v, %d bytes): ICRC = %#08x, %v; reference %#08x\n% x", i, v6, n, got, err, want, ip)
		}
		if CheckICRC(ip) != (binary.LittleEndian.Uint32(ip[icrcEnd(ip)-4:]) == want) {
			t.Fatalf("packet %d: CheckICRC disagrees with the stored value", i)
		}
		if err := PutICRC(ip); err != nil || !CheckICRC(ip) {
			t.Fatalf("packet %d: PutICRC then CheckICRC fails (%v)", i, err)
		}
		end := icrcEnd(ip)
		if binary.LittleEndian.Uint32(ip[end-4:end]) != want {
			t.Fatalf("packet %d: PutICRC stored % x, want %#08x LSB first", i, ip[end-4:end], want)
		}
	}
}

// icrcEnd returns where the UDP payload of a test packet ends.
func icrcEnd(ip []byte) int {
	if ip[0]>>4 == 4 {
		return int(binary.BigEndian.Uint16(ip[2:4]))
	}
	return 40 + int(binary.BigEndian.Uint16(ip[4:6]))
}

// TestICRCMaskedAndCoveredFields flips every bit of a packet in turn: bits
// in the masked fields must not change the ICRC, every other bit up to the
// ICRC must.
func TestICRCMaskedAndCoveredFields(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, v6 := range []bool{false, true} {
		ip := randomIPPacket(r, v6, 12+28+8+4)
		if !v6 {
			ip[0] = 0x46 // one option word
			binary.BigEndian.PutUint16(ip[2:4], uint16(24+8+52))
			binary.BigEndian.PutUint16(ip[24+4:], 8+52)
			ip = ip[:24+8+52]
		}
		ihl := int(ip[0]&15) * 4
		masked := map[int]bool{ihl + 6: true, ihl + 7: true, ihl + 8 + 4: true}
		if v6 {
			ihl = 40
			masked = map[int]bool{1: true, 2: true, 3: true, 7: true, ihl + 6: true, ihl + 7: true, ihl + 8 + 4: true}
		} else {
			masked[1], masked[8], masked[10], masked[11] = true, true, true, true
		}
		base, err := ICRC(ip)
		if err != nil {
			t.Fatal(err)
		}
		end := icrcEnd(ip)
		for i := range end - 4 {
			for bit := range 8 {
				if v6 && i == 0 {
					continue // version (structural) and traffic class high nibble (checked below)
				}
				if !v6 && (i == 0 || i == 2 || i == 3 || i == 6 || i == 7 || i == 9 || i == ihl+4 || i == ihl+5) {
					continue // IHL, lengths, flags/fragment offset, protocol: structural
				}
				if v6 && (i == 4 || i == 5 || i == 6 || i == ihl+4 || i == ihl+5) {
					continue
				}
				ip[i] ^= 1 << bit
				got, err := ICRC(ip)
				ip[i] ^= 1 << bit
				if err != nil {
					t.Fatalf("v6=%v byte %d bit %d: %v", v6, i, bit, err)
				}
				if masked[i] && got != base {
					t.Errorf("v6=%v: masked byte %d bit %d changed the ICRC", v6, i, bit)
				}
				if !masked[i] && got == base {
					t.Errorf("v6=%v: covered byte %d bit %d did not change the ICRC", v6, i, bit)
				}
			}
		}
		if v6 { // the traffic class low nibble lives in byte 0
			ip[0] ^= 0x0f
			if got, _ := ICRC(ip); got != base {
				t.Error("IPv6 traffic class (byte 0 low nibble) is not masked")
			}
			ip[0] ^= 0x0f
		}
	}
}

func TestICRCFromPartsMatchesWriteUDPFrame(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	specs := []dataplane.FrameSpec{
		{Src: netip.MustParseAddrPort("198.18.0.1:49152"), Dst: netip.MustParseAddrPort("198.18.0.2:4791")},
		{Src: netip.MustParseAddrPort("198.18.0.1:65535"), Dst: netip.MustParseAddrPort("198.18.0.2:4791"), NoUDPChecksum: true, VLAN: 0x2005},
		{Src: netip.MustParseAddrPort("[::ffff:198.18.0.3]:50000"), Dst: netip.MustParseAddrPort("198.18.0.4:4791")},
		{Src: netip.MustParseAddrPort("[fd00:198:18::1]:52000"), Dst: netip.MustParseAddrPort("[fd00:198:18::2]:4791")},
		{Src: netip.MustParseAddrPort("[fd00:198:18::1]:52001"), Dst: netip.MustParseAddrPort("[fd00:198:18::2]:4791"), VLAN: 7},
	}
	buf := make([]byte, 9000)
	for i := range 200 {
		s := specs[i%len(specs)]
		s.TOS, s.TTL, s.FlowLabel = uint8(r.Uint32()), uint8(r.Uint32()), r.Uint32()
		p := randomPacket(r, OpCode(r.IntN(int(OpFetchAdd)+1)))
		hl := s.HeaderLen()
		n, err := Encode(buf[hl:], &p)
		if err != nil {
			t.Fatal(err)
		}
		buf[hl+4] = byte(r.Uint32()) // FECN/BECN/reserved: masked
		udp := buf[hl : hl+n]
		if err := PutICRCFromParts(s.Src, s.Dst, 0, udp); err != nil {
			t.Fatal(err)
		}
		fn, err := dataplane.WriteUDPFrame(buf, &s, n)
		if err != nil {
			t.Fatal(err)
		}
		frame := buf[:fn]
		var f dataplane.UDPFrame
		if err := dataplane.ParseUDPFrame(frame, &f); err != nil {
			t.Fatal(err)
		}
		if !dataplane.VerifyUDPChecksum(frame, &f) {
			t.Fatalf("case %d: UDP checksum bad after PutICRCFromParts then WriteUDPFrame", i)
		}
		ip := frame[f.L3Off:]
		want := refICRC(ip)
		got, err := ICRC(ip)
		if err != nil || got != want || !CheckICRC(ip) {
			t.Fatalf("case %d (%v): ICRC of the frame = %#08x, %v, reference %#08x, CheckICRC %v",
				i, s.Dst, got, err, want, CheckICRC(ip))
		}
		fp, err := ICRCFromParts(s.Src, s.Dst, 0, udp)
		if err != nil || fp != got {
			t.Fatalf("case %d: ICRCFromParts = %#08x, %v; frame ICRC %#08x", i, fp, err, got)
		}
		// A wrong IPv4 ID or port must change it.
		other := netip.AddrPortFrom(s.Src.Addr(), s.Src.Port()^1)
		if fp2, _ := ICRCFromParts(other, s.Dst, 0, udp); fp2 == fp {
			t.Fatalf("case %d: source port not covered", i)
		}
		if s.Dst.Addr().Unmap().Is4() {
			if fp2, _ := ICRCFromParts(s.Src, s.Dst, 1, udp); fp2 == fp {
				t.Fatalf("case %d: IPv4 ID not covered", i)
			}
		}
	}
}

func TestICRCErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	good4 := randomIPPacket(r, false, 32)
	good4[0] = 0x45
	binary.BigEndian.PutUint16(good4[2:4], 20+8+32)
	binary.BigEndian.PutUint16(good4[24:26], 8+32)
	good4 = good4[:60]
	good6 := randomIPPacket(r, true, 32)[:80]
	if _, err := ICRC(good4); err != nil {
		t.Fatal(err)
	}
	if _, err := ICRC(good6); err != nil {
		t.Fatal(err)
	}
	edit := func(b []byte, f func([]byte)) []byte { c := bytes.Clone(b); f(c); return c }
	cases := []struct {
		name string
		ip   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"ipv4 short header", good4[:19], ErrTruncated},
		{"ipv4 shorter than total length", good4[:59], ErrTruncated},
		{"ipv6 short header", good6[:39], ErrTruncated},
		{"ipv6 shorter than payload length", good6[:79], ErrTruncated},
		{"version 5", edit(good4, func(b []byte) { b[0] = 0x55 }), ErrNotRoCE},
		{"ipv4 IHL 4", edit(good4, func(b []byte) { b[0] = 0x44 }), ErrNotRoCE},
		{"ipv4 TCP", edit(good4, func(b []byte) { b[9] = 6 }), ErrNotRoCE},
		{"ipv4 fragment", edit(good4, func(b []byte) { b[6] = 0x20 }), ErrNotRoCE},
		{"ipv4 total < headers", edit(good4, func(b []byte) { binary.BigEndian.PutUint16(b[2:4], 27) }), ErrNotRoCE},
		{"ipv4 UDP length mismatch", edit(good4, func(b []byte) { binary.BigEndian.PutUint16(b[24:26], 39) }), ErrNotRoCE},
		{"ipv4 UDP payload under 16", edit(good4, func(b []byte) {
			binary.BigEndian.PutUint16(b[2:4], 20+8+15)
			binary.BigEndian.PutUint16(b[24:26], 8+15)
		}), ErrTruncated},
		{"ipv6 extension header", edit(good6, func(b []byte) { b[6] = 0 }), ErrNotRoCE},
		{"ipv6 UDP length mismatch", edit(good6, func(b []byte) { binary.BigEndian.PutUint16(b[44:46], 41) }), ErrNotRoCE},
		{"ipv6 payload length < 8", edit(good6, func(b []byte) { binary.BigEndian.PutUint16(b[4:6], 7) }), ErrNotRoCE},
	}
	for _, c := range cases {
		if _, err := ICRC(c.ip); !errors.Is(err, c.want) {
			t.Errorf("%s: ICRC error %v, want %v", c.name, err, c.want)
		}
		if err := PutICRC(c.ip); !errors.Is(err, c.want) {
			t.Errorf("%s: PutICRC error %v, want %v", c.name, err, c.want)
		}
		if CheckICRC(c.ip) {
			t.Errorf("%s: CheckICRC accepted it", c.name)
		}
	}

	v4 := netip.MustParseAddrPort("198.18.0.1:1")
	v6 := netip.MustParseAddrPort("[fd00:198:18::1]:1")
	pkt := make([]byte, 16)
	for _, c := range []struct {
		name     string
		src, dst netip.AddrPort
		payload  []byte
		want     error
	}{
		{"mixed families", v4, v6, pkt, ErrNotRoCE},
		{"invalid address", netip.AddrPort{}, v4, pkt, ErrNotRoCE},
		{"short payload", v4, v4, pkt[:15], ErrTruncated},
		{"ipv4 too long", v4, v4, make([]byte, 0xFFFF-27), ErrNotRoCE},
		{"ipv6 too long", v6, v6, make([]byte, 0xFFFF-7), ErrNotRoCE},
	} {
		if _, err := ICRCFromParts(c.src, c.dst, 0, c.payload); !errors.Is(err, c.want) {
			t.Errorf("ICRCFromParts %s: error %v, want %v", c.name, err, c.want)
		}
		if err := PutICRCFromParts(c.src, c.dst, 0, c.payload); !errors.Is(err, c.want) {
			t.Errorf("PutICRCFromParts %s: error %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := ICRCFromParts(v4, v4, 0, make([]byte, 0xFFFF-28)); err != nil {
		t.Errorf("ICRCFromParts at the IPv4 maximum: %v", err)
	}
	if _, err := ICRCFromParts(v6, v6, 0, make([]byte, 0xFFFF-8)); err != nil {
		t.Errorf("ICRCFromParts at the IPv6 maximum: %v", err)
	}
}

func TestICRCNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	ip4 := randomIPPacket(r, false, 4096)
	ip6 := randomIPPacket(r, true, 64)
	src, dst := netip.MustParseAddrPort("198.18.0.1:49152"), netip.MustParseAddrPort("198.18.0.2:4791")
	udp := ip4[int(ip4[0]&15)*4+8 : icrcEnd(ip4)]
	for name, f := range map[string]func(){
		"ICRC":             func() { _, _ = ICRC(ip4); _, _ = ICRC(ip6) },
		"CheckICRC":        func() { _ = CheckICRC(ip4); _ = CheckICRC(ip6) },
		"PutICRC":          func() { _ = PutICRC(ip4); _ = PutICRC(ip6) },
		"ICRCFromParts":    func() { _, _ = ICRCFromParts(src, dst, 0, udp) },
		"PutICRCFromParts": func() { _ = PutICRCFromParts(src, dst, 0, udp) },
		"errors":           func() { _, _ = ICRC(ip4[:10]); _, _ = ICRCFromParts(src, netip.AddrPort{}, 0, udp) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s allocates %.1f times per call", name, a)
		}
	}
}

func TestCRCUpdateSmallMatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for n := range 200 {
		b := make([]byte, n)
		fillRandom(r, b)
		seed := r.Uint32()
		if got, want := crcUpdateSmall(seed, b), crc32.Update(seed, crc32.IEEETable, b); got != want {
			t.Fatalf("len %d: crcUpdateSmall %#08x, crc32.Update %#08x", n, got, want)
		}
	}
}
