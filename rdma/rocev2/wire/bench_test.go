package wire

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"

	"github.com/opennetworks/onetdp/dataplane"
)

var benchSizes = []int{64, 4096}

func BenchmarkEncode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			p := Packet{BTH: BTH{OpCode: OpRDMAWriteOnly, PKey: DefaultPKey, DestQP: 0x11, PSN: 1},
				RETH: RETH{VA: 0x1000, RKey: 7, DMALen: uint32(size)}, Payload: make([]byte, size)}
			buf := make([]byte, p.WireLen())
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(buf, &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			p := Packet{BTH: BTH{OpCode: OpRDMAWriteOnly, PKey: DefaultPKey, DestQP: 0x11, PSN: 1},
				RETH: RETH{VA: 0x1000, RKey: 7, DMALen: uint32(size)}, Payload: make([]byte, size)}
			buf := make([]byte, p.WireLen())
			n, _ := Encode(buf, &p)
			var d Packet
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := Decode(buf[:n], &d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchFrame returns an IPv4 frame built by dataplane.WriteUDPFrame
// carrying an RDMA WRITE ONLY with size bytes of payload, and the offset of
// its IP header.
func benchFrame(b *testing.B, size int) ([]byte, int, *dataplane.FrameSpec) {
	spec := &dataplane.FrameSpec{Src: netip.MustParseAddrPort("198.18.0.1:49152"), Dst: netip.MustParseAddrPort("198.18.0.2:4791")}
	p := Packet{BTH: BTH{OpCode: OpRDMAWriteOnly, PKey: DefaultPKey, DestQP: 0x11, PSN: 1},
		RETH: RETH{VA: 0x1000, RKey: 7, DMALen: uint32(size)}, Payload: make([]byte, size)}
	r := rand.New(rand.NewPCG(1, 2))
	fillRandom(r, p.Payload)
	hl := spec.HeaderLen()
	buf := make([]byte, hl+p.WireLen())
	n, _ := Encode(buf[hl:], &p)
	if err := PutICRCFromParts(spec.Src, spec.Dst, 0, buf[hl:hl+n]); err != nil {
		b.Fatal(err)
	}
	fn, err := dataplane.WriteUDPFrame(buf, spec, n)
	if err != nil {
		b.Fatal(err)
	}
	return buf[:fn], dataplane.EthHeaderLen, spec
}

func BenchmarkICRC(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			frame, l3, _ := benchFrame(b, size)
			b.SetBytes(int64(len(frame) - l3))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ICRC(frame[l3:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCheckICRC(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			frame, l3, _ := benchFrame(b, size)
			b.SetBytes(int64(len(frame) - l3))
			b.ReportAllocs()
			for b.Loop() {
				if !CheckICRC(frame[l3:]) {
					b.Fatal("bad ICRC")
				}
			}
		})
	}
}

func BenchmarkICRCFromParts(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			frame, _, spec := benchFrame(b, size)
			udp := frame[spec.HeaderLen():]
			b.SetBytes(int64(len(udp)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ICRCFromParts(spec.Src, spec.Dst, 0, udp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
