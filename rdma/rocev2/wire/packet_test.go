package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
)

// allOpcodes lists every opcode this package knows, in numeric order.
func allOpcodes() []OpCode {
	var ops []OpCode
	for op := range 256 {
		if OpCode(op).Valid() {
			ops = append(ops, OpCode(op))
		}
	}
	return ops
}

// randomPacket returns a packet with opcode op and random values in every
// field op carries (others zero), and a random payload where op has one.
func randomPacket(r *rand.Rand, op OpCode) Packet {
	p := Packet{BTH: BTH{
		OpCode: op, SE: r.IntN(2) == 0, MigReq: r.IntN(2) == 0, PKey: uint16(r.Uint32()),
		FECN: r.IntN(2) == 0, BECN: r.IntN(2) == 0, DestQP: r.Uint32() & Mask24,
		AckReq: r.IntN(2) == 0, PSN: r.Uint32() & Mask24,
	}}
	if op.HasRETH() {
		p.RETH = RETH{VA: r.Uint64(), RKey: r.Uint32(), DMALen: r.Uint32()}
	}
	if op.HasAETH() {
		p.AETH = AETH{Syndrome: Syndrome(r.Uint32()), MSN: r.Uint32() & Mask24}
	}
	if op.HasImm() {
		p.Imm = r.Uint32()
	}
	if op.HasAtomicETH() {
		p.AtomicETH = AtomicETH{VA: r.Uint64(), RKey: r.Uint32(), SwapAdd: r.Uint64(), Compare: r.Uint64()}
	}
	if op.HasAtomicAckETH() {
		p.AtomicAck = r.Uint64()
	}
	if op.HasPayload() {
		p.Payload = make([]byte, r.IntN(300))
		fillRandom(r, p.Payload)
	}
	return p
}

func TestRoundTripEveryOpcode(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	buf := make([]byte, 512)
	for _, op := range allOpcodes() {
		for range 300 {
			p := randomPacket(r, op)
			n, err := Encode(buf, &p)
			if err != nil {
				t.Fatalf("%v: Encode: %v", op, err)
			}
			if n != p.WireLen() || n%4 != 0 {
				t.Fatalf("%v: Encode returned %d, WireLen %d (must be equal and a multiple of 4)", op, n, p.WireLen())
			}
			var d Packet
			if err := Decode(buf[:n], &d); err != nil {
				t.Fatalf("%v: Decode(Encode(p)): %v", op, err)
			}
			if !bytes.Equal(d.Payload, p.Payload) {
				t.Fatalf("%v: payload differs", op)
			}
			if len(d.Payload) > 0 && &d.Payload[0] != &buf[p.HeaderLen()] {
				t.Fatalf("%v: Decode copied the payload instead of aliasing it", op)
			}
			d.Payload, p.Payload = nil, nil
			if !reflect.DeepEqual(d, p) {
				t.Fatalf("%v: decode(encode(p))\n%+v\n!= p\n%+v", op, d, p)
			}
		}
	}
}

func TestDecodeIgnoresReservedBitsAndPad(t *testing.T) {
	p := Packet{BTH: BTH{OpCode: OpSendOnly, PKey: 0xffff, DestQP: 9, PSN: 9}, Payload: []byte{1}}
	buf := make([]byte, 64)
	n, _ := Encode(buf, &p)
	b := buf[:n]
	b[4] |= 0x3f           // reserved bits of byte 4
	b[8] |= 0x7f           // reserved bits of byte 8
	b[13], b[14] = 0xaa, 1 // pad bytes
	var d Packet
	if err := Decode(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.FECN || d.BECN || d.AckReq || d.DestQP != 9 || d.PSN != 9 || !bytes.Equal(d.Payload, []byte{1}) {
		t.Fatalf("decoded %+v", d)
	}
}

func TestDecodeMalformed(t *testing.T) {
	enc := func(p Packet) []byte {
		b := make([]byte, 512)
		n, err := Encode(b, &p)
		if err != nil {
			t.Fatal(err)
		}
		return b[:n]
	}
	edit := func(b []byte, f func([]byte)) []byte { c := bytes.Clone(b); f(c); return c }
	sendOnly := enc(Packet{BTH: BTH{OpCode: OpSendOnly}, Payload: []byte{1, 2, 3, 4, 5, 6, 7, 8}})
	writeFirst := enc(Packet{BTH: BTH{OpCode: OpRDMAWriteFirst}, Payload: []byte{1, 2, 3, 4}})
	readReq := enc(Packet{BTH: BTH{OpCode: OpRDMAReadRequest}})
	ack := enc(Packet{BTH: BTH{OpCode: OpAcknowledge}})
	atomicAck := enc(Packet{BTH: BTH{OpCode: OpAtomicAcknowledge}})
	cas := enc(Packet{BTH: BTH{OpCode: OpCompareSwap}})
	immOnly := enc(Packet{BTH: BTH{OpCode: OpSendOnlyWithImmediate}})
	cnp := enc(Packet{BTH: BTH{OpCode: OpCNP}})
	// Zero-length packets that leave no room for payload+ICRC confusion.
	sendEmpty := enc(Packet{BTH: BTH{OpCode: OpSendOnly}})

	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"BTH only, no ICRC", sendOnly[:12], ErrTruncated},
		{"truncated BTH", sendOnly[:11], ErrTruncated},
		{"15 bytes", sendEmpty[:15], ErrTruncated},
		{"truncated RETH (write)", writeFirst[:12+15+4], ErrTruncated},
		{"RETH without ICRC (read request)", readReq[:12+16], ErrTruncated},
		{"truncated AETH", ack[:12+3+4], ErrTruncated},
		{"AETH without ICRC", ack[:12+4], ErrTruncated},
		{"truncated AtomicAckETH", atomicAck[:12+4+7+4], ErrTruncated},
		{"truncated AtomicETH", cas[:12+27+4], ErrTruncated},
		{"truncated ImmDt", immOnly[:12+3+4], ErrTruncated},
		{"truncated CNP reserved bytes", cnp[:12+15+4], ErrTruncated},
		{"TVer 1", edit(sendOnly, func(b []byte) { b[1] |= 1 }), ErrBadVersion},
		{"TVer 15", edit(ack, func(b []byte) { b[1] |= 0x0f }), ErrBadVersion},
		{"opcode 0x15", edit(ack, func(b []byte) { b[0] = 0x15 }), ErrUnknownOpcode},
		{"UC SEND_ONLY 0x24", edit(sendOnly, func(b []byte) { b[0] = 0x24 }), ErrUnknownOpcode},
		{"UD SEND_ONLY 0x64", edit(sendOnly, func(b []byte) { b[0] = 0x64 }), ErrUnknownOpcode},
		{"opcode 0xff", edit(sendOnly, func(b []byte) { b[0] = 0xff }), ErrUnknownOpcode},
		{"pad count 1 without payload", edit(sendEmpty, func(b []byte) { b[1] |= 1 << 4 }), ErrBadPad},
		{"pad count 3 without payload", edit(sendEmpty, func(b []byte) { b[1] |= 3 << 4 }), ErrBadPad},
		{"payload on ACK", append(bytes.Clone(ack), 0, 0, 0, 0), ErrUnexpectedPayload},
		{"payload on READ request", append(bytes.Clone(readReq), 0, 0, 0, 0), ErrUnexpectedPayload},
		{"payload on atomic", append(bytes.Clone(cas), 0, 0, 0, 0), ErrUnexpectedPayload},
		{"payload on CNP", append(bytes.Clone(cnp), 0, 0, 0, 0), ErrUnexpectedPayload},
		{"unaligned payload", sendOnly[:len(sendOnly)-1], ErrUnaligned},
		{"unaligned ACK", append(bytes.Clone(ack), 0), ErrUnaligned},
	}
	for _, c := range cases {
		p := Packet{Payload: []byte{1}, Imm: 5}
		err := Decode(c.b, &p)
		if err != c.want {
			t.Errorf("%s: Decode error %v, want %v", c.name, err, c.want)
		}
		if !reflect.DeepEqual(p, Packet{}) {
			t.Errorf("%s: p not zeroed on error: %+v", c.name, p)
		}
	}
	// The pad may take the whole payload region: payload of 1 byte + 3 pad
	// is fine, and pad 3 with 4 bytes left gives a 1-byte payload.
	b := edit(sendOnly[:12+4+4], func(b []byte) { b[1] = b[1]&^0x30 | 3<<4 })
	var p Packet
	if err := Decode(b, &p); err != nil || len(p.Payload) != 1 {
		t.Errorf("pad 3 of 4: %v, payload %d bytes", err, len(p.Payload))
	}
}

func TestEncodeErrors(t *testing.T) {
	buf := make([]byte, 64)
	cases := []struct {
		name string
		p    Packet
		dst  []byte
		want error
	}{
		{"unknown opcode", Packet{BTH: BTH{OpCode: 0x15}}, buf, ErrUnknownOpcode},
		{"UC opcode", Packet{BTH: BTH{OpCode: 0x24}}, buf, ErrUnknownOpcode},
		{"TVer 1", Packet{BTH: BTH{OpCode: OpSendOnly, TVer: 1}}, buf, ErrBadVersion},
		{"DestQP over 24 bits", Packet{BTH: BTH{OpCode: OpSendOnly, DestQP: 1 << 24}}, buf, ErrFieldRange},
		{"PSN over 24 bits", Packet{BTH: BTH{OpCode: OpSendOnly, PSN: 1 << 24}}, buf, ErrFieldRange},
		{"MSN over 24 bits", Packet{BTH: BTH{OpCode: OpAcknowledge}, AETH: AETH{MSN: 1 << 24}}, buf, ErrFieldRange},
		{"payload on ACK", Packet{BTH: BTH{OpCode: OpAcknowledge}, Payload: []byte{1}}, buf, ErrUnexpectedPayload},
		{"payload on READ request", Packet{BTH: BTH{OpCode: OpRDMAReadRequest}, Payload: []byte{1}}, buf, ErrUnexpectedPayload},
		{"payload on CNP", Packet{BTH: BTH{OpCode: OpCNP}, Payload: []byte{1}}, buf, ErrUnexpectedPayload},
		{"short dst", Packet{BTH: BTH{OpCode: OpSendOnly}, Payload: []byte{1}}, buf[:19], ErrShortBuffer},
		{"short dst for RETH", Packet{BTH: BTH{OpCode: OpRDMAReadRequest}}, buf[:31], ErrShortBuffer},
		{"nil dst", Packet{BTH: BTH{OpCode: OpAcknowledge}}, nil, ErrShortBuffer},
	}
	for _, c := range cases {
		clear(buf)
		before := c.p
		n, err := Encode(c.dst, &c.p)
		if err != c.want || n != 0 {
			t.Errorf("%s: Encode = %d, %v; want 0, %v", c.name, n, err, c.want)
		}
		if !bytes.Equal(buf, make([]byte, len(buf))) || !reflect.DeepEqual(before, c.p) {
			t.Errorf("%s: Encode changed dst or p on error", c.name)
		}
	}
	// MSN is ignored (not range-checked) on opcodes without an AETH.
	p := Packet{BTH: BTH{OpCode: OpSendOnly}, AETH: AETH{MSN: 1 << 24}}
	if _, err := Encode(buf, &p); err != nil {
		t.Errorf("MSN checked on SEND_ONLY: %v", err)
	}
	if n, err := EncodeCNP(buf[:CNPLen-1], 1); err != ErrShortBuffer || n != 0 {
		t.Errorf("EncodeCNP into a short buffer = %d, %v", n, err)
	}
	if _, err := EncodeCNP(buf, 1<<24); err != ErrFieldRange {
		t.Errorf("EncodeCNP QP over 24 bits: %v", err)
	}
	var zero Packet
	zero.OpCode = 0x15
	if zero.WireLen() != 0 || zero.HeaderLen() != 0 {
		t.Error("WireLen/HeaderLen of an unknown opcode are not 0")
	}
}

func TestEncodeDecodeNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	buf := make([]byte, 8192)
	for _, op := range []OpCode{OpRDMAWriteOnlyWithImmediate, OpAcknowledge, OpCompareSwap, OpRDMAReadResponseMiddle} {
		p := randomPacket(r, op)
		var n int
		if a := testing.AllocsPerRun(100, func() { n, _ = Encode(buf, &p) }); a != 0 {
			t.Errorf("Encode %v allocates %.1f times", op, a)
		}
		var d Packet
		if a := testing.AllocsPerRun(100, func() { _ = Decode(buf[:n], &d) }); a != 0 {
			t.Errorf("Decode %v allocates %.1f times", op, a)
		}
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = EncodeCNP(buf, 7) }); a != 0 {
		t.Errorf("EncodeCNP allocates %.1f times", a)
	}
	var d Packet
	if a := testing.AllocsPerRun(100, func() { _ = Decode(buf[:3], &d); _, _ = Encode(buf[:1], &d) }); a != 0 {
		t.Errorf("error paths allocate %.1f times", a)
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{ErrShortBuffer, ErrTruncated, ErrBadVersion, ErrUnknownOpcode, ErrUnexpectedPayload,
		ErrBadPad, ErrUnaligned, ErrFieldRange, ErrNotRoCE}
	for i, a := range all {
		for j, b := range all {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, errors.Is(a, b))
			}
		}
	}
}
