package rdma

import (
	"context"
	"errors"
)

// Device is an RDMA device: a NIC, or the software engine on a netdev.
type Device interface {
	// Name is the device name (for example "rxe-eth0" style names of the
	// software engine, or "mlx5_0").
	Name() string
	// GIDs is the GID table: one per IP address of the netdev, IPv4
	// addresses mapped. Index i is the SGIDIndex of an AddressVector.
	GIDs() []GID
	AllocPD() (PD, error)
	// CreateCQ makes a completion queue with room for depth completions.
	CreateCQ(depth int) (CQ, error)
	Close() error
}

// PD is a protection domain: memory regions and queue pairs that belong
// together. A QP reaches only the regions of its own PD.
type PD interface {
	// RegisterMR registers buf with the given access. The memory must stay
	// alive and in place until Deregister; Go heap memory does not move.
	RegisterMR(buf []byte, access AccessFlags) (MR, error)
	CreateQP(attr QPInitAttr) (QP, error)
	Dealloc() error
}

// MR is a registered memory region.
type MR interface {
	// Addr is the virtual address of Buf()[0], the base of remote and SGE
	// addresses.
	Addr() uint64
	Len() int
	LKey() uint32
	RKey() uint32
	Access() AccessFlags
	Buf() []byte
	// Deregister revokes every access through the region's keys at once:
	// requests that use them after it returns fail with an access error.
	Deregister() error
}

// CQ is a completion queue.
type CQ interface {
	// Poll takes up to len(wcs) completions without blocking and returns
	// their count. Once the queue overflowed, Poll returns ErrCQOverflow
	// (completions were lost; the QPs using it are in error).
	Poll(wcs []WC) (int, error)
	// Wait blocks until at least one completion is available or ctx is
	// done, then polls.
	Wait(ctx context.Context, wcs []WC) (int, error)
	Close() error
}

// Poller is a Device whose receive processing a waiting application
// goroutine may run itself, as a program polls a NIC's completion queue:
// with a software engine (rocev2) the packets that complete its request
// are then processed, and the request completed, on its own goroutine,
// with no hand-off between goroutines on the way (run to completion).
//
// A waiter calls StartPolling; when it returns true it calls Poll in a
// loop (then CQ.Poll) until what it waits for completed, and then
// StopPolling. False means do not spin (the port's busy-poll rule says
// no, or the device has nothing to poll): wait on the CQ instead.
type Poller interface {
	StartPolling() bool
	// Poll runs the receive path once without waiting; completions it
	// produced are in their CQs when it returns. It reports whether it
	// processed anything (false also when another goroutine was at it).
	Poll() bool
	StopPolling()
}

// ReadyCQ is a CQ that signals that completions may be waiting without
// taking them, for a consumer that must take and handle completions under
// its own lock (so that two consumers never handle them out of order).
type ReadyCQ interface {
	CQ
	// Ready has a value after a completion was added.
	Ready() <-chan struct{}
}

// Errors a caller can act on.
var (
	ErrQueueFull     = errors.New("rdma: work queue full")
	ErrInvalidWR     = errors.New("rdma: invalid work request")
	ErrInvalidState  = errors.New("rdma: invalid QP state transition")
	ErrInvalidAttr   = errors.New("rdma: invalid QP attribute")
	ErrCQOverflow    = errors.New("rdma: completion queue overflow")
	ErrInvalidKey    = errors.New("rdma: invalid memory key")
	ErrClosed        = errors.New("rdma: closed")
	ErrNotSupported  = errors.New("rdma: not supported")
	ErrTimeout       = errors.New("rdma: timeout")
	ErrBadRegion     = errors.New("rdma: memory region outside registered memory")
	ErrResourceLimit = errors.New("rdma: resource limit reached")
)
