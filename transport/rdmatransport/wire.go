package rdmatransport

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/rdma"
)

// Message kinds, the first byte of every slot's header.
const (
	msgEager  = 1 // header + payload
	msgRTS    = 2 // ready to send: tag, length, send id
	msgCTS    = 3 // clear to send: receive id, address, rkey, length, send id echoed
	msgReject = 4 // the receive of send id has another length
	msgCredit = 5 // nothing but returned credits
	msgBye    = 6 // the sender closes
)

// hdrLen is the header at the start of every slot:
//
//	0 kind u8 | 1 pad | 2 credits u16 | 4 length u32 | 8 tag u64 |
//	16 id u32 | 20 rkey u32 | 24 addr u64 | 32 echo u32 | 36 pad u32
//
// little endian. id is the send id (RTS, reject) or the receive id (CTS);
// echo is the send id a CTS answers.
const hdrLen = 40

type header struct {
	kind    uint8
	credits uint16
	length  uint32
	tag     uint64
	id      uint32
	rkey    uint32
	addr    uint64
	echo    uint32
}

func (h *header) put(b []byte) {
	_ = b[hdrLen-1]
	b[0], b[1] = h.kind, 0
	binary.LittleEndian.PutUint16(b[2:], h.credits)
	binary.LittleEndian.PutUint32(b[4:], h.length)
	binary.LittleEndian.PutUint64(b[8:], h.tag)
	binary.LittleEndian.PutUint32(b[16:], h.id)
	binary.LittleEndian.PutUint32(b[20:], h.rkey)
	binary.LittleEndian.PutUint64(b[24:], h.addr)
	binary.LittleEndian.PutUint32(b[32:], h.echo)
	binary.LittleEndian.PutUint32(b[36:], 0)
}

var errShortHeader = errors.New("message shorter than its header")

// parse reads a header from the n received bytes of a slot.
func (h *header) parse(b []byte) error {
	if len(b) < hdrLen {
		return errShortHeader
	}
	h.kind = b[0]
	h.credits = binary.LittleEndian.Uint16(b[2:])
	h.length = binary.LittleEndian.Uint32(b[4:])
	h.tag = binary.LittleEndian.Uint64(b[8:])
	h.id = binary.LittleEndian.Uint32(b[16:])
	h.rkey = binary.LittleEndian.Uint32(b[20:])
	h.addr = binary.LittleEndian.Uint64(b[24:])
	h.echo = binary.LittleEndian.Uint32(b[32:])
	return nil
}

// endpoint is what one rank publishes in the store: its GID, path MTU,
// host label and, for every rank, the QP number and first PSN of the QP
// aimed at it (zero at its own rank).
type endpoint struct {
	gid  rdma.GID
	mtu  rdma.MTU
	host string
	qpn  []uint32
	psn  []uint32
}

const endpointVersion = 1

// encode: version u8 | gid [16] | mtu u8 | host len u8 | host | size u32 |
// size × (qpn u32, psn u32), little endian.
func (e *endpoint) encode() []byte {
	b := make([]byte, 0, 23+len(e.host)+8*len(e.qpn))
	b = append(b, endpointVersion)
	b = append(b, e.gid[:]...)
	b = append(b, uint8(e.mtu), uint8(len(e.host)))
	b = append(b, e.host...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.qpn)))
	for i := range e.qpn {
		b = binary.LittleEndian.AppendUint32(b, e.qpn[i])
		b = binary.LittleEndian.AppendUint32(b, e.psn[i])
	}
	return b
}

var errBadEndpoint = fmt.Errorf("malformed endpoint record: %w", collective.ErrInvalidArgument)

func decodeEndpoint(b []byte, size int) (endpoint, error) {
	var e endpoint
	if len(b) < 19 || b[0] != endpointVersion {
		return e, errBadEndpoint
	}
	copy(e.gid[:], b[1:17])
	e.mtu = rdma.MTU(b[17])
	hl := int(b[18])
	b = b[19:]
	if len(b) < hl+4 {
		return e, errBadEndpoint
	}
	e.host = string(b[:hl])
	b = b[hl:]
	n := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	if n != size {
		return e, fmt.Errorf("endpoint record for a group of %d, this one has %d: %w", n, size, collective.ErrInvalidArgument)
	}
	if len(b) != 8*n || e.mtu.Bytes() == 0 {
		return e, errBadEndpoint
	}
	e.qpn, e.psn = make([]uint32, n), make([]uint32, n)
	for i := range n {
		e.qpn[i] = binary.LittleEndian.Uint32(b[8*i:])
		e.psn[i] = binary.LittleEndian.Uint32(b[8*i+4:])
	}
	return e, nil
}
