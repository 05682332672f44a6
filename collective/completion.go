package collective

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Completion is the part every Request implementation shares: the error
// it completed with and, for waiters that park, a done channel. Transports
// embed it in their request type, call Init once when they make the
// request and Complete when it finishes; Wait, Test and Done then
// implement Request.
//
// Complete may be called from any goroutine, any number of times: the
// first call wins and the later ones are ignored. Wait, Test and Done may
// be called from any goroutine. The channel is made only when a waiter
// asks for it (Done, or Wait on a request not yet complete): a request
// that a polling waiter finds complete costs no channel. A Completion
// must not be copied after Init.
type Completion struct {
	completed atomic.Bool
	err       error // written once, before completed is set
	mu        sync.Mutex
	done      chan struct{} // made by Done; closed by Complete
}

var _ Request = (*Completion)(nil)

// Init prepares c; call it before c is shared. (The zero Completion is
// ready too; Init stays for the transports that call it.)
func (c *Completion) Init() {}

// Complete finishes c with err (nil for success). It reports whether this
// call did so (false when c was already complete).
func (c *Completion) Complete(err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.completed.Load() {
		return false
	}
	c.err = err
	c.completed.Store(true)
	if c.done != nil {
		close(c.done)
	}
	return true
}

// Done is closed once c is complete.
func (c *Completion) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.completed.Load() {
			close(c.done)
		}
	}
	return c.done
}

// Wait implements Request: it returns the error c completed with, or an
// error wrapping ErrTimeout and ctx's error when ctx ends first.
func (c *Completion) Wait(ctx context.Context) error {
	if c.completed.Load() {
		return c.err
	}
	select {
	case <-c.Done():
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("wait for request: %w: %w", ErrTimeout, ctx.Err())
	}
}

// Test implements Request.
func (c *Completion) Test() (done bool, err error) {
	if c.completed.Load() {
		return true, c.err
	}
	return false, nil
}
