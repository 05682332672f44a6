package wire

// OpCode is the BTH opcode: the transport service in the top three bits
// (000 = reliable connected) and the operation in the low five. The values
// are the specification's (IBA Vol. 1 table 35, "OpCode field"); CNP is the
// RoCEv2 congestion notification packet of annex A17.
type OpCode uint8

// The RC opcodes, plus CNP.
const (
	OpSendFirst                  OpCode = 0x00
	OpSendMiddle                 OpCode = 0x01
	OpSendLast                   OpCode = 0x02
	OpSendLastWithImmediate      OpCode = 0x03
	OpSendOnly                   OpCode = 0x04
	OpSendOnlyWithImmediate      OpCode = 0x05
	OpRDMAWriteFirst             OpCode = 0x06
	OpRDMAWriteMiddle            OpCode = 0x07
	OpRDMAWriteLast              OpCode = 0x08
	OpRDMAWriteLastWithImmediate OpCode = 0x09
	OpRDMAWriteOnly              OpCode = 0x0a
	OpRDMAWriteOnlyWithImmediate OpCode = 0x0b
	OpRDMAReadRequest            OpCode = 0x0c
	OpRDMAReadResponseFirst      OpCode = 0x0d
	OpRDMAReadResponseMiddle     OpCode = 0x0e
	OpRDMAReadResponseLast       OpCode = 0x0f
	OpRDMAReadResponseOnly       OpCode = 0x10
	OpAcknowledge                OpCode = 0x11
	OpAtomicAcknowledge          OpCode = 0x12
	OpCompareSwap                OpCode = 0x13
	OpFetchAdd                   OpCode = 0x14
	OpCNP                        OpCode = 0x81
)

// opFlags says what an opcode's packet carries and where it sits in a
// message.
type opFlags uint32

const (
	fRETH opFlags = 1 << iota
	fAETH
	fImm
	fAtomicETH
	fAtomicAck
	fCNPPad // 16 reserved bytes after the BTH (CNP only)
	fPayload
	fFirst
	fMiddle
	fLast
	fOnly
	fRequest
	fResponse

	fSend      // a SEND packet
	fWrite     // an RDMA WRITE packet
	fReadResp  // an RDMA READ response packet
	fAtomicReq // COMPARE_SWAP or FETCH_ADD
)

// opInfo is one row of the opcode table.
type opInfo struct {
	name   string // "" for an opcode this package does not know
	flags  opFlags
	extLen uint8 // bytes of extension headers after the BTH
}

// opTable is indexed by opcode; rows left zero are unknown opcodes.
var opTable = func() (t [256]opInfo) {
	add := func(op OpCode, name string, f opFlags) {
		n := 0
		for _, h := range [...]struct {
			f opFlags
			n int
		}{{fRETH, RETHLen}, {fAETH, AETHLen}, {fImm, ImmDtLen}, {fAtomicETH, AtomicETHLen},
			{fAtomicAck, AtomicAckETHLen}, {fCNPPad, CNPReservedLen}} {
			if f&h.f != 0 {
				n += h.n
			}
		}
		t[op] = opInfo{name: name, flags: f, extLen: uint8(n)}
	}
	const req, resp, pay = fRequest, fResponse, fPayload
	add(OpSendFirst, "SEND_FIRST", req|pay|fFirst|fSend)
	add(OpSendMiddle, "SEND_MIDDLE", req|pay|fMiddle|fSend)
	add(OpSendLast, "SEND_LAST", req|pay|fLast|fSend)
	add(OpSendLastWithImmediate, "SEND_LAST_WITH_IMMEDIATE", req|pay|fLast|fSend|fImm)
	add(OpSendOnly, "SEND_ONLY", req|pay|fOnly|fSend)
	add(OpSendOnlyWithImmediate, "SEND_ONLY_WITH_IMMEDIATE", req|pay|fOnly|fSend|fImm)
	add(OpRDMAWriteFirst, "RDMA_WRITE_FIRST", req|pay|fFirst|fWrite|fRETH)
	add(OpRDMAWriteMiddle, "RDMA_WRITE_MIDDLE", req|pay|fMiddle|fWrite)
	add(OpRDMAWriteLast, "RDMA_WRITE_LAST", req|pay|fLast|fWrite)
	add(OpRDMAWriteLastWithImmediate, "RDMA_WRITE_LAST_WITH_IMMEDIATE", req|pay|fLast|fWrite|fImm)
	add(OpRDMAWriteOnly, "RDMA_WRITE_ONLY", req|pay|fOnly|fWrite|fRETH)
	add(OpRDMAWriteOnlyWithImmediate, "RDMA_WRITE_ONLY_WITH_IMMEDIATE", req|pay|fOnly|fWrite|fRETH|fImm)
	add(OpRDMAReadRequest, "RDMA_READ_REQUEST", req|fOnly|fRETH)
	add(OpRDMAReadResponseFirst, "RDMA_READ_RESPONSE_FIRST", resp|pay|fFirst|fReadResp|fAETH)
	add(OpRDMAReadResponseMiddle, "RDMA_READ_RESPONSE_MIDDLE", resp|pay|fMiddle|fReadResp)
	add(OpRDMAReadResponseLast, "RDMA_READ_RESPONSE_LAST", resp|pay|fLast|fReadResp|fAETH)
	add(OpRDMAReadResponseOnly, "RDMA_READ_RESPONSE_ONLY", resp|pay|fOnly|fReadResp|fAETH)
	add(OpAcknowledge, "ACKNOWLEDGE", resp|fOnly|fAETH)
	add(OpAtomicAcknowledge, "ATOMIC_ACKNOWLEDGE", resp|fOnly|fAETH|fAtomicAck)
	add(OpCompareSwap, "COMPARE_SWAP", req|fOnly|fAtomicReq|fAtomicETH)
	add(OpFetchAdd, "FETCH_ADD", req|fOnly|fAtomicReq|fAtomicETH)
	add(OpCNP, "CNP", fCNPPad)
	return t
}()

func (o OpCode) has(f opFlags) bool { return opTable[o].flags&f != 0 }

// String returns the specification's name of the opcode ("RDMA_WRITE_ONLY",
// "CNP"), or "OPCODE_0xNN" for an opcode this package does not know.
func (o OpCode) String() string {
	if n := opTable[o].name; n != "" {
		return n
	}
	const hex = "0123456789abcdef"
	return "OPCODE_0x" + string([]byte{hex[o>>4], hex[o&15]})
}

// Valid reports whether the opcode is one this package encodes and decodes
// (the RC opcodes 0x00-0x14 and CNP 0x81).
func (o OpCode) Valid() bool { return opTable[o].name != "" }

// HeaderLen returns the length of the BTH plus the extension headers the
// opcode carries (0 for an unknown opcode).
func (o OpCode) HeaderLen() int {
	if !o.Valid() {
		return 0
	}
	return BTHLen + int(opTable[o].extLen)
}

// HasRETH reports whether packets with this opcode carry an RDMA extended
// transport header (WRITE first/only, READ request).
func (o OpCode) HasRETH() bool { return o.has(fRETH) }

// HasAETH reports whether packets with this opcode carry an ACK extended
// transport header (acknowledgements, READ response first/last/only).
func (o OpCode) HasAETH() bool { return o.has(fAETH) }

// HasImm reports whether packets with this opcode carry immediate data.
func (o OpCode) HasImm() bool { return o.has(fImm) }

// HasAtomicETH reports whether packets with this opcode carry an atomic
// extended transport header (COMPARE_SWAP, FETCH_ADD).
func (o OpCode) HasAtomicETH() bool { return o.has(fAtomicETH) }

// HasAtomicAckETH reports whether packets with this opcode carry an atomic
// acknowledge extended transport header (ATOMIC_ACKNOWLEDGE).
func (o OpCode) HasAtomicAckETH() bool { return o.has(fAtomicAck) }

// HasPayload reports whether packets with this opcode may carry payload.
func (o OpCode) HasPayload() bool { return o.has(fPayload) }

// IsFirst reports whether the opcode is the first packet of a multi-packet
// message.
func (o OpCode) IsFirst() bool { return o.has(fFirst) }

// IsMiddle reports whether the opcode is a middle packet of a message.
func (o OpCode) IsMiddle() bool { return o.has(fMiddle) }

// IsLast reports whether the opcode is the last packet of a multi-packet
// message.
func (o OpCode) IsLast() bool { return o.has(fLast) }

// IsOnly reports whether the opcode is a whole message in one packet
// (including READ requests, acknowledgements and atomics).
func (o OpCode) IsOnly() bool { return o.has(fOnly) }

// IsRequest reports whether the opcode is sent by a requester (SEND, WRITE,
// READ request, atomics).
func (o OpCode) IsRequest() bool { return o.has(fRequest) }

// IsResponse reports whether the opcode is sent by a responder (READ
// responses, acknowledgements). CNP is neither a request nor a response.
func (o OpCode) IsResponse() bool { return o.has(fResponse) }

// IsSend reports whether the opcode is one of the SEND packets.
func (o OpCode) IsSend() bool { return o.has(fSend) }

// IsWrite reports whether the opcode is one of the RDMA WRITE packets.
func (o OpCode) IsWrite() bool { return o.has(fWrite) }

// IsReadResponse reports whether the opcode is one of the RDMA READ
// response packets.
func (o OpCode) IsReadResponse() bool { return o.has(fReadResp) }

// IsAtomic reports whether the opcode is an atomic request (COMPARE_SWAP or
// FETCH_ADD).
func (o OpCode) IsAtomic() bool { return o.has(fAtomicReq) }
