package rdmatransport

import (
	"context"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/internal/spin"
	"github.com/opennetworks/onetdp/rdma"
)

// request is one Isend or Irecv. Its fields other than the Completion
// belong to the transport's lock.
type request struct {
	collective.Completion
	t *Transport

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

func (t *Transport) newRequest(peer int, tag collective.Tag, b []byte, send bool) *request {
	r := &request{t: t, peer: peer, tag: tag, buf: b, send: send}
	r.Init()
	return r
}

// pollIdle is how long a waiter that polls goes on without anything
// arriving before it parks (and leaves the packets to the engine's own
// goroutine).
const pollIdle = 200 * time.Microsecond

// Wait implements collective.Request. On a device that lets waiters poll
// (rdma.Poller, with a CQ the transport can share: rdma.ReadyCQ) it runs
// the receive path and the completions itself, so that a small message
// completes with no goroutine hand-off, for as long as traffic keeps
// arriving (pollIdle); then, or where the device says not to spin, it
// parks until the progress goroutine completes the request.
func (r *request) Wait(ctx context.Context) error {
	if done, err := r.Test(); done {
		return err
	}
	if t := r.t; t.poller != nil && t.poller.StartPolling() {
		r.poll(ctx)
		t.poller.StopPolling()
	}
	return r.Completion.Wait(ctx)
}

// poll drives the transport until r completes, ctx ends or nothing has
// arrived for pollIdle.
func (r *request) poll(ctx context.Context) {
	var wcs [16]rdma.WC
	done := r.Done()
	last := time.Now()
	for i := 1; ; i++ {
		if r.t.drive(wcs[:]) {
			i = 0
		}
		select {
		case <-done:
			return
		default:
		}
		if i%64 == 0 {
			now := time.Now()
			if i == 0 {
				last = now
			} else if now.Sub(last) > pollIdle || ctx.Err() != nil {
				return
			}
			spin.Idle(now.Sub(last))
		}
	}
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
