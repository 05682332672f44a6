package collective

import (
	"context"
	"fmt"
	"sync"
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
	// inline: the call was issued under Inline on an idle communicator;
	// the first Wait or Test runs it on its own goroutine.
	inline bool
	comm   *Communicator
	once   sync.Once
}

// Inline marks ctx so that an operation issued with it on an idle
// communicator (nothing queued or running) runs on the goroutine that
// first waits for or tests its Handle, instead of the communicator's
// worker: two goroutine hand-offs fewer, which is most of a small
// collective's time. Until then the communicator executes nothing else
// (later operations queue behind it), so wait for such a handle before
// issuing more from another goroutine. The blocking methods (AllReduce,
// ...) use it.
func Inline(ctx context.Context) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithValue(ctx, inlineKey{}, true)
}

// inlineKey marks an Inline context.
type inlineKey struct{}

// runInline runs an inline operation once, from Wait or Test.
func (h *Handle) runInline() {
	if h.inline {
		h.once.Do(func() { h.comm.runInline(h) })
	}
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
	h.runInline()
	select {
	case <-h.c.Done():
	case <-ctx.Done():
		return fmt.Errorf("wait for %v #%d: %w", h.kind, h.seq, ctx.Err())
	}
	_, err := h.c.Test()
	return err
}

// Test reports whether the operation completed and, if so, its error. An
// Inline operation runs to its end inside its first Test.
func (h *Handle) Test() (done bool, err error) {
	h.runInline()
	return h.c.Test()
}

// Done is closed when the operation completes (an Inline one only after
// Wait or Test ran it).
func (h *Handle) Done() <-chan struct{} { return h.c.Done() }

func (h *Handle) finish(err error) {
	h.ctx = nil
	h.call = call{}
	h.c.Complete(err)
}
