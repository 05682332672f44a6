package wire

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// normalizeForReencode returns b as Encode would write it after Decode:
// reserved BTH bits, CNP reserved bytes, pad bytes and the ICRC zeroed.
func normalizeForReencode(b []byte, p *Packet) []byte {
	c := bytes.Clone(b)
	c[4] &= 0xC0 // FECN, BECN kept; reserved bits zero
	c[8] &= 0x80 // AckReq kept
	if p.OpCode == OpCNP {
		clear(c[BTHLen : BTHLen+CNPReservedLen])
	}
	clear(c[p.HeaderLen()+len(p.Payload):]) // pad and ICRC
	return c
}

func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, c := range goldenCases {
		seeds = append(seeds, unhex(t, c.hex))
	}
	frame := unhex(t, connectX4CNP)
	seeds = append(seeds, frame[14+20+8:], nil, []byte{0x11, 0x0f}, bytes.Repeat([]byte{0xff}, 40))
	return seeds
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// re-encodes to the same bytes (up to reserved bits, pad and ICRC).
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	buf := make([]byte, 1<<17)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if err := Decode(b, &p); err != nil {
			return
		}
		if len(b)%4 != 0 || p.WireLen() != len(b) {
			t.Fatalf("accepted %d bytes but WireLen is %d", len(b), p.WireLen())
		}
		n, err := Encode(buf, &p)
		if err != nil {
			t.Fatalf("Encode of a decoded packet: %v (%+v)", err, p)
		}
		want := normalizeForReencode(b, &p)
		if !bytes.Equal(buf[:n], want) {
			t.Fatalf("re-encoded\n% x\nwant\n% x", buf[:n], want)
		}
	})
}

// FuzzICRC checks that the ICRC functions never panic on arbitrary IP
// packets and agree with the plain reference implementation whenever they
// accept one.
func FuzzICRC(f *testing.F) {
	for _, s := range icrcSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ip []byte) {
		crc, err := ICRC(ip)
		ok := CheckICRC(ip)
		if err != nil {
			if ok {
				t.Fatal("CheckICRC accepted a packet ICRC rejects")
			}
			return
		}
		if want := refICRC(ip); crc != want {
			t.Fatalf("ICRC %#08x, reference %#08x", crc, want)
		}
		c := bytes.Clone(ip)
		if err := PutICRC(c); err != nil || !CheckICRC(c) {
			t.Fatalf("PutICRC then CheckICRC: %v", err)
		}
	})
}

// icrcSeeds are the seeds of FuzzICRC: the two known-answer packets, an
// IPv6 packet built by the tests' generator, and odd shapes.
func icrcSeeds(t testing.TB) [][]byte {
	frame := unhex(t, connectX4CNP)
	v6 := randomIPPacket(rand.New(rand.NewPCG(1, 1)), true, 32)
	return [][]byte{frame[14:], unhex(t, scapyUCSendOnly), v6, {0x60}, make([]byte, 60)}
}

// TestWriteFuzzCorpus regenerates the committed seed corpus under
// testdata/fuzz when WIRE_WRITE_CORPUS=1; otherwise it checks that the
// corpus exists.
func TestWriteFuzzCorpus(t *testing.T) {
	corpora := map[string][][]byte{"FuzzDecode": fuzzSeeds(t), "FuzzICRC": icrcSeeds(t)}
	for name, seeds := range corpora {
		dir := filepath.Join("testdata", "fuzz", name)
		if os.Getenv("WIRE_WRITE_CORPUS") != "1" {
			entries, err := os.ReadDir(dir)
			if err != nil || len(entries) < len(seeds) {
				t.Fatalf("seed corpus %s missing or short (%v); regenerate with WIRE_WRITE_CORPUS=1", dir, err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s)))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
