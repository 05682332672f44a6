package tcp

import (
	"context"
	"fmt"

	"github.com/opennetworks/onetdp/collective"
)

const headerLen = 16

// request is one Isend or Irecv. Whoever removes it from the queue it sits
// in (posted receives, send queue) completes it, exactly once.
type request struct {
	done chan struct{}
	err  error // written before done closes

	tag Tag
	buf []byte
	// send side: the wire header and how much of header+buf is written.
	hdr [headerLen]byte
	off int
}

// Tag is collective.Tag, short here.
type Tag = collective.Tag

var _ collective.Request = (*request)(nil)

func newRequest(tag Tag, b []byte) *request {
	return &request{done: make(chan struct{}), tag: tag, buf: b}
}

func (r *request) complete(err error) {
	r.err = err
	close(r.done)
}

// completed returns a request that is already done with err.
func completed(err error) *request {
	r := &request{done: make(chan struct{})}
	r.complete(err)
	return r
}

// Wait implements collective.Request.
func (r *request) Wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	default:
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return fmt.Errorf("tcp: wait: %w: %w", collective.ErrTimeout, ctx.Err())
	}
}

// Test implements collective.Request.
func (r *request) Test() (bool, error) {
	select {
	case <-r.done:
		return true, r.err
	default:
		return false, nil
	}
}
