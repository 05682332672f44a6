package dataplane

import (
	"bytes"
	"testing"
)

// FuzzParseUDPFrame checks that ParseUDPFrame never panics, returns only its
// sentinels, reports offsets inside the frame, and that whatever it accepts
// survives a rebuild: writing a frame from the parsed fields and payload and
// parsing that again gives the same fields. The seed corpus is in
// testdata/fuzz/FuzzParseUDPFrame (valid IPv4/IPv6/VLAN/802.1ad/options/
// padded frames and malformed ones); run with
// `go test -run '^$' -fuzz FuzzParseUDPFrame ./dataplane/`.
func FuzzParseUDPFrame(f *testing.F) {
	f.Add(mustHex(knownV4))
	f.Add(mustHex(knownV6))
	f.Fuzz(func(t *testing.T, data []byte) {
		var u UDPFrame
		err := ParseUDPFrame(data, &u)
		if err != nil {
			switch err {
			case ErrTruncated, ErrNotUDP, ErrFragment, ErrBadChecksum, ErrMalformed:
				return
			}
			t.Fatalf("ParseUDPFrame returned a non-sentinel error %v", err)
		}
		if u.L3Off < EthHeaderLen || u.L4Off <= u.L3Off || u.PayloadOff != u.L4Off+UDPHeaderLen ||
			u.PayloadLen < 0 || u.PayloadOff+u.PayloadLen > len(data) {
			t.Fatalf("offsets outside the frame (len %d): %+v", len(data), u)
		}
		if u.Src.Addr().Is4() != u.Dst.Addr().Is4() || u.Src.Addr().Is4In6() || u.Dst.Addr().Is4In6() {
			t.Fatalf("inconsistent address families: %v -> %v", u.Src, u.Dst)
		}
		verified := VerifyUDPChecksum(data, &u)
		if u.IsIPv4() && u.UDPChecksum == 0 && !verified {
			t.Fatal("zero IPv4 UDP checksum not accepted")
		}

		payload := u.Payload(data)
		s := FrameSpec{
			SrcMAC: u.SrcMAC, DstMAC: u.DstMAC, VLAN: u.VLAN,
			Src: u.Src, Dst: u.Dst, TOS: u.TOS, TTL: u.TTL,
			NoUDPChecksum: u.IsIPv4() && u.UDPChecksum == 0,
		}
		buf := make([]byte, s.HeaderLen()+len(payload))
		copy(buf[s.HeaderLen():], payload)
		n, err := WriteUDPFrame(buf, &s, len(payload))
		if err != nil || n != len(buf) {
			t.Fatalf("rebuild from %+v: n %d, %v", u, n, err)
		}
		var u2 UDPFrame
		if err := ParseUDPFrame(buf, &u2); err != nil {
			t.Fatalf("parse rebuilt frame: %v", err)
		}
		want := u
		want.HasVLAN = u.VLAN != 0 // a TCI-0 (priority) tag is rebuilt untagged
		if want.TTL == 0 {
			want.TTL = DefaultTTL
		}
		want.L3Off = EthHeaderLen
		if want.HasVLAN {
			want.L3Off += VLANTagLen
		}
		want.L4Off = s.HeaderLen() - UDPHeaderLen
		want.PayloadOff = s.HeaderLen()
		want.UDPChecksum = u2.UDPChecksum
		if u2 != want {
			t.Fatalf("rebuilt frame parses differently:\n got %+v\nwant %+v", u2, want)
		}
		if !bytes.Equal(u2.Payload(buf), payload) {
			t.Fatal("rebuilt payload differs")
		}
		if s.NoUDPChecksum != (u2.UDPChecksum == 0) {
			t.Fatalf("rebuilt UDP checksum %#04x with NoUDPChecksum %v", u2.UDPChecksum, s.NoUDPChecksum)
		}
		if !VerifyUDPChecksum(buf, &u2) {
			t.Fatal("rebuilt frame fails its UDP checksum")
		}
	})
}
