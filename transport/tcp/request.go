package tcp

import (
	"github.com/opennetworks/onetdp/collective"
)

const headerLen = 16

// request is one Isend or Irecv. Whoever removes it from the queue it sits
// in (posted receives, send queue) completes it, exactly once.
type request struct {
	collective.Completion

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
	r := &request{tag: tag, buf: b}
	r.Init()
	return r
}

// completed returns a request that is already done with err.
func completed(err error) *request {
	r := newRequest(0, nil)
	r.Complete(err)
	return r
}
