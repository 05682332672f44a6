package dataplane

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// refChecksumSum is the straightforward RFC 1071 reference: 16-bit words one
// at a time into a 32-bit accumulator, odd trailing byte padded with zero,
// carries folded at the end. Returns the folded sum (not complemented).
func refChecksumSum(b []byte, sum uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum>>16 + sum&0xFFFF
	}
	return sum
}

func refChecksum(b []byte) uint16 { return ^uint16(refChecksumSum(b, 0)) }

func TestChecksumKnownAnswers(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want uint16
	}{
		// RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
		{"rfc1071", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, ^uint16(0xddf2)},
		// A real IPv4 header (192.168.0.1 -> 192.168.0.199, UDP, TTL 64,
		// DF) with its checksum field zeroed; the header carried b861.
		{"ipv4-header", []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
			0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}, 0xb861},
		{"empty", nil, 0xFFFF},
		{"one-byte", []byte{0xAB}, ^uint16(0xAB00)},
		{"all-ones", []byte{0xFF, 0xFF, 0xFF, 0xFF}, 0x0000},
		{"carry-chain", []byte{0xFF, 0xFF, 0x00, 0x01}, ^uint16(0x0001)},
	}
	for _, c := range cases {
		if got := Checksum(c.in); got != c.want {
			t.Errorf("%s: Checksum = %#04x, want %#04x", c.name, got, c.want)
		}
		if got := refChecksum(c.in); got != c.want {
			t.Errorf("%s: reference = %#04x, want %#04x (reference broken)", c.name, got, c.want)
		}
	}
}

// TestChecksumMatchesReference compares the 8-byte loop with the reference
// on every length up to 300 (all tail paths), random contents including
// all-0xFF runs that maximise carries, and chained partial sums.
func TestChecksumMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 400)
	for n := 0; n <= 300; n++ {
		for trial := 0; trial < 8; trial++ {
			b := buf[trial : trial+n] // unaligned starts too
			for i := range b {
				switch trial {
				case 0:
					b[i] = 0xFF
				case 1:
					b[i] = 0
				default:
					b[i] = byte(rng.Uint32())
				}
			}
			if got, want := Checksum(b), refChecksum(b); got != want {
				t.Fatalf("len %d trial %d: Checksum = %#04x, reference %#04x", n, trial, got, want)
			}
			init := uint32(rng.IntN(0x10000))
			if got, want := ChecksumPartial(b, init), refChecksumSum(b, init); got != want {
				t.Fatalf("len %d trial %d: ChecksumPartial(init %#x) = %#04x, reference %#04x", n, trial, init, got, want)
			}
			// Chaining at an even split equals one pass.
			split := (n / 2) &^ 1
			if got, want := ChecksumPartial(b[split:], ChecksumPartial(b[:split], 0)), refChecksumSum(b, 0); got != want {
				t.Fatalf("len %d split %d: chained = %#04x, reference %#04x", n, split, got, want)
			}
		}
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	src := []byte{198, 18, 1, 1}
	dst := []byte{198, 18, 1, 2}
	ref := refChecksumSum([]byte{198, 18, 1, 1, 198, 18, 1, 2, 0, 17, 0x12, 0x34}, 0)
	if got := pseudoHeaderSum(src, dst, 17, 0x1234); got != ref {
		t.Fatalf("pseudoHeaderSum = %#04x, want %#04x", got, ref)
	}
}

var sinkSum uint16

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{20, 64, 1024, 1500, 9000} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 7)
		}
		b.Run(fmt.Sprintf("fast/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				sinkSum = Checksum(data)
			}
		})
		b.Run(fmt.Sprintf("reference/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				sinkSum = refChecksum(data)
			}
		})
	}
}
