package collective

import (
	"context"
	"fmt"
)

// Handle is a non-blocking operation in flight, returned by the I-methods
// (IAllReduce, ...). The buffers passed to the operation belong to the
// communicator until Wait returns nil or Test reports done.
type Handle struct {
	kind OpKind
	seq  uint64
	ctx  context.Context
	call call
	done chan struct{}
	err  error // written once before done closes
}

// Op is the operation.
func (h *Handle) Op() OpKind { return h.kind }

// Seq is the operation's sequence number: collectives count 1, 2, ... in
// issue order (the same on every rank); Send/Recv count separately.
func (h *Handle) Seq() uint64 { return h.seq }

// Wait blocks until the operation completes and returns its error, or
// until ctx ends (then the operation keeps running: wait again later).
func (h *Handle) Wait(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case <-h.done:
		return h.err
	case <-ctx.Done():
		return fmt.Errorf("wait for %v #%d: %w", h.kind, h.seq, ctx.Err())
	}
}

// Test reports whether the operation completed and, if so, its error.
func (h *Handle) Test() (done bool, err error) {
	select {
	case <-h.done:
		return true, h.err
	default:
		return false, nil
	}
}

// Done is closed when the operation completes.
func (h *Handle) Done() <-chan struct{} { return h.done }

func (h *Handle) finish(err error) {
	h.err = err
	h.ctx = nil
	h.call = call{}
	close(h.done)
}
