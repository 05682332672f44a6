package rendezvous

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits of the TCP store's wire format.
const (
	// MaxKeyLen is the longest key, in bytes.
	MaxKeyLen = 4096
	// MaxValueLen is the longest value, in bytes.
	MaxValueLen = 4 << 20
	// maxBody is the largest frame body: a Set of the longest key and value.
	maxBody = reqHeaderLen + MaxKeyLen + MaxValueLen
)

// ErrProtocol: a peer sent a frame that does not parse. The server closes
// such a client's connection; the client reports it and reconnects on the
// next call.
var ErrProtocol = errors.New("rendezvous: protocol error")

// Request operations.
const (
	opSet    byte = 1 // value = the new value
	opGet    byte = 2 // wait until the key exists, reply with its value
	opAdd    byte = 3 // value = 8-byte delta; reply 8-byte result
	opCheck  byte = 4 // reply statusOK if the key exists, statusNotFound if not
	opCancel byte = 5 // cancel the pending Get whose id is the request's id
	opLast        = opCancel
)

// Response statuses.
const (
	statusOK       byte = 0
	statusNotFound byte = 1
	statusError    byte = 2 // value is the error text
	// statusStopped is the server's last frame on every connection when
	// it stops (id 0): value is a stopClass byte and the reason's text.
	statusStopped byte = 3
	statusLast         = statusStopped
)

// Why a server stopped, the first byte of a statusStopped value: calls
// that were waiting fail with the matching collective error.
const (
	stopFailed  byte = 0 // its owner failed or closed it: collective.ErrPeerLost
	stopTimeout byte = 1 // its owner timed out: collective.ErrTimeout
	stopAborted byte = 2 // its owner aborted: collective.ErrAborted
	stopLast         = stopAborted
)

const (
	frameHeaderLen = 4
	reqHeaderLen   = 1 + 4 + 2
	respHeaderLen  = 1 + 4
)

// request is one parsed request. key and value alias the frame buffer.
type request struct {
	op    byte
	id    uint32
	key   []byte
	value []byte
}

// response is one parsed response. value aliases the frame buffer.
type response struct {
	status byte
	id     uint32
	value  []byte
}

// parseRequest parses a request body (the frame without its length).
func parseRequest(b []byte) (request, error) {
	if len(b) < reqHeaderLen {
		return request{}, fmt.Errorf("request of %d bytes, shorter than its %d-byte header: %w", len(b), reqHeaderLen, ErrProtocol)
	}
	r := request{op: b[0], id: binary.BigEndian.Uint32(b[1:5])}
	if r.op == 0 || r.op > opLast {
		return request{}, fmt.Errorf("request %d: unknown op %d: %w", r.id, r.op, ErrProtocol)
	}
	kl := int(binary.BigEndian.Uint16(b[5:7]))
	if kl > MaxKeyLen {
		return request{}, fmt.Errorf("request %d: key of %d bytes exceeds %d: %w", r.id, kl, MaxKeyLen, ErrProtocol)
	}
	rest := b[reqHeaderLen:]
	if kl > len(rest) {
		return request{}, fmt.Errorf("request %d: key of %d bytes but only %d follow: %w", r.id, kl, len(rest), ErrProtocol)
	}
	r.key, r.value = rest[:kl], rest[kl:]
	switch r.op {
	case opSet:
		if len(r.value) > MaxValueLen {
			return request{}, fmt.Errorf("request %d: value of %d bytes exceeds %d: %w", r.id, len(r.value), MaxValueLen, ErrProtocol)
		}
	case opAdd:
		if len(r.value) != 8 {
			return request{}, fmt.Errorf("request %d: add delta of %d bytes, want 8: %w", r.id, len(r.value), ErrProtocol)
		}
	default:
		if len(r.value) != 0 {
			return request{}, fmt.Errorf("request %d: op %d carries %d unexpected bytes: %w", r.id, r.op, len(r.value), ErrProtocol)
		}
	}
	if r.op != opCancel && kl == 0 {
		return request{}, fmt.Errorf("request %d: empty key: %w", r.id, ErrProtocol)
	}
	return r, nil
}

// appendRequest appends r as a whole frame (length included) to dst.
func appendRequest(dst []byte, r request) []byte {
	n := reqHeaderLen + len(r.key) + len(r.value)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, r.op)
	dst = binary.BigEndian.AppendUint32(dst, r.id)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(r.key)))
	dst = append(dst, r.key...)
	return append(dst, r.value...)
}

// parseResponse parses a response body.
func parseResponse(b []byte) (response, error) {
	if len(b) < respHeaderLen {
		return response{}, fmt.Errorf("response of %d bytes, shorter than its %d-byte header: %w", len(b), respHeaderLen, ErrProtocol)
	}
	r := response{status: b[0], id: binary.BigEndian.Uint32(b[1:5]), value: b[respHeaderLen:]}
	if r.status > statusLast {
		return response{}, fmt.Errorf("response %d: unknown status %d: %w", r.id, r.status, ErrProtocol)
	}
	if r.status == statusStopped && (len(r.value) == 0 || r.value[0] > stopLast) {
		return response{}, fmt.Errorf("response %d: stop notice without a known reason class: %w", r.id, ErrProtocol)
	}
	if len(r.value) > MaxValueLen {
		return response{}, fmt.Errorf("response %d: value of %d bytes exceeds %d: %w", r.id, len(r.value), MaxValueLen, ErrProtocol)
	}
	return r, nil
}

// appendResponse appends r as a whole frame to dst.
func appendResponse(dst []byte, r response) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(respHeaderLen+len(r.value)))
	dst = append(dst, r.status)
	dst = binary.BigEndian.AppendUint32(dst, r.id)
	return append(dst, r.value...)
}

// readFrame reads one frame's body into buf (grown as needed, never past
// max) and returns it.
func readFrame(r io.Reader, buf []byte, max int) ([]byte, error) {
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return buf, err
	}
	n := int(binary.BigEndian.Uint32(h[:]))
	if n > max {
		return buf, fmt.Errorf("frame of %d bytes exceeds %d: %w", n, max, ErrProtocol)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	return buf, nil
}
