package dataplane

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

var (
	testSrcMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	testDstMAC = [6]byte{0x02, 0, 0, 0, 0, 0x02}
)

func specV4() FrameSpec {
	return FrameSpec{
		SrcMAC: testSrcMAC, DstMAC: testDstMAC,
		Src: netip.MustParseAddrPort("198.18.0.1:49152"),
		Dst: netip.MustParseAddrPort("198.18.0.2:4791"),
		TOS: 0x02,
	}
}

func specV6VLAN() FrameSpec {
	return FrameSpec{
		SrcMAC: testSrcMAC, DstMAC: testDstMAC,
		VLAN:      0x2005, // PCP 1, VID 5
		Src:       netip.MustParseAddrPort("[fd00:198:18::1]:1234"),
		Dst:       netip.MustParseAddrPort("[fd00:198:18::2]:4791"),
		TOS:       0x0a,
		TTL:       32,
		FlowLabel: 0x12345,
	}
}

// buildFrame places payload after the headers and writes them.
func buildFrame(t testing.TB, s *FrameSpec, payload []byte) []byte {
	t.Helper()
	buf := make([]byte, s.HeaderLen()+len(payload))
	copy(buf[s.HeaderLen():], payload)
	n, err := WriteUDPFrame(buf, s, len(payload))
	if err != nil {
		t.Fatalf("WriteUDPFrame: %v", err)
	}
	if n != len(buf) {
		t.Fatalf("WriteUDPFrame returned %d, want %d", n, len(buf))
	}
	return buf
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Frames computed independently (Python struct + a textbook checksum).
const (
	knownV4 = "020000000002020000000001080045020028000040004011ae9bc6120001c6120002c00012b70014609a68656c6c6f2c20776f726c64"
	knownV6 = "0200000000020200000000018100200586dd60a1234500141120fd000198001800000000000000000001fd00019800180000000000000000000204d212b70014aa8c68656c6c6f2c20776f726c64"
)

func TestWriteUDPFrameKnownAnswer(t *testing.T) {
	payload := []byte("hello, world")
	for _, c := range []struct {
		name string
		spec FrameSpec
		want string
	}{
		{"ipv4", specV4(), knownV4},
		{"ipv6-vlan", specV6VLAN(), knownV6},
	} {
		got := buildFrame(t, &c.spec, payload)
		if want := mustHex(c.want); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", c.name, got, want)
		}
	}
	// The IPv4 header of a widely published example (checksum b861).
	s := FrameSpec{
		Src: netip.MustParseAddrPort("192.168.0.1:1"),
		Dst: netip.MustParseAddrPort("192.168.0.199:2"),
	}
	f := buildFrame(t, &s, make([]byte, 0x73-28))
	wantIP := mustHex("45000073000040004011b861c0a80001c0a800c7")
	if got := f[14:34]; !bytes.Equal(got, wantIP) {
		t.Errorf("ipv4 header:\n got %x\nwant %x", got, wantIP)
	}
}

// refUDPChecksumOK recomputes the UDP checksum of a parsed frame with the
// byte-by-byte reference and an explicitly assembled pseudo-header.
func refUDPChecksumOK(frame []byte, f *UDPFrame) bool {
	ulen := f.PayloadLen + UDPHeaderLen
	var ph []byte
	if f.Dst.Addr().Is4() {
		s, d := f.Src.Addr().As4(), f.Dst.Addr().As4()
		ph = append(append(append(ph, s[:]...), d[:]...), 0, IPProtocolUDP, byte(ulen>>8), byte(ulen))
	} else {
		s, d := f.Src.Addr().As16(), f.Dst.Addr().As16()
		ph = append(append(append(ph, s[:]...), d[:]...), 0, 0, byte(ulen>>8), byte(ulen), 0, 0, 0, IPProtocolUDP)
	}
	seg := frame[f.L4Off : f.L4Off+ulen]
	return refChecksumSum(seg, refChecksumSum(ph, 0)) == 0xFFFF
}

func TestUDPFrameRoundTrip(t *testing.T) {
	mapped := specV4()
	mapped.Src = netip.AddrPortFrom(netip.AddrFrom16(mapped.Src.Addr().As16()), mapped.Src.Port())
	mapped.Dst = netip.AddrPortFrom(netip.AddrFrom16(mapped.Dst.Addr().As16()), mapped.Dst.Port())
	noSum := specV4()
	noSum.NoUDPChecksum = true
	v4VLAN := specV4()
	v4VLAN.VLAN = 0xE00A // PCP 7, VID 10
	v4VLAN.TTL = 1
	v6 := specV6VLAN()
	v6.VLAN = 0
	v6.TTL = 0
	v6NoSum := specV6VLAN()
	v6NoSum.NoUDPChecksum = true // ignored for IPv6

	for _, c := range []struct {
		name    string
		spec    FrameSpec
		payload int
		wantTTL uint8
	}{
		{"ipv4", specV4(), 100, 64},
		{"ipv4-empty", specV4(), 0, 64},
		{"ipv4-odd", specV4(), 1023, 64},
		{"ipv4-max", specV4(), maxIPv4Payload, 64},
		{"ipv4-vlan", v4VLAN, 64, 1},
		{"ipv4-mapped", mapped, 64, 64},
		{"ipv4-nochecksum", noSum, 64, 64},
		{"ipv6", v6, 1024, 64},
		{"ipv6-vlan", specV6VLAN(), 63, 32},
		{"ipv6-max", specV6VLAN(), maxIPv6Payload, 32},
		{"ipv6-nochecksum-ignored", v6NoSum, 10, 32},
	} {
		t.Run(c.name, func(t *testing.T) {
			payload := make([]byte, c.payload)
			for i := range payload {
				payload[i] = byte(i*31 + 7)
			}
			frame := buildFrame(t, &c.spec, payload)
			var f UDPFrame
			if err := ParseUDPFrame(frame, &f); err != nil {
				t.Fatalf("ParseUDPFrame: %v", err)
			}
			wantSrc := netip.AddrPortFrom(c.spec.Src.Addr().Unmap(), c.spec.Src.Port())
			wantDst := netip.AddrPortFrom(c.spec.Dst.Addr().Unmap(), c.spec.Dst.Port())
			l3 := 14
			if c.spec.VLAN != 0 {
				l3 = 18
			}
			iplen := IPv6HeaderLen
			if wantDst.Addr().Is4() {
				iplen = IPv4HeaderLen
			}
			want := UDPFrame{
				SrcMAC: c.spec.SrcMAC, DstMAC: c.spec.DstMAC,
				VLAN: c.spec.VLAN, HasVLAN: c.spec.VLAN != 0,
				Src: wantSrc, Dst: wantDst,
				TOS: c.spec.TOS, TTL: c.wantTTL,
				L3Off: l3, L4Off: l3 + iplen, PayloadOff: l3 + iplen + 8, PayloadLen: c.payload,
				UDPChecksum: binary.BigEndian.Uint16(frame[l3+iplen+6:]),
			}
			if f != want {
				t.Fatalf("parsed\n %+v\nwant\n %+v", f, want)
			}
			if !bytes.Equal(f.Payload(frame), payload) {
				t.Fatal("payload changed")
			}
			if c.spec.NoUDPChecksum && wantDst.Addr().Is4() {
				if f.UDPChecksum != 0 {
					t.Fatalf("NoUDPChecksum: checksum %#04x, want 0", f.UDPChecksum)
				}
			} else if f.UDPChecksum == 0 {
				t.Fatal("checksum 0 transmitted")
			}
			if !VerifyUDPChecksum(frame, &f) {
				t.Fatal("VerifyUDPChecksum = false")
			}
			if f.UDPChecksum != 0 && !refUDPChecksumOK(frame, &f) {
				t.Fatal("reference implementation rejects the UDP checksum")
			}
			if wantDst.Addr().Is4() {
				if refChecksumSum(frame[l3:l3+20], 0) != 0xFFFF {
					t.Fatal("reference implementation rejects the IPv4 header checksum")
				}
				if got := binary.BigEndian.Uint16(frame[l3+6:]); got != 0x4000 {
					t.Fatalf("flags/offset %#04x, want DF only", got)
				}
			} else if got := binary.BigEndian.Uint32(frame[l3:]) & 0xFFFFF; got != c.spec.FlowLabel {
				t.Fatalf("flow label %#x, want %#x", got, c.spec.FlowLabel)
			}
			// A flipped payload bit must fail the UDP checksum (when present).
			if c.payload > 0 && f.UDPChecksum != 0 {
				frame[f.PayloadOff] ^= 0x10
				if VerifyUDPChecksum(frame, &f) {
					t.Fatal("VerifyUDPChecksum accepts a corrupted payload")
				}
			}
		})
	}
}

// TestUDPChecksumZeroSentAsFFFF picks a payload whose checksum computes to
// zero and checks it goes out as 0xFFFF, for both families.
func TestUDPChecksumZeroSentAsFFFF(t *testing.T) {
	for _, s := range []FrameSpec{specV4(), specV6VLAN()} {
		payload := make([]byte, 2)
		frame := buildFrame(t, &s, payload)
		var f UDPFrame
		if err := ParseUDPFrame(frame, &f); err != nil {
			t.Fatal(err)
		}
		// Payload word = checksum with payload 0 makes the sum 0xFFFF.
		binary.BigEndian.PutUint16(payload, f.UDPChecksum)
		frame = buildFrame(t, &s, payload)
		if err := ParseUDPFrame(frame, &f); err != nil {
			t.Fatal(err)
		}
		if f.UDPChecksum != 0xFFFF {
			t.Fatalf("%v: checksum %#04x, want 0xffff", s.Dst, f.UDPChecksum)
		}
		if !VerifyUDPChecksum(frame, &f) || !refUDPChecksumOK(frame, &f) {
			t.Fatalf("%v: 0xffff checksum does not verify", s.Dst)
		}
	}
}

func TestWriteUDPFrameErrors(t *testing.T) {
	v4, v6 := specV4(), specV6VLAN()
	mixed := specV4()
	mixed.Dst = v6.Dst
	mixed2 := specV6VLAN()
	mixed2.Dst = v4.Dst
	zero := FrameSpec{}
	noSrc := specV4()
	noSrc.Src = netip.AddrPort{}
	big := make([]byte, 70000)
	for _, c := range []struct {
		name    string
		spec    FrameSpec
		buf     []byte
		payload int
		want    error
	}{
		{"short-buffer-v4", v4, make([]byte, 41), 0, ErrShortBuffer},
		{"short-buffer-payload", v4, make([]byte, 42+99), 100, ErrShortBuffer},
		{"short-buffer-v6-vlan", v6, make([]byte, 65), 0, ErrShortBuffer},
		{"v4-src-v6-dst", mixed, big, 0, ErrFamilyMismatch},
		{"v6-src-v4-dst", mixed2, big, 0, ErrFamilyMismatch},
		{"zero-spec", zero, big, 0, ErrFamilyMismatch},
		{"no-src", noSrc, big, 0, ErrFamilyMismatch},
		{"negative", v4, big, -1, ErrPayloadTooLarge},
		{"v4-too-big", v4, big, maxIPv4Payload + 1, ErrPayloadTooLarge},
		{"v6-too-big", v6, big, maxIPv6Payload + 1, ErrPayloadTooLarge},
	} {
		before := bytes.Clone(c.buf)
		n, err := WriteUDPFrame(c.buf, &c.spec, c.payload)
		if err != c.want || n != 0 {
			t.Errorf("%s: WriteUDPFrame = %d, %v; want 0, %v", c.name, n, err, c.want)
		}
		if !bytes.Equal(before, c.buf) {
			t.Errorf("%s: buffer modified on error", c.name)
		}
	}
}

func fixIPv4Checksum(frame []byte, l3 int) {
	ihl := int(frame[l3]&0xF) * 4
	frame[l3+10], frame[l3+11] = 0, 0
	binary.BigEndian.PutUint16(frame[l3+10:], refChecksum(frame[l3:l3+ihl]))
}

func TestParseUDPFrameMalformed(t *testing.T) {
	payload := []byte("hello, world")
	s4 := specV4()
	v4 := buildFrame(t, &s4, payload) // l3 14, l4 34
	s4v := specV4()
	s4v.VLAN = 5
	v4vlan := buildFrame(t, &s4v, payload) // l3 18
	s6 := specV6VLAN()
	s6.VLAN = 0
	v6 := buildFrame(t, &s6, payload) // l3 14, l4 54

	type mut func(b []byte) []byte
	v4fix := func(m mut) mut {
		return func(b []byte) []byte { b = m(b); fixIPv4Checksum(b, 14); return b }
	}
	for _, c := range []struct {
		name string
		base []byte
		m    mut
		want error
	}{
		{"empty", v4, func(b []byte) []byte { return b[:0] }, ErrTruncated},
		{"eth-13", v4, func(b []byte) []byte { return b[:13] }, ErrTruncated},
		{"vlan-cut", v4vlan, func(b []byte) []byte { return b[:17] }, ErrTruncated},
		{"arp", v4, func(b []byte) []byte { b[12], b[13] = 0x08, 0x06; return b }, ErrNotUDP},
		{"double-vlan", v4vlan, func(b []byte) []byte { b[16], b[17] = 0x81, 0x00; return b }, ErrNotUDP},
		{"ipv4-cut", v4, func(b []byte) []byte { return b[:14+19] }, ErrTruncated},
		{"ipv4-version", v4, v4fix(func(b []byte) []byte { b[14] = 0x55; return b }), ErrMalformed},
		{"ipv4-ihl-4", v4, func(b []byte) []byte { b[14] = 0x44; return b }, ErrMalformed},
		{"ipv4-ihl-past-end", v4, func(b []byte) []byte { b[14] = 0x4F; return b }, ErrTruncated},
		{"ipv4-total-lt-ihl", v4, v4fix(func(b []byte) []byte { b[16], b[17] = 0, 19; return b }), ErrMalformed},
		{"ipv4-total-past-end", v4, func(b []byte) []byte { return b[:len(b)-1] }, ErrTruncated},
		{"ipv4-tcp", v4, v4fix(func(b []byte) []byte { b[23] = 6; return b }), ErrNotUDP},
		{"ipv4-mf", v4, v4fix(func(b []byte) []byte { b[20] |= 0x20; return b }), ErrFragment},
		{"ipv4-offset", v4, v4fix(func(b []byte) []byte { b[21] = 1; return b }), ErrFragment},
		{"ipv4-bad-checksum", v4, func(b []byte) []byte { b[24] ^= 1; return b }, ErrBadChecksum},
		{"ipv4-bad-checksum-ttl", v4, func(b []byte) []byte { b[22]--; return b }, ErrBadChecksum},
		{"ipv4-no-room-for-udp", v4, v4fix(func(b []byte) []byte { b[16], b[17] = 0, 27; return b }), ErrMalformed},
		{"udp-len-7", v4, func(b []byte) []byte { b[38], b[39] = 0, 7; return b }, ErrMalformed},
		{"udp-len-past-ip", v4, func(b []byte) []byte { b[38], b[39] = 0, 21; return b }, ErrMalformed},
		{"ipv6-cut", v6, func(b []byte) []byte { return b[:14+39] }, ErrTruncated},
		{"ipv6-version", v6, func(b []byte) []byte { b[14] = 0x40; return b }, ErrMalformed},
		{"ipv6-jumbo", v6, func(b []byte) []byte { b[18], b[19] = 0, 0; return b }, ErrMalformed},
		{"ipv6-plen-past-end", v6, func(b []byte) []byte { return b[:len(b)-1] }, ErrTruncated},
		{"ipv6-hop-by-hop", v6, func(b []byte) []byte { b[20] = 0; return b }, ErrNotUDP},
		{"ipv6-no-room-for-udp", v6, func(b []byte) []byte { b[18], b[19] = 0, 7; return b }, ErrMalformed},
		{"ipv6-udp-len-0", v6, func(b []byte) []byte { b[58], b[59] = 0, 0; return b }, ErrMalformed},
	} {
		frame := c.m(bytes.Clone(c.base))
		var f UDPFrame
		if err := ParseUDPFrame(frame, &f); err != c.want {
			t.Errorf("%s: ParseUDPFrame = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestParseUDPFrameAccepts(t *testing.T) {
	payload := []byte("hello, world")
	s4 := specV4()
	v4 := buildFrame(t, &s4, payload)

	// Ethernet padding after the IP packet is ignored.
	padded := append(bytes.Clone(v4), make([]byte, 10)...)
	var f UDPFrame
	if err := ParseUDPFrame(padded, &f); err != nil || f.PayloadLen != len(payload) || !VerifyUDPChecksum(padded, &f) {
		t.Fatalf("padded: err %v, PayloadLen %d", err, f.PayloadLen)
	}

	// 802.1ad S-tag.
	s4.VLAN = 0x0064
	ad := buildFrame(t, &s4, payload)
	ad[12], ad[13] = 0x88, 0xA8
	if err := ParseUDPFrame(ad, &f); err != nil || !f.HasVLAN || f.VLAN != 0x64 || f.L3Off != 18 {
		t.Fatalf("802.1ad: err %v, %+v", err, f)
	}

	// VLAN tag with TCI 0 (priority tag) is reported as a tag.
	prio := bytes.Clone(ad)
	prio[12], prio[13], prio[14], prio[15] = 0x81, 0, 0, 0
	if err := ParseUDPFrame(prio, &f); err != nil || !f.HasVLAN || f.VLAN != 0 {
		t.Fatalf("priority tag: err %v, %+v", err, f)
	}

	// IPv4 with 4 bytes of options (4 NOPs).
	opt := make([]byte, 0, len(v4)+4)
	opt = append(opt, v4[:34]...)
	opt = append(opt, 1, 1, 1, 1)
	opt = append(opt, v4[34:]...)
	opt[14] = 0x46
	binary.BigEndian.PutUint16(opt[16:], uint16(binary.BigEndian.Uint16(opt[16:])+4))
	fixIPv4Checksum(opt, 14)
	if err := ParseUDPFrame(opt, &f); err != nil || f.L4Off != 38 || f.PayloadOff != 46 || !bytes.Equal(f.Payload(opt), payload) {
		t.Fatalf("options: err %v, %+v", err, f)
	}
	if !VerifyUDPChecksum(opt, &f) {
		t.Fatal("options: UDP checksum does not verify")
	}

	// UDP length shorter than the IP payload (trailing bytes inside IP).
	short := bytes.Clone(v4)
	binary.BigEndian.PutUint16(short[38:], 8+4)
	if err := ParseUDPFrame(short, &f); err != nil || f.PayloadLen != 4 {
		t.Fatalf("short udp: err %v, PayloadLen %d", err, f.PayloadLen)
	}

	// Zero UDP checksum: fine on IPv4, invalid on IPv6.
	zero := bytes.Clone(v4)
	zero[40], zero[41] = 0, 0
	if err := ParseUDPFrame(zero, &f); err != nil || !VerifyUDPChecksum(zero, &f) {
		t.Fatalf("ipv4 zero checksum: err %v, verify false", err)
	}
	s6 := specV6VLAN()
	v6 := buildFrame(t, &s6, payload)
	v6[18+46], v6[18+47] = 0, 0
	if err := ParseUDPFrame(v6, &f); err != nil || VerifyUDPChecksum(v6, &f) {
		t.Fatalf("ipv6 zero checksum: err %v, verify true", err)
	}
	// VerifyUDPChecksum on a UDPFrame that does not fit the frame.
	if VerifyUDPChecksum(v6[:40], &f) {
		t.Fatal("VerifyUDPChecksum accepted a frame shorter than the UDPFrame")
	}
}

func TestUDPFrameZeroAlloc(t *testing.T) {
	for _, s := range []FrameSpec{specV4(), specV6VLAN()} {
		buf := make([]byte, 2048)
		var f UDPFrame
		n := 0
		allocs := testing.AllocsPerRun(100, func() {
			n, _ = WriteUDPFrame(buf, &s, 1024)
		})
		if allocs != 0 {
			t.Errorf("%v: WriteUDPFrame allocates %.1f per run", s.Dst, allocs)
		}
		allocs = testing.AllocsPerRun(100, func() {
			if ParseUDPFrame(buf[:n], &f) != nil || !VerifyUDPChecksum(buf[:n], &f) {
				panic("round trip failed")
			}
		})
		if allocs != 0 {
			t.Errorf("%v: ParseUDPFrame+VerifyUDPChecksum allocate %.1f per run", s.Dst, allocs)
		}
		bad := buf[:20]
		allocs = testing.AllocsPerRun(100, func() { _ = ParseUDPFrame(bad, &f) })
		if allocs != 0 {
			t.Errorf("%v: ParseUDPFrame error path allocates %.1f per run", s.Dst, allocs)
		}
	}
}

func TestUDPFrameErrorsAreSentinels(t *testing.T) {
	// errors.Is must work for wrapped forms callers may build.
	for _, e := range []error{ErrTruncated, ErrNotUDP, ErrFragment, ErrBadChecksum, ErrMalformed, ErrShortBuffer, ErrFamilyMismatch, ErrPayloadTooLarge} {
		if !errors.Is(fmt.Errorf("x: %w", e), e) {
			t.Fatalf("%v is not matchable", e)
		}
	}
}

func BenchmarkWriteUDPFrame(b *testing.B) {
	for _, s := range []FrameSpec{specV4(), specV6VLAN()} {
		for _, n := range []int{64, 1024} {
			b.Run(fmt.Sprintf("%s/%d", family(&s), n), func(b *testing.B) {
				buf := make([]byte, s.HeaderLen()+n)
				b.SetBytes(int64(n))
				for b.Loop() {
					if _, err := WriteUDPFrame(buf, &s, n); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkParseUDPFrame(b *testing.B) {
	for _, s := range []FrameSpec{specV4(), specV6VLAN()} {
		for _, n := range []int{64, 1024} {
			frame := buildFrame(b, &s, make([]byte, n))
			b.Run(fmt.Sprintf("%s/%d", family(&s), n), func(b *testing.B) {
				var f UDPFrame
				b.SetBytes(int64(n))
				for b.Loop() {
					if err := ParseUDPFrame(frame, &f); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("%s/%d/verify", family(&s), n), func(b *testing.B) {
				var f UDPFrame
				b.SetBytes(int64(n))
				for b.Loop() {
					if ParseUDPFrame(frame, &f) != nil || !VerifyUDPChecksum(frame, &f) {
						b.Fatal("parse or verify failed")
					}
				}
			})
		}
	}
}

func family(s *FrameSpec) string {
	if s.is4() {
		return "ipv4"
	}
	if s.VLAN != 0 {
		return "ipv6-vlan"
	}
	return "ipv6"
}
