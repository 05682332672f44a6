package wire

import (
	"encoding/binary"
	"errors"
)

// Errors of Encode, Decode and the ICRC functions. They are returned bare
// (never wrapped) so that per-packet paths do not allocate; compare with ==
// or errors.Is.
var (
	// ErrShortBuffer: the destination buffer cannot hold the packet.
	ErrShortBuffer = errors.New("rocev2 wire: buffer too short for packet")
	// ErrTruncated: the input ends before the BTH, the extension headers
	// the opcode requires, or the ICRC.
	ErrTruncated = errors.New("rocev2 wire: truncated packet")
	// ErrBadVersion: BTH.TVer is not 0.
	ErrBadVersion = errors.New("rocev2 wire: unsupported transport header version")
	// ErrUnknownOpcode: the opcode is not an RC opcode or CNP.
	ErrUnknownOpcode = errors.New("rocev2 wire: unknown opcode")
	// ErrUnexpectedPayload: payload on an opcode that carries none
	// (READ request, acknowledgements, atomics, CNP).
	ErrUnexpectedPayload = errors.New("rocev2 wire: payload on an opcode without payload")
	// ErrBadPad: the BTH pad count is larger than the bytes after the
	// headers.
	ErrBadPad = errors.New("rocev2 wire: pad count exceeds payload")
	// ErrUnaligned: payload plus pad is not a multiple of 4 bytes.
	ErrUnaligned = errors.New("rocev2 wire: packet length not a multiple of 4")
	// ErrFieldRange: a 24-bit field (DestQP, PSN, MSN) is larger than
	// 0xFFFFFF, or PadCount/TVer do not fit their bits, on Encode.
	ErrFieldRange = errors.New("rocev2 wire: field value out of range")
	// ErrNotRoCE: the IP packet given to an ICRC function is not a
	// well-formed IPv4 or IPv6 (no extension headers) UDP packet long
	// enough to hold a BTH and an ICRC, or the addresses given to
	// ICRCFromParts are not both IPv4 or both IPv6.
	ErrNotRoCE = errors.New("rocev2 wire: not a RoCEv2 IP packet")
)

// Packet is one RoCEv2 packet: the BTH, the extension headers and the
// payload. Which fields are meaningful follows from BTH.OpCode (see the
// OpCode Has* methods); Decode zeroes the others, Encode ignores them.
//
// A Packet is a plain value owned by whoever holds it; nothing here keeps
// a reference to it. After Decode, Payload aliases the decoded buffer and
// is valid only as long as that buffer is.
type Packet struct {
	BTH
	RETH
	AETH
	// Imm is the immediate data (ImmDt) of the *_WITH_IMMEDIATE opcodes,
	// as the 32-bit big-endian value on the wire.
	Imm uint32
	AtomicETH
	// AtomicAck is the original remote data of ATOMIC_ACKNOWLEDGE
	// (AtomicAckETH.OrigData).
	AtomicAck uint64
	// Payload is the data, without pad and ICRC.
	Payload []byte
}

// HeaderLen returns the bytes of BTH plus the extension headers that
// p.OpCode carries, or 0 for an unknown opcode.
func (p *Packet) HeaderLen() int { return p.OpCode.HeaderLen() }

// WireLen returns the length of the encoded packet: headers, payload, pad
// and ICRC (the UDP payload length). It is 0 for an unknown opcode.
func (p *Packet) WireLen() int {
	hl := p.HeaderLen()
	if hl == 0 {
		return 0
	}
	return hl + len(p.Payload) + padFor(len(p.Payload)) + ICRCLen
}

// padFor returns the pad bytes that round n up to a multiple of 4.
func padFor(n int) int { return -n & 3 }

// Encode writes p into dst: BTH, the extension headers p.OpCode carries,
// the payload, zero pad bytes, and 4 zero bytes where the ICRC goes (fill
// them with PutICRC or PutICRCFromParts). It computes the pad count from
// len(p.Payload) and stores it in p.PadCount as well as on the wire, and
// sends reserved bits as zero. It returns the number of bytes written,
// p.WireLen().
//
// Errors: ErrUnknownOpcode, ErrBadVersion (TVer not 0), ErrFieldRange
// (DestQP, PSN or, with an AETH, MSN above 24 bits), ErrUnexpectedPayload,
// ErrShortBuffer. On error dst and p are unchanged.
func Encode(dst []byte, p *Packet) (int, error) {
	op := p.OpCode
	info := &opTable[op]
	if info.name == "" {
		return 0, ErrUnknownOpcode
	}
	if p.TVer != 0 {
		return 0, ErrBadVersion
	}
	if p.DestQP > Mask24 || p.PSN > Mask24 || (info.flags&fAETH != 0 && p.MSN > Mask24) {
		return 0, ErrFieldRange
	}
	if info.flags&fPayload == 0 && len(p.Payload) != 0 {
		return 0, ErrUnexpectedPayload
	}
	hl := BTHLen + int(info.extLen)
	pad := padFor(len(p.Payload))
	n := hl + len(p.Payload) + pad + ICRCLen
	if len(dst) < n {
		return 0, ErrShortBuffer
	}
	b := dst[:n]
	p.PadCount = uint8(pad)
	putBTH(b, &p.BTH)
	off := BTHLen
	if info.flags&fRETH != 0 {
		putRETH(b[off:], &p.RETH)
		off += RETHLen
	}
	if info.flags&fAtomicETH != 0 {
		putAtomicETH(b[off:], &p.AtomicETH)
		off += AtomicETHLen
	}
	if info.flags&fAETH != 0 {
		putAETH(b[off:], &p.AETH)
		off += AETHLen
	}
	if info.flags&fAtomicAck != 0 {
		binary.BigEndian.PutUint64(b[off:off+AtomicAckETHLen], p.AtomicAck)
		off += AtomicAckETHLen
	}
	if info.flags&fImm != 0 {
		binary.BigEndian.PutUint32(b[off:off+ImmDtLen], p.Imm)
		off += ImmDtLen
	}
	if info.flags&fCNPPad != 0 {
		clear(b[off : off+CNPReservedLen])
		off += CNPReservedLen
	}
	off += copy(b[off:], p.Payload)
	clear(b[off:]) // pad and ICRC
	return n, nil
}

// Decode parses the RoCEv2 packet b (a whole UDP payload: BTH through
// ICRC) into p, overwriting every field of p. It checks the structure —
// TVer 0, a known opcode, room for the BTH, the extension headers and the
// ICRC, payload+pad a multiple of 4, a pad count within the payload, no
// payload on opcodes without one — but not the ICRC (see CheckICRC) and
// not the semantics (PSN windows, keys, lengths against the RETH). Reserved
// bits, reserved CNP bytes and pad contents are ignored. p.Payload aliases
// b.
//
// Errors: ErrTruncated, ErrUnknownOpcode, ErrBadVersion, ErrUnaligned,
// ErrUnexpectedPayload, ErrBadPad. On error p is left zeroed.
func Decode(b []byte, p *Packet) error {
	*p = Packet{}
	if len(b) < BTHLen+ICRCLen {
		return ErrTruncated
	}
	info := &opTable[b[0]]
	if info.name == "" {
		return ErrUnknownOpcode
	}
	if b[1]&0x0F != 0 {
		return ErrBadVersion
	}
	hl := BTHLen + int(info.extLen)
	if len(b) < hl+ICRCLen {
		return ErrTruncated
	}
	rest := len(b) - hl - ICRCLen // payload + pad
	if rest&3 != 0 {
		return ErrUnaligned
	}
	if info.flags&fPayload == 0 && rest != 0 {
		return ErrUnexpectedPayload
	}
	pad := int(b[1] >> 4 & 3)
	if pad > rest {
		return ErrBadPad
	}
	parseBTH(b, &p.BTH)
	off := BTHLen
	if info.flags&fRETH != 0 {
		parseRETH(b[off:], &p.RETH)
		off += RETHLen
	}
	if info.flags&fAtomicETH != 0 {
		parseAtomicETH(b[off:], &p.AtomicETH)
		off += AtomicETHLen
	}
	if info.flags&fAETH != 0 {
		parseAETH(b[off:], &p.AETH)
		off += AETHLen
	}
	if info.flags&fAtomicAck != 0 {
		p.AtomicAck = binary.BigEndian.Uint64(b[off : off+AtomicAckETHLen])
		off += AtomicAckETHLen
	}
	if info.flags&fImm != 0 {
		p.Imm = binary.BigEndian.Uint32(b[off : off+ImmDtLen])
		off += ImmDtLen
	}
	if info.flags&fCNPPad != 0 {
		off += CNPReservedLen
	}
	if info.flags&fPayload != 0 {
		p.Payload = b[off : off+rest-pad : off+rest-pad]
	}
	return nil
}
