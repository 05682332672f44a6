package cm

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Wire format, version 1. One message per side, fixed size, all integers in
// network byte order:
//
//	offset size field
//	     0    6 magic "ONETCM"
//	     6    1 version (1)
//	     7    1 reserved, zero
//	     8   16 GID
//	    24    4 QPN (top 8 bits zero)
//	    28    4 PSN (top 8 bits zero)
//	    32    2 MTU in bytes
//	    34    2 UDP source port (0 = not told)
//	    36    4 RKey
//	    40    8 Addr
//	    48    8 Len
//	    56    4 CRC-32 (IEEE) of bytes 0..55
//
// After both sides have read and accepted the other's message, each writes one
// byte: ReadyByte ('R', "my QP is in RTR, you may send") or RejectByte ('N',
// "I refuse your endpoint"), and reads the peer's.
const (
	// Magic opens every message.
	Magic = "ONETCM"
	// Version is the protocol version this package speaks.
	Version = 1
	// MessageSize is the length of one endpoint message in bytes.
	MessageSize = 60
	// HeaderSize is the magic, version and reserved byte: read first, so a
	// peer of another version is told so without waiting for a body whose
	// length may differ.
	HeaderSize = 8

	// ReadyByte is sent after the peer's endpoint was accepted.
	ReadyByte byte = 'R'
	// RejectByte is sent instead when it was not.
	RejectByte byte = 'N'
)

// AppendEndpoint appends e's wire encoding (MessageSize bytes) to b. It does
// not validate e: call Validate first.
func AppendEndpoint(b []byte, e Endpoint) []byte {
	start := len(b)
	b = append(b, Magic...)
	b = append(b, Version, 0)
	b = append(b, e.GID[:]...)
	b = binary.BigEndian.AppendUint32(b, e.QPN)
	b = binary.BigEndian.AppendUint32(b, e.PSN)
	b = binary.BigEndian.AppendUint16(b, e.MTU)
	b = binary.BigEndian.AppendUint16(b, e.UDPSrcPort)
	b = binary.BigEndian.AppendUint32(b, e.RKey)
	b = binary.BigEndian.AppendUint64(b, e.Addr)
	b = binary.BigEndian.AppendUint64(b, e.Len)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// checkHeader checks magic and version in the first bytes of a message; it
// looks only at what b holds.
func checkHeader(b []byte) error {
	n := min(len(b), len(Magic))
	if string(b[:n]) != Magic[:n] {
		return fmt.Errorf("got %q: %w", b[:n], ErrBadMagic)
	}
	if len(b) > 6 && b[6] != Version {
		return fmt.Errorf("peer speaks version %d, we speak %d: %w", b[6], Version, ErrVersion)
	}
	return nil
}

// DecodeEndpoint parses one message. It checks, in order: magic (ErrBadMagic),
// version (ErrVersion), length, reserved byte and CRC (ErrCorrupt), then the
// fields (ErrInvalidEndpoint). It never panics.
func DecodeEndpoint(b []byte) (Endpoint, error) {
	if err := checkHeader(b); err != nil {
		return Endpoint{}, err
	}
	if len(b) != MessageSize {
		return Endpoint{}, fmt.Errorf("message is %d bytes, want %d: %w", len(b), MessageSize, ErrCorrupt)
	}
	if b[7] != 0 {
		return Endpoint{}, fmt.Errorf("reserved byte is %#x, want 0: %w", b[7], ErrCorrupt)
	}
	want := binary.BigEndian.Uint32(b[56:])
	if got := crc32.ChecksumIEEE(b[:56]); got != want {
		return Endpoint{}, fmt.Errorf("crc32 %#08x, message says %#08x: %w", got, want, ErrCorrupt)
	}
	var e Endpoint
	copy(e.GID[:], b[8:24])
	e.QPN = binary.BigEndian.Uint32(b[24:])
	e.PSN = binary.BigEndian.Uint32(b[28:])
	e.MTU = binary.BigEndian.Uint16(b[32:])
	e.UDPSrcPort = binary.BigEndian.Uint16(b[34:])
	e.RKey = binary.BigEndian.Uint32(b[36:])
	e.Addr = binary.BigEndian.Uint64(b[40:])
	e.Len = binary.BigEndian.Uint64(b[48:])
	if err := e.Validate(); err != nil {
		return Endpoint{}, err
	}
	return e, nil
}
