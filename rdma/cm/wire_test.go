package cm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"testing"
)

func sampleEndpoint() Endpoint {
	return Endpoint{
		GID:        GIDFromAddr(netip.MustParseAddr("fd00:198:18::1:2")),
		QPN:        0xabcdef,
		PSN:        0x3e8a6b,
		MTU:        4096,
		Addr:       0x00007f2a1c000000,
		RKey:       0x0001_3c42,
		Len:        8 << 20,
		UDPSrcPort: 0xc0de,
	}
}

// reCRC recomputes the CRC of a message whose bytes a test changed on purpose.
func reCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[56:], crc32.ChecksumIEEE(b[:56]))
	return b
}

func TestAppendEndpointLayout(t *testing.T) {
	e := sampleEndpoint()
	b := AppendEndpoint([]byte{0xee}, e)[1:] // appends after existing bytes
	if len(b) != MessageSize {
		t.Fatalf("len %d, want %d", len(b), MessageSize)
	}
	want := []struct {
		name string
		off  int
		got  []byte
	}{
		{"magic", 0, []byte("ONETCM")},
		{"version", 6, []byte{1}},
		{"reserved", 7, []byte{0}},
		{"gid", 8, []byte{0xfd, 0x00, 0x01, 0x98, 0x00, 0x18, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0x02}},
		{"qpn", 24, []byte{0x00, 0xab, 0xcd, 0xef}},
		{"psn", 28, []byte{0x00, 0x3e, 0x8a, 0x6b}},
		{"mtu", 32, []byte{0x10, 0x00}},
		{"udp src port", 34, []byte{0xc0, 0xde}},
		{"rkey", 36, []byte{0x00, 0x01, 0x3c, 0x42}},
		{"addr", 40, []byte{0, 0, 0x7f, 0x2a, 0x1c, 0, 0, 0}},
		{"len", 48, []byte{0, 0, 0, 0, 0, 0x80, 0, 0}},
	}
	for _, f := range want {
		if got := b[f.off : f.off+len(f.got)]; !bytes.Equal(got, f.got) {
			t.Errorf("%s at %d: % x, want % x", f.name, f.off, got, f.got)
		}
	}
	if got, want := binary.BigEndian.Uint32(b[56:]), crc32.ChecksumIEEE(b[:56]); got != want {
		t.Errorf("crc %#08x, want %#08x", got, want)
	}
}

func TestDecodeEndpointRoundTrip(t *testing.T) {
	for _, e := range []Endpoint{
		sampleEndpoint(),
		{GID: GIDFromAddr(netip.MustParseAddr("198.18.0.1")), QPN: 2, PSN: 0, MTU: 256},
		{GID: [16]byte{15: 1}, QPN: MaxQPN, PSN: MaxPSN, MTU: 1024, Addr: ^uint64(0), UDPSrcPort: 0xffff},
	} {
		got, err := DecodeEndpoint(AppendEndpoint(nil, e))
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", e, err)
		}
		if got != e {
			t.Errorf("decode(encode(x)) = %+v, want %+v", got, e)
		}
	}
}

func TestDecodeEndpointErrors(t *testing.T) {
	good := AppendEndpoint(nil, sampleEndpoint())
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"truncated header", good[:4], ErrCorrupt},
		{"truncated body", good[:MessageSize-1], ErrCorrupt},
		{"trailing byte", append(bytes.Clone(good), 0), ErrCorrupt},
		{"bad magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), ErrBadMagic},
		{"bad magic in short prefix", []byte("ONX"), ErrBadMagic},
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ErrBadMagic},
		{"version 2", mod(func(b []byte) []byte { b[6] = 2; return reCRC(b) }), ErrVersion},
		{"version 0 short", []byte("ONETCM\x00"), ErrVersion},
		{"reserved set", mod(func(b []byte) []byte { b[7] = 1; return reCRC(b) }), ErrCorrupt},
		{"crc mismatch", mod(func(b []byte) []byte { b[20] ^= 0x40; return b }), ErrCorrupt},
		{"crc field damaged", mod(func(b []byte) []byte { b[59] ^= 1; return b }), ErrCorrupt},
		{"qpn 25 bits", mod(func(b []byte) []byte { b[24] = 1; return reCRC(b) }), ErrInvalidEndpoint},
		{"qpn 1", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[24:], 1); return reCRC(b) }), ErrInvalidEndpoint},
		{"psn 25 bits", mod(func(b []byte) []byte { b[28] = 0x80; return reCRC(b) }), ErrInvalidEndpoint},
		{"mtu 1500", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[32:], 1500); return reCRC(b) }), ErrInvalidEndpoint},
		{"udp port 4791", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[34:], 4791); return reCRC(b) }), ErrInvalidEndpoint},
		{"zero gid", mod(func(b []byte) []byte { clear(b[8:24]); return reCRC(b) }), ErrInvalidEndpoint},
	}
	sentinels := []error{ErrBadMagic, ErrVersion, ErrCorrupt, ErrInvalidEndpoint}
	for _, c := range cases {
		_, err := DecodeEndpoint(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
			continue
		}
		for _, s := range sentinels {
			if s != c.want && errors.Is(err, s) {
				t.Errorf("%s: err %v also matches %v", c.name, err, s)
			}
		}
	}
}

// FuzzDecodeEndpoint: DecodeEndpoint never panics, every failure names one
// sentinel, and whatever it accepts is valid and re-encodes to the same bytes.
func FuzzDecodeEndpoint(f *testing.F) {
	good := AppendEndpoint(nil, sampleEndpoint())
	f.Add(good)
	f.Add(good[:HeaderSize])
	f.Add(AppendEndpoint(nil, Endpoint{GID: GIDFromAddr(netip.MustParseAddr("198.18.0.1")), QPN: 0x11, PSN: 1, MTU: 1024}))
	f.Add([]byte("ONETCM\x02\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEndpoint(b)
		if err != nil {
			n := 0
			for _, s := range []error{ErrBadMagic, ErrVersion, ErrCorrupt, ErrInvalidEndpoint} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v matches %d sentinels, want 1", err, n)
			}
			return
		}
		if verr := e.Validate(); verr != nil {
			t.Fatalf("accepted an invalid endpoint %+v: %v", e, verr)
		}
		if re := AppendEndpoint(nil, e); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in % x\nout % x", b, re)
		}
	})
}
