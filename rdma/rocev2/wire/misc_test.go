package wire

import (
	"testing"
	"time"
)

func TestOpcodeTable(t *testing.T) {
	// name, value, header bytes after the BTH, and the flags in the order
	// RETH AETH Imm AtomicETH AtomicAck Payload / First Middle Last Only / Request Response.
	type row struct {
		op     OpCode
		name   string
		ext    int
		hdrs   string // R A I T K P
		pos    string // F M L O
		reqRes string // Q S
	}
	rows := []row{
		{0x00, "SEND_FIRST", 0, ".....P", "F...", "Q."},
		{0x01, "SEND_MIDDLE", 0, ".....P", ".M..", "Q."},
		{0x02, "SEND_LAST", 0, ".....P", "..L.", "Q."},
		{0x03, "SEND_LAST_WITH_IMMEDIATE", 4, "..I..P", "..L.", "Q."},
		{0x04, "SEND_ONLY", 0, ".....P", "...O", "Q."},
		{0x05, "SEND_ONLY_WITH_IMMEDIATE", 4, "..I..P", "...O", "Q."},
		{0x06, "RDMA_WRITE_FIRST", 16, "R....P", "F...", "Q."},
		{0x07, "RDMA_WRITE_MIDDLE", 0, ".....P", ".M..", "Q."},
		{0x08, "RDMA_WRITE_LAST", 0, ".....P", "..L.", "Q."},
		{0x09, "RDMA_WRITE_LAST_WITH_IMMEDIATE", 4, "..I..P", "..L.", "Q."},
		{0x0a, "RDMA_WRITE_ONLY", 16, "R....P", "...O", "Q."},
		{0x0b, "RDMA_WRITE_ONLY_WITH_IMMEDIATE", 20, "R.I..P", "...O", "Q."},
		{0x0c, "RDMA_READ_REQUEST", 16, "R.....", "...O", "Q."},
		{0x0d, "RDMA_READ_RESPONSE_FIRST", 4, ".A...P", "F...", ".S"},
		{0x0e, "RDMA_READ_RESPONSE_MIDDLE", 0, ".....P", ".M..", ".S"},
		{0x0f, "RDMA_READ_RESPONSE_LAST", 4, ".A...P", "..L.", ".S"},
		{0x10, "RDMA_READ_RESPONSE_ONLY", 4, ".A...P", "...O", ".S"},
		{0x11, "ACKNOWLEDGE", 4, ".A....", "...O", ".S"},
		{0x12, "ATOMIC_ACKNOWLEDGE", 12, ".A..K.", "...O", ".S"},
		{0x13, "COMPARE_SWAP", 28, "...T..", "...O", "Q."},
		{0x14, "FETCH_ADD", 28, "...T..", "...O", "Q."},
		{0x81, "CNP", 16, "......", "....", ".."},
	}
	flag := func(b bool, c byte) byte {
		if b {
			return c
		}
		return '.'
	}
	known := map[OpCode]bool{}
	for _, r := range rows {
		op := r.op
		known[op] = true
		if op.String() != r.name || !op.Valid() {
			t.Errorf("%#x: String %q Valid %v, want %q", uint8(op), op.String(), op.Valid(), r.name)
		}
		if op.HeaderLen() != BTHLen+r.ext {
			t.Errorf("%v: HeaderLen %d, want %d", op, op.HeaderLen(), BTHLen+r.ext)
		}
		hdrs := string([]byte{flag(op.HasRETH(), 'R'), flag(op.HasAETH(), 'A'), flag(op.HasImm(), 'I'),
			flag(op.HasAtomicETH(), 'T'), flag(op.HasAtomicAckETH(), 'K'), flag(op.HasPayload(), 'P')})
		pos := string([]byte{flag(op.IsFirst(), 'F'), flag(op.IsMiddle(), 'M'), flag(op.IsLast(), 'L'), flag(op.IsOnly(), 'O')})
		rr := string([]byte{flag(op.IsRequest(), 'Q'), flag(op.IsResponse(), 'S')})
		if hdrs != r.hdrs || pos != r.pos || rr != r.reqRes {
			t.Errorf("%v: headers %s position %s req/resp %s, want %s %s %s", op, hdrs, pos, rr, r.hdrs, r.pos, r.reqRes)
		}
		kinds := 0
		for _, k := range []bool{op.IsSend(), op.IsWrite(), op.IsReadResponse(), op.IsAtomic()} {
			if k {
				kinds++
			}
		}
		wantKinds := 1
		if op == OpRDMAReadRequest || op == OpAcknowledge || op == OpAtomicAcknowledge || op == OpCNP {
			wantKinds = 0
		}
		if kinds != wantKinds {
			t.Errorf("%v: in %d of send/write/read-response/atomic, want %d", op, kinds, wantKinds)
		}
	}
	for op := range 256 {
		o := OpCode(op)
		if !known[o] && (o.Valid() || o.HeaderLen() != 0 || o.HasPayload() || o.IsRequest()) {
			t.Errorf("%#x should be unknown", op)
		}
	}
	if s := OpCode(0x24).String(); s != "OPCODE_0x24" {
		t.Errorf("String of unknown 0x24 = %q", s)
	}
	if s := OpCode(0xfe).String(); s != "OPCODE_0xfe" {
		t.Errorf("String of unknown 0xfe = %q", s)
	}
}

func TestSyndrome(t *testing.T) {
	cases := []struct {
		s             Syndrome
		ack, rnr, nak bool
		value         uint8
		str           string
	}{
		{ACKSyndrome(0), true, false, false, 0, "ACK credit code 0"},
		{ACKSyndrome(CreditInvalid), true, false, false, 31, "ACK credit code 31"},
		{ACKSyndrome(0xff), true, false, false, 31, "ACK credit code 31"},
		{RNRNAKSyndrome(0), false, true, false, 0, "RNR NAK timer code 0"},
		{RNRNAKSyndrome(14), false, true, false, 14, "RNR NAK timer code 14"},
		{RNRNAKSyndrome(0x3f), false, true, false, 31, "RNR NAK timer code 31"},
		{NAKPSNSequenceError, false, false, true, 0, "NAK PSN sequence error"},
		{NAKInvalidRequest, false, false, true, 1, "NAK invalid request"},
		{NAKRemoteAccessError, false, false, true, 2, "NAK remote access error"},
		{NAKRemoteOperationalError, false, false, true, 3, "NAK remote operational error"},
		{NAKInvalidRDRequest, false, false, true, 4, "NAK invalid RD request"},
		{0x65, false, false, true, 5, "NAK reserved code 5"},
		{0x40, false, false, false, 0, "reserved syndrome 0x40"},
	}
	for _, c := range cases {
		if c.s.IsACK() != c.ack || c.s.IsRNRNAK() != c.rnr || c.s.IsNAK() != c.nak || c.s.Value() != c.value || c.s.String() != c.str {
			t.Errorf("%#02x: ack %v rnr %v nak %v value %d %q", uint8(c.s), c.s.IsACK(), c.s.IsRNRNAK(), c.s.IsNAK(), c.s.Value(), c.s.String())
		}
	}
	// The values themselves, from IBA table 43.
	if ACKSyndrome(5) != 0x05 || RNRNAKSyndrome(1) != 0x21 || NAKPSNSequenceError != 0x60 ||
		NAKInvalidRequest != 0x61 || NAKRemoteAccessError != 0x62 || NAKRemoteOperationalError != 0x63 || NAKInvalidRDRequest != 0x64 {
		t.Error("syndrome constants do not match the specification")
	}
}

func TestCredits(t *testing.T) {
	want := []int{0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768,
		1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768}
	for code, w := range want {
		if n, ok := Credits(uint8(code)); !ok || n != w {
			t.Errorf("Credits(%d) = %d, %v; want %d", code, n, ok, w)
		}
	}
	for _, code := range []uint8{31, 32, 255} {
		if _, ok := Credits(code); ok {
			t.Errorf("Credits(%d) reported valid", code)
		}
	}
}

func TestRNRTimer(t *testing.T) {
	// IBA table 45, in milliseconds.
	ms := []float64{655.36, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.12, 0.16, 0.24, 0.32, 0.48, 0.64, 0.96,
		1.28, 1.92, 2.56, 3.84, 5.12, 7.68, 10.24, 15.36, 20.48, 30.72, 40.96, 61.44, 81.92, 122.88,
		163.84, 245.76, 327.68, 491.52}
	for code, m := range ms {
		want := time.Duration(m*1000+0.5) * time.Microsecond
		if got := RNRTimer(uint8(code)); got != want {
			t.Errorf("RNRTimer(%d) = %v, want %v", code, got, want)
		}
	}
	if RNRTimer(32+14) != RNRTimer(14) {
		t.Error("RNRTimer uses bits above the 5-bit code")
	}
}

func TestPSNArithmetic(t *testing.T) {
	const max = Mask24
	addCases := []struct{ a, n, want uint32 }{
		{0, 1, 1}, {max, 1, 0}, {max - 1, 3, 1}, {5, max, 4}, {0, 1 << 24, 0}, {max, max, max - 1},
	}
	for _, c := range addCases {
		if got := PSNAdd(c.a, c.n); got != c.want {
			t.Errorf("PSNAdd(%#x, %#x) = %#x, want %#x", c.a, c.n, got, c.want)
		}
	}
	diffCases := []struct {
		a, b uint32
		want int32
	}{
		{5, 3, 2}, {3, 5, -2}, {0, max, 1}, {max, 0, -1}, {2, max - 1, 4}, {max - 1, 2, -4},
		{7, 7, 0}, {1 << 23, 0, -(1 << 23)}, {(1 << 23) - 1, 0, (1 << 23) - 1}, {0, (1 << 23) - 1, -((1 << 23) - 1)},
		{0xff000005, 3, 2}, // bits above 24 ignored
	}
	for _, c := range diffCases {
		if got := PSNDiff(c.a, c.b); got != c.want {
			t.Errorf("PSNDiff(%#x, %#x) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	lessCases := []struct {
		a, b uint32
		want bool
	}{
		{1, 2, true}, {2, 1, false}, {2, 2, false}, {max, 0, true}, {0, max, false}, {max - 10, 10, true}, {10, max - 10, false},
	}
	for _, c := range lessCases {
		if got := PSNLess(c.a, c.b); got != c.want {
			t.Errorf("PSNLess(%#x, %#x) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	// Walking across the wrap: each step is one after the previous.
	p := uint32(max - 100)
	for range 200 {
		q := PSNAdd(p, 1)
		if PSNDiff(q, p) != 1 || !PSNLess(p, q) || PSNLess(q, p) {
			t.Fatalf("step %#x -> %#x misordered", p, q)
		}
		p = q
	}
}
