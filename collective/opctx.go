package collective

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// opCtx is the context an operation's messages wait under: the caller's
// context, ended also by the communicator's abort or close (Communicator
// life) and by the operation's deadline (the caller's, else
// Options.Timeout from the start).
//
// It is built for the common case of a small operation whose waiters
// poll (the transports' Wait calls Err between polls and Done only before
// it parks): it is one allocation, and Err checks the three sources
// itself. The channel, the timer and the two watchers that a closing Done
// needs are made by the first Done call. context.WithCancelCause,
// AfterFunc and WithTimeout per operation, which it replaces, were a
// quarter of a small allreduce's CPU time (BenchmarkAllReduceSmall).
//
// Cause, not context.Cause, reports why it ended (the latter cannot see
// into a context type of this package).
type opCtx struct {
	parent   context.Context
	life     context.Context
	deadline time.Time

	ended atomic.Bool // cause is set
	mu    sync.Mutex
	cause error
	err   error         // context.Canceled or context.DeadlineExceeded
	done  chan struct{} // made by the first Done
	stops []func() bool // what Done armed, for release
}

var _ context.Context = (*opCtx)(nil)

// newOpCtx starts an operation's context at now.
func newOpCtx(parent, life context.Context, timeout time.Duration, now time.Time) *opCtx {
	o := &opCtx{parent: parent, life: life}
	if d, ok := parent.Deadline(); ok {
		o.deadline = d
	} else {
		o.deadline = now.Add(timeout)
	}
	return o
}

// Deadline implements context.Context.
func (o *opCtx) Deadline() (time.Time, bool) { return o.deadline, true }

// Value implements context.Context: the caller's values.
func (o *opCtx) Value(key any) any { return o.parent.Value(key) }

// Err implements context.Context. It looks at the caller's context, the
// communicator's and the clock itself, so that a waiter that only polls
// sees the end without Done.
func (o *opCtx) Err() error {
	if !o.ended.Load() {
		o.check()
		if !o.ended.Load() {
			return nil
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// Cause is why the operation's context ended (nil while it has not):
// context.DeadlineExceeded at the deadline, the communicator's abort or
// close cause, or the caller's context's cause.
func (o *opCtx) Cause() error {
	if o.Err() == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cause
}

// check ends o if one of its sources ended.
func (o *opCtx) check() {
	switch {
	case o.life.Err() != nil:
		o.end(context.Cause(o.life), context.Canceled)
	case o.parent.Err() != nil:
		o.end(context.Cause(o.parent), o.parent.Err())
	case !time.Now().Before(o.deadline):
		o.end(context.DeadlineExceeded, context.DeadlineExceeded)
	}
}

// end records the first cause and closes Done if it was made.
func (o *opCtx) end(cause, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended.Load() {
		return
	}
	o.cause, o.err = cause, err
	o.ended.Store(true)
	if o.done != nil {
		close(o.done)
	}
}

// Done implements context.Context. The first call arms the deadline timer
// and the watchers of the caller's and the communicator's contexts.
func (o *opCtx) Done() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done != nil {
		return o.done
	}
	o.done = make(chan struct{})
	if o.ended.Load() {
		close(o.done)
		return o.done
	}
	t := time.AfterFunc(time.Until(o.deadline), func() { o.end(context.DeadlineExceeded, context.DeadlineExceeded) })
	o.stops = append(o.stops, t.Stop,
		context.AfterFunc(o.parent, func() { o.end(context.Cause(o.parent), o.parent.Err()) }),
		context.AfterFunc(o.life, func() { o.end(context.Cause(o.life), context.Canceled) }))
	return o.done
}

// release ends o when the operation returns (as a cancel function would)
// and stops what Done armed.
func (o *opCtx) release() {
	o.end(context.Canceled, context.Canceled)
	o.mu.Lock()
	stops := o.stops
	o.stops = nil
	o.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
}
