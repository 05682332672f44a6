package shm

import "github.com/opennetworks/onetdp/collective"

// Tag is collective.Tag, short here.
type Tag = collective.Tag

// request is one Isend or Irecv. Whoever removes it from the queue it sits
// in (posted receives, send queue) completes it, exactly once.
type request struct {
	collective.Completion

	tag Tag
	buf []byte
	// send side: the record header (tag, length; little-endian) and how
	// many bytes of header+payload+padding are in the ring.
	hdr [recordHdr]byte
	off uint64
}

var _ collective.Request = (*request)(nil)

func newRequest(tag Tag, b []byte) *request {
	r := &request{tag: tag, buf: b}
	r.Init()
	return r
}

func completed(err error) *request {
	r := &request{}
	r.Init()
	r.Complete(err)
	return r
}
