package collective

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Completion is the part every Request implementation shares: a done
// channel and the error it completed with. Transports embed it in their
// request type, call Init once when they make the request and Complete
// when it finishes; Wait, Test and Done then implement Request.
//
// Complete may be called from any goroutine, any number of times: the
// first call wins and the later ones are ignored. Wait, Test and Done may
// be called from any goroutine. A Completion must not be copied after
// Init.
type Completion struct {
	done      chan struct{}
	completed atomic.Bool
	err       error // written once, before done closes
}

var _ Request = (*Completion)(nil)

// Init prepares c; call it before c is shared.
func (c *Completion) Init() { c.done = make(chan struct{}) }

// Complete finishes c with err (nil for success). It reports whether this
// call did so (false when c was already complete).
func (c *Completion) Complete(err error) bool {
	if !c.completed.CompareAndSwap(false, true) {
		return false
	}
	c.err = err
	close(c.done)
	return true
}

// Done is closed once c is complete.
func (c *Completion) Done() <-chan struct{} { return c.done }

// Wait implements Request: it returns the error c completed with, or an
// error wrapping ErrTimeout and ctx's error when ctx ends first.
func (c *Completion) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	default:
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("wait for request: %w: %w", ErrTimeout, ctx.Err())
	}
}

// Test implements Request.
func (c *Completion) Test() (done bool, err error) {
	select {
	case <-c.done:
		return true, c.err
	default:
		return false, nil
	}
}
