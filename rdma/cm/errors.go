package cm

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps at most one of these
// (ErrTimeout also wraps context.DeadlineExceeded), with context in front, so
// callers test with errors.Is.
var (
	// ErrBadMagic: the peer's bytes do not start with "ONETCM": it is not
	// speaking this protocol (wrong port, another service).
	ErrBadMagic = errors.New("bad magic: peer does not speak the onetdp connection protocol")
	// ErrVersion: the peer speaks another version of this protocol.
	ErrVersion = errors.New("unsupported protocol version")
	// ErrCorrupt: a message that is framed correctly but fails its CRC, has a
	// non-zero reserved byte, the wrong length, or a ready byte that is
	// neither ready nor reject.
	ErrCorrupt = errors.New("corrupt message")
	// ErrInvalidEndpoint: an endpoint field is out of range (QPN or PSN wider
	// than 24 bits, reserved QPN 0/1, MTU not 256..4096 power of two, zero GID,
	// UDP source port outside 0xC000-0xFFFF, Addr+Len overflowing). Returned
	// for a local endpoint before any I/O, and for a remote one after decoding.
	ErrInvalidEndpoint = errors.New("invalid endpoint")
	// ErrPeerClosed: the peer closed or reset the connection before the
	// exchange finished (truncated message, missing ready byte).
	ErrPeerClosed = errors.New("peer closed the connection mid-exchange")
	// ErrRejected: the peer read our endpoint and refused it (it failed the
	// peer's validation, or the peer's OnRemote hook failed, for example
	// moving its QP to RTR).
	ErrRejected = errors.New("peer rejected our endpoint")
	// ErrServerClosed: Accept on a Server whose listener is closed.
	ErrServerClosed = errors.New("server closed")
	// ErrTimeout: the exchange (or Dial's retries, or Listen's wait for a
	// peer) ran past Options.Timeout or the context's deadline. It wraps
	// context.DeadlineExceeded, so errors.Is(err, context.DeadlineExceeded)
	// holds as well.
	ErrTimeout = fmt.Errorf("connection setup timed out: %w", context.DeadlineExceeded)
)
