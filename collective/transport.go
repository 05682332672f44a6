package collective

import (
	"context"
	"errors"
)

// Errors a caller can act on. Transports and the Communicator wrap them.
var (
	// ErrTimeout: an operation did not complete within its timeout. The
	// error text names the operation, its sequence number and the ranks
	// that never arrived.
	ErrTimeout = errors.New("collective: timeout")
	// ErrPeerLost: a peer's connection broke or the peer closed.
	ErrPeerLost = errors.New("collective: peer lost")
	// ErrAborted: the communicator (here or on another rank) was aborted.
	ErrAborted = errors.New("collective: aborted")
	// ErrClosed: the transport or communicator is closed.
	ErrClosed = errors.New("collective: closed")
	// ErrSizeMismatch: a message's length differs from the receive
	// buffer's, or ranks disagree on an operation's arguments.
	ErrSizeMismatch = errors.New("collective: size mismatch")
	// ErrInvalidArgument: bad rank, count, type, operation or buffer.
	ErrInvalidArgument = errors.New("collective: invalid argument")
	// ErrNotSupported: the transport or algorithm cannot do what was asked.
	ErrNotSupported = errors.New("collective: not supported")
)

// Tag tells apart concurrent messages between the same two ranks. The
// Communicator derives tags from the operation's sequence number and the
// algorithm's step; user Send/Recv use their own tag space.
type Tag uint64

// Transport moves byte messages between the ranks of one group. It is the
// only thing a Communicator needs from the layers below.
//
// Contract:
//   - Messages from one rank to another with the same tag are matched to
//     receives with that tag in the order they were sent and posted;
//     messages with different tags are independent.
//   - A receive takes exactly len(b) bytes: a message of another length
//     completes the receive with an error wrapping ErrSizeMismatch.
//     Zero-length messages are allowed and still synchronize.
//   - Isend and Irecv do not block on the peer: they return a Request at
//     once. The buffer belongs to the transport until the Request
//     completes (Wait returned, or Test reported done).
//   - A transport may be used from many goroutines at once.
//   - Close fails every pending Request with ErrClosed here and makes
//     peers' pending and future requests to this rank fail with
//     ErrPeerLost (no hang).
type Transport interface {
	// Rank is this process's rank, 0..Size()-1.
	Rank() int
	// Size is the number of ranks in the group.
	Size() int
	// Isend starts sending b to peer under tag.
	Isend(peer int, tag Tag, b []byte) (Request, error)
	// Irecv starts receiving a message from peer under tag into b.
	Irecv(peer int, tag Tag, b []byte) (Request, error)
	// Close releases the transport; see the contract above.
	Close() error
}

// Request is one pending send or receive.
type Request interface {
	// Wait blocks until the request completes or ctx ends. After ctx ends
	// the request may still complete later; the caller must not reuse its
	// buffer until the transport is closed.
	Wait(ctx context.Context) error
	// Test reports whether the request completed and, if so, its error.
	Test() (done bool, err error)
}

// TransportInfo is what a transport can say about itself, for debug
// output and the cost model's first guess before calibration.
type TransportInfo struct {
	// Name is a short label: "tcp", "rocev2/af_xdp", "adaptive", "mem".
	Name string
	// Host identifies the machine (or lab host) of each rank, indexed by
	// rank; ranks with equal Host share memory. Empty when unknown.
	Host []string
}

// Describer is implemented by transports that can describe themselves.
type Describer interface {
	Info() TransportInfo
}
