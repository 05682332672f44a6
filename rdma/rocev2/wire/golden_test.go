package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// goldenCases pin the encoding of every opcode byte by byte against the
// layouts of IBA Vol. 1 chapter 9 (BTH 9.2, RETH 9.3.3, AETH 9.3.5,
// ImmDt 9.3.6, AtomicETH 9.3.4, AtomicAckETH 9.5.3) and annex A17 (CNP).
// Every hex line names the fields it holds. The last 4 bytes are the
// space Encode leaves (zeroed) for the ICRC.
var goldenCases = []struct {
	name string
	p    Packet
	hex  string
}{
	{"SEND_FIRST", Packet{BTH: BTH{OpCode: OpSendFirst, MigReq: true, PKey: 0xffff, DestQP: 0x11, PSN: 1},
		Payload: []byte{1, 2, 3, 4, 5, 6, 7, 8}}, `
		00        // opcode SEND_FIRST
		40        // SE 0, MigReq 1, PadCount 0, TVer 0
		ffff      // P_Key
		00        // FECN 0, BECN 0, reserved
		000011    // DestQP
		00        // AckReq 0, reserved
		000001    // PSN
		0102030405060708 // payload
		00000000  // ICRC`},
	{"SEND_MIDDLE", Packet{BTH: BTH{OpCode: OpSendMiddle, MigReq: true, PKey: 0xffff, FECN: true, DestQP: 0x123456, PSN: 0xfffffe},
		Payload: []byte{0xaa, 0xbb, 0xcc, 0xdd}}, `
		01 40 ffff
		80        // FECN 1
		123456    // DestQP
		00 fffffe // AckReq 0, PSN
		aabbccdd  // payload
		00000000`},
	{"SEND_LAST", Packet{BTH: BTH{OpCode: OpSendLast, MigReq: true, PKey: 0xffff, DestQP: 0x123456, AckReq: true, PSN: 0xffffff},
		Payload: []byte{0x11, 0x22, 0x33, 0x44, 0x55}}, `
		02
		70        // MigReq 1, PadCount 3
		ffff 00 123456
		80        // AckReq 1
		ffffff    // PSN
		1122334455 000000 // payload, 3 pad bytes
		00000000`},
	{"SEND_LAST_WITH_IMMEDIATE", Packet{BTH: BTH{OpCode: OpSendLastWithImmediate, SE: true, MigReq: true, PKey: 0xffff, DestQP: 0x123456, AckReq: true},
		Imm: 0xdeadbeef, Payload: []byte("ab")}, `
		03
		e0        // SE 1, MigReq 1, PadCount 2
		ffff 00 123456 80 000000
		deadbeef  // ImmDt
		6162 0000 // payload "ab", 2 pad bytes
		00000000`},
	{"SEND_ONLY", Packet{BTH: BTH{OpCode: OpSendOnly, MigReq: true, PKey: 0x8001, BECN: true, DestQP: 1, AckReq: true, PSN: 0x10}}, `
		04 40
		8001      // P_Key
		40        // BECN 1
		000001 80 000010
		00000000  // no payload`},
	{"SEND_ONLY_WITH_IMMEDIATE", Packet{BTH: BTH{OpCode: OpSendOnlyWithImmediate, SE: true, MigReq: true, PKey: 0xffff, DestQP: 0xabcd, AckReq: true, PSN: 0x100},
		Imm: 0x01020304, Payload: []byte("z")}, `
		05
		f0        // SE 1, MigReq 1, PadCount 3
		ffff 00 00abcd 80 000100
		01020304  // ImmDt
		7a 000000 // payload "z", 3 pad bytes
		00000000`},
	{"RDMA_WRITE_FIRST", Packet{BTH: BTH{OpCode: OpRDMAWriteFirst, MigReq: true, PKey: 0xffff, DestQP: 2, PSN: 0x200},
		RETH: RETH{VA: 0x0011223344556677, RKey: 0x89abcdef, DMALen: 0x10000}, Payload: []byte{1, 2, 3, 4}}, `
		06 40 ffff 00 000002 00 000200
		0011223344556677 // RETH virtual address
		89abcdef  // RETH R_Key
		00010000  // RETH DMA length
		01020304  // payload
		00000000`},
	{"RDMA_WRITE_MIDDLE", Packet{BTH: BTH{OpCode: OpRDMAWriteMiddle, MigReq: true, PKey: 0xffff, DestQP: 2, PSN: 0x201},
		Payload: []byte{5, 6, 7, 8}}, `
		07 40 ffff 00 000002 00 000201
		05060708
		00000000`},
	{"RDMA_WRITE_LAST", Packet{BTH: BTH{OpCode: OpRDMAWriteLast, MigReq: true, PKey: 0xffff, DestQP: 2, AckReq: true, PSN: 0x202},
		Payload: []byte{9, 10, 11}}, `
		08
		50        // MigReq 1, PadCount 1
		ffff 00 000002 80 000202
		090a0b 00 // payload, 1 pad byte
		00000000`},
	{"RDMA_WRITE_LAST_WITH_IMMEDIATE", Packet{BTH: BTH{OpCode: OpRDMAWriteLastWithImmediate, SE: true, MigReq: true, PKey: 0xffff, DestQP: 2, AckReq: true, PSN: 0x203},
		Imm: 0xcafef00d, Payload: []byte{12, 13, 14, 15}}, `
		09 c0 ffff 00 000002 80 000203
		cafef00d  // ImmDt
		0c0d0e0f
		00000000`},
	{"RDMA_WRITE_ONLY", Packet{BTH: BTH{OpCode: OpRDMAWriteOnly, MigReq: true, PKey: 0xffff, DestQP: 3, AckReq: true, PSN: 0x300},
		RETH: RETH{VA: 0xfedcba9876543210, RKey: 1, DMALen: 6}, Payload: []byte{1, 2, 3, 4, 5, 6}}, `
		0a
		60        // MigReq 1, PadCount 2
		ffff 00 000003 80 000300
		fedcba9876543210 00000001 00000006 // RETH: VA, R_Key, DMA length
		010203040506 0000 // payload, 2 pad bytes
		00000000`},
	{"RDMA_WRITE_ONLY_WITH_IMMEDIATE", Packet{BTH: BTH{OpCode: OpRDMAWriteOnlyWithImmediate, SE: true, MigReq: true, PKey: 0xffff, DestQP: 3, AckReq: true, PSN: 0x301},
		RETH: RETH{VA: 0x1000, RKey: 2}, Imm: 0x11223344}, `
		0b c0 ffff 00 000003 80 000301
		0000000000001000 00000002 00000000 // RETH first: VA, R_Key, DMA length 0
		11223344  // then ImmDt
		00000000`},
	{"RDMA_READ_REQUEST", Packet{BTH: BTH{OpCode: OpRDMAReadRequest, MigReq: true, PKey: 0xffff, DestQP: 4, AckReq: true, PSN: 0x400},
		RETH: RETH{VA: 0x00007f0000001000, RKey: 0xabcdef01, DMALen: 0x100000}}, `
		0c 40 ffff 00 000004 80 000400
		00007f0000001000 abcdef01 00100000 // RETH: VA, R_Key, DMA length 1 MiB
		00000000`},
	{"RDMA_READ_RESPONSE_FIRST", Packet{BTH: BTH{OpCode: OpRDMAReadResponseFirst, MigReq: true, PKey: 0xffff, DestQP: 5, PSN: 0x400},
		AETH: AETH{Syndrome: ACKSyndrome(CreditInvalid), MSN: 5}, Payload: []byte{0xa0, 0xa1, 0xa2, 0xa3}}, `
		0d 40 ffff 00 000005 00 000400
		1f        // AETH syndrome: ACK, credit code 31 (invalid)
		000005    // AETH MSN
		a0a1a2a3
		00000000`},
	{"RDMA_READ_RESPONSE_MIDDLE", Packet{BTH: BTH{OpCode: OpRDMAReadResponseMiddle, MigReq: true, PKey: 0xffff, DestQP: 5, PSN: 0x401},
		Payload: []byte{0xa4, 0xa5, 0xa6, 0xa7}}, `
		0e 40 ffff 00 000005 00 000401
		a4a5a6a7  // no AETH in middle responses
		00000000`},
	{"RDMA_READ_RESPONSE_LAST", Packet{BTH: BTH{OpCode: OpRDMAReadResponseLast, MigReq: true, PKey: 0xffff, DestQP: 5, PSN: 0x402},
		AETH: AETH{Syndrome: ACKSyndrome(0), MSN: 6}, Payload: []byte{0xa8}}, `
		0f 70 ffff 00 000005 00 000402
		00 000006 // AETH: ACK credit code 0, MSN 6
		a8 000000
		00000000`},
	{"RDMA_READ_RESPONSE_ONLY", Packet{BTH: BTH{OpCode: OpRDMAReadResponseOnly, MigReq: true, PKey: 0xffff, DestQP: 5, PSN: 0x403},
		AETH: AETH{Syndrome: 0x1f, MSN: 0xffffff}}, `
		10 40 ffff 00 000005 00 000403
		1f ffffff // AETH: ACK credit code 31, MSN at its maximum
		00000000`},
	{"ACKNOWLEDGE RNR NAK", Packet{BTH: BTH{OpCode: OpAcknowledge, MigReq: true, PKey: 0xffff, DestQP: 6, PSN: 0x500},
		AETH: AETH{Syndrome: RNRNAKSyndrome(14), MSN: 7}}, `
		11 40 ffff 00 000006 00 000500
		2e        // AETH syndrome 001 01110: RNR NAK, timer code 14 (1.28 ms)
		000007
		00000000`},
	{"ACKNOWLEDGE NAK sequence error", Packet{BTH: BTH{OpCode: OpAcknowledge, MigReq: true, PKey: 0xffff, DestQP: 6, PSN: 0x501},
		AETH: AETH{Syndrome: NAKPSNSequenceError, MSN: 7}}, `
		11 40 ffff 00 000006 00 000501
		60 000007 // AETH: NAK code 0, PSN sequence error
		00000000`},
	{"ATOMIC_ACKNOWLEDGE", Packet{BTH: BTH{OpCode: OpAtomicAcknowledge, MigReq: true, PKey: 0xffff, DestQP: 6, PSN: 0x600},
		AETH: AETH{Syndrome: 0x1f, MSN: 8}, AtomicAck: 0x0102030405060708}, `
		12 40 ffff 00 000006 00 000600
		1f 000008 // AETH
		0102030405060708 // AtomicAckETH original remote data
		00000000`},
	{"COMPARE_SWAP", Packet{BTH: BTH{OpCode: OpCompareSwap, MigReq: true, PKey: 0xffff, DestQP: 7, AckReq: true, PSN: 0x600},
		AtomicETH: AtomicETH{VA: 0x2000, RKey: 0xc0ffee, SwapAdd: 0x1111111111111111, Compare: 0x2222222222222222}}, `
		13 40 ffff 00 000007 80 000600
		0000000000002000 // AtomicETH VA
		00c0ffee  // AtomicETH R_Key
		1111111111111111 // swap data
		2222222222222222 // compare data
		00000000`},
	{"FETCH_ADD", Packet{BTH: BTH{OpCode: OpFetchAdd, MigReq: true, PKey: 0xffff, DestQP: 7, AckReq: true, PSN: 0x601},
		AtomicETH: AtomicETH{VA: 0x3008, RKey: 7, SwapAdd: 1}}, `
		14 40 ffff 00 000007 80 000601
		0000000000003008 00000007 // AtomicETH VA, R_Key
		0000000000000001 // add data
		0000000000000000 // compare data (unused by FETCH_ADD)
		00000000`},
	{"CNP", Packet{BTH: BTH{OpCode: OpCNP, PKey: 0xffff, BECN: true, DestQP: 0x118}}, `
		81        // opcode CNP
		00        // SE 0, MigReq 0, PadCount 0, TVer 0
		ffff      // P_Key
		40        // BECN 1
		000118    // DestQP of the congested flow
		00 000000 // AckReq 0, PSN 0
		00000000000000000000000000000000 // 16 reserved bytes
		00000000`},
}

func TestGoldenEveryOpcode(t *testing.T) {
	seen := map[OpCode]bool{}
	for _, c := range goldenCases {
		want := unhex(t, c.hex)
		p := c.p
		buf := bytes.Repeat([]byte{0xee}, len(want)+8) // dirty buffer: Encode must write every byte
		n, err := Encode(buf, &p)
		if err != nil {
			t.Fatalf("%s: Encode: %v", c.name, err)
		}
		if n != len(want) || n != p.WireLen() {
			t.Fatalf("%s: Encode wrote %d bytes, WireLen %d, want %d", c.name, n, p.WireLen(), len(want))
		}
		if !bytes.Equal(buf[:n], want) {
			t.Errorf("%s:\n got % x\nwant % x", c.name, buf[:n], want)
		}
		if buf[n] != 0xee {
			t.Errorf("%s: Encode wrote past its length", c.name)
		}
		if p.PadCount != uint8(-len(p.Payload)&3) {
			t.Errorf("%s: PadCount %d after Encode", c.name, p.PadCount)
		}
		if got := p.HeaderLen(); got != n-len(p.Payload)-int(p.PadCount)-ICRCLen {
			t.Errorf("%s: HeaderLen %d", c.name, got)
		}
		var d Packet
		if err := Decode(want, &d); err != nil {
			t.Fatalf("%s: Decode: %v", c.name, err)
		}
		if !bytes.Equal(d.Payload, p.Payload) {
			t.Errorf("%s: decoded payload % x, want % x", c.name, d.Payload, p.Payload)
		}
		d.Payload, p.Payload = nil, nil
		if !reflect.DeepEqual(d, p) {
			t.Errorf("%s: decoded\n%+v\nwant\n%+v", c.name, d, p)
		}
		seen[c.p.OpCode] = true
	}
	for op := range 256 {
		if OpCode(op).Valid() && !seen[OpCode(op)] {
			t.Errorf("no golden case for %v", OpCode(op))
		}
	}
}
