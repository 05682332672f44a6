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
	c    Completion
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
	case <-h.c.Done():
	case <-ctx.Done():
		return fmt.Errorf("wait for %v #%d: %w", h.kind, h.seq, ctx.Err())
	}
	_, err := h.c.Test()
	return err
}

// Test reports whether the operation completed and, if so, its error.
func (h *Handle) Test() (done bool, err error) { return h.c.Test() }

// Done is closed when the operation completes.
func (h *Handle) Done() <-chan struct{} { return h.c.Done() }

func (h *Handle) finish(err error) {
	h.ctx = nil
	h.call = call{}
	h.c.Complete(err)
}
