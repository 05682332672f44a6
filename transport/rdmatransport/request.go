package rdmatransport

import (
	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/rdma"
)

// request is one Isend or Irecv. Its fields other than the Completion
// belong to the transport's lock.
type request struct {
	collective.Completion

	peer int
	tag  collective.Tag
	buf  []byte
	send bool
	// id is the rendezvous id in the transport's sends or recvs table, 0
	// when none.
	id uint32
	// mr registers buf for a rendezvous (a reference in the cache).
	mr rdma.MR
	// remote side of a rendezvous WRITE, from the CTS.
	raddr uint64
	rkey  uint32
	rid   uint32
	// finished is set (under the lock) by Transport.complete, which
	// releases the id and the registration once.
	finished bool
}

var _ collective.Request = (*request)(nil)

func newRequest(peer int, tag collective.Tag, b []byte, send bool) *request {
	r := &request{peer: peer, tag: tag, buf: b, send: send}
	r.Init()
	return r
}

// idTable hands out 32-bit ids for requests in a rendezvous: 20 bits of
// index, 12 of generation, so that a stale id (a CTS or immediate for a
// request that failed meanwhile) finds nothing. Id 0 is never handed out.
type idTable struct {
	reqs []*request
	gens []uint16
	free []uint32
}

const (
	idIndexBits = 20
	idIndexMask = 1<<idIndexBits - 1
	idGenMask   = 1<<(32-idIndexBits) - 1
)

func (t *idTable) put(r *request) (uint32, bool) {
	var idx uint32
	if n := len(t.free); n > 0 {
		idx, t.free = t.free[n-1], t.free[:n-1]
	} else {
		if len(t.reqs) > idIndexMask {
			return 0, false
		}
		idx = uint32(len(t.reqs))
		t.reqs = append(t.reqs, nil)
		t.gens = append(t.gens, 1)
	}
	t.reqs[idx] = r
	return uint32(t.gens[idx])<<idIndexBits | idx, true
}

func (t *idTable) get(id uint32) *request {
	idx := id & idIndexMask
	if int(idx) >= len(t.reqs) || uint32(t.gens[idx]) != id>>idIndexBits {
		return nil
	}
	return t.reqs[idx]
}

func (t *idTable) del(id uint32) {
	idx := id & idIndexMask
	if int(idx) >= len(t.reqs) || uint32(t.gens[idx]) != id>>idIndexBits {
		return
	}
	t.reqs[idx] = nil
	g := (t.gens[idx] + 1) & idGenMask
	if g == 0 {
		g = 1
	}
	t.gens[idx] = g
	t.free = append(t.free, idx)
}

// each calls fn for every request in the table (fn may delete it).
func (t *idTable) each(fn func(id uint32, r *request)) {
	for i, r := range t.reqs {
		if r != nil {
			fn(uint32(t.gens[i])<<idIndexBits|uint32(i), r)
		}
	}
}
