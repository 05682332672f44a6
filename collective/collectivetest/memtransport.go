package collectivetest

import (
	"fmt"
	"sync"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

// GroupOptions configure an in-memory group. Fill them before NewGroup.
type GroupOptions struct {
	// Delay holds every message back this long after it is sent (a
	// latency, not a bandwidth limit).
	Delay time.Duration
	// Rendezvous makes a send complete only once a receive took it (as
	// an RDMA transport without buffering does), which finds algorithms
	// that rely on the transport buffering. Default: sends copy and
	// complete at once.
	Rendezvous bool
	// Hosts, when of length n, is reported through collective.Describer
	// as each rank's host.
	Hosts []string
	// Name is the transport name Info reports; "mem" when empty.
	Name string
}

// Transport is one rank's end of an in-memory group.
type Transport struct {
	g    *memGroup
	rank int
}

var (
	_ collective.Transport = (*Transport)(nil)
	_ collective.Describer = (*Transport)(nil)
	_ collective.Request   = (*memReq)(nil)
)

type memKey struct {
	src, dst int
	tag      collective.Tag
}

type memMsg struct {
	data    []byte
	sreq    *memReq // rendezvous: completes when taken
	readyAt time.Time
}

type memQueue struct {
	sends []*memMsg
	recvs []*memReq
}

type memGroup struct {
	opts   GroupOptions
	n      int
	mu     sync.Mutex
	closed []bool
	queues map[memKey]*memQueue
}

type memReq struct {
	collective.Completion
	buf []byte
}

// NewGroup returns n connected in-memory transports, rank i at index i.
func NewGroup(n int, opts GroupOptions) []collective.Transport {
	g := &memGroup{opts: opts, n: n, closed: make([]bool, n), queues: map[memKey]*memQueue{}}
	ts := make([]collective.Transport, n)
	for i := range ts {
		ts[i] = &Transport{g: g, rank: i}
	}
	return ts
}

// Rank implements collective.Transport.
func (t *Transport) Rank() int { return t.rank }

// Size implements collective.Transport.
func (t *Transport) Size() int { return t.g.n }

// Info implements collective.Describer.
func (t *Transport) Info() collective.TransportInfo {
	name := t.g.opts.Name
	if name == "" {
		name = "mem"
	}
	info := collective.TransportInfo{Name: name}
	if len(t.g.opts.Hosts) == t.g.n {
		info.Host = append([]string(nil), t.g.opts.Hosts...)
	}
	return info
}

func newReq(buf []byte) *memReq {
	r := &memReq{buf: buf}
	r.Init()
	return r
}

// completeAt completes r at t (now if t passed).
func (r *memReq) completeAt(t time.Time, err error) {
	if d := time.Until(t); d > 0 {
		time.AfterFunc(d, func() { r.Complete(err) })
		return
	}
	r.Complete(err)
}

func (g *memGroup) check(rank, peer int) error {
	if g.closed[rank] {
		return fmt.Errorf("mem transport rank %d: %w", rank, collective.ErrClosed)
	}
	if peer < 0 || peer >= g.n {
		return fmt.Errorf("mem transport rank %d: peer %d of %d: %w", rank, peer, g.n, collective.ErrInvalidArgument)
	}
	return nil
}

// Isend implements collective.Transport.
func (t *Transport) Isend(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	g := t.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.check(t.rank, peer); err != nil {
		return nil, err
	}
	r := newReq(b)
	if g.closed[peer] {
		r.Complete(fmt.Errorf("mem transport: send from rank %d to rank %d: %w", t.rank, peer, collective.ErrPeerLost))
		return r, nil
	}
	m := &memMsg{readyAt: time.Now().Add(g.opts.Delay)}
	if g.opts.Rendezvous {
		m.data, m.sreq = b, r
	} else {
		m.data = append([]byte(nil), b...)
		r.Complete(nil)
	}
	k := memKey{t.rank, peer, tag}
	q := g.queue(k)
	if len(q.recvs) > 0 {
		rr := q.recvs[0]
		q.recvs[0] = nil
		q.recvs = q.recvs[1:]
		g.deliver(m, rr)
		g.gc(k, q)
		return r, nil
	}
	q.sends = append(q.sends, m)
	return r, nil
}

// Irecv implements collective.Transport.
func (t *Transport) Irecv(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	g := t.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.check(t.rank, peer); err != nil {
		return nil, err
	}
	r := newReq(b)
	k := memKey{peer, t.rank, tag}
	q := g.queue(k)
	if len(q.sends) > 0 {
		m := q.sends[0]
		q.sends[0] = nil
		q.sends = q.sends[1:]
		g.deliver(m, r)
		g.gc(k, q)
		return r, nil
	}
	if g.closed[peer] {
		r.Complete(fmt.Errorf("mem transport: receive on rank %d from rank %d: %w", t.rank, peer, collective.ErrPeerLost))
		g.gc(k, q)
		return r, nil
	}
	q.recvs = append(q.recvs, r)
	return r, nil
}

func (g *memGroup) queue(k memKey) *memQueue {
	q := g.queues[k]
	if q == nil {
		q = &memQueue{}
		g.queues[k] = q
	}
	return q
}

func (g *memGroup) gc(k memKey, q *memQueue) {
	if len(q.sends) == 0 && len(q.recvs) == 0 {
		delete(g.queues, k)
	}
}

// deliver matches message m with receive r; called with g.mu held.
func (g *memGroup) deliver(m *memMsg, r *memReq) {
	var err error
	if len(m.data) != len(r.buf) {
		err = fmt.Errorf("mem transport: message of %d bytes into a %d-byte receive: %w", len(m.data), len(r.buf), collective.ErrSizeMismatch)
	} else {
		copy(r.buf, m.data)
	}
	if m.sreq != nil {
		m.sreq.completeAt(m.readyAt, nil)
	}
	r.completeAt(m.readyAt, err)
}

// Close implements collective.Transport: this rank's pending requests
// fail with ErrClosed; peers' pending receives from it and sends waiting
// for it fail with ErrPeerLost. Messages it sent before closing can still
// be received.
func (t *Transport) Close() error {
	g := t.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed[t.rank] {
		return nil
	}
	g.closed[t.rank] = true
	closed := fmt.Errorf("mem transport rank %d: %w", t.rank, collective.ErrClosed)
	lost := fmt.Errorf("mem transport: rank %d closed: %w", t.rank, collective.ErrPeerLost)
	for k, q := range g.queues {
		switch {
		case k.dst == t.rank:
			for _, r := range q.recvs {
				r.Complete(closed)
			}
			for _, m := range q.sends {
				if m.sreq != nil {
					m.sreq.Complete(lost)
				}
			}
			delete(g.queues, k)
		case k.src == t.rank:
			for _, r := range q.recvs {
				r.Complete(lost)
			}
			q.recvs = nil
			kept := q.sends[:0]
			for _, m := range q.sends {
				if m.sreq != nil {
					m.sreq.Complete(closed)
					continue
				}
				kept = append(kept, m)
			}
			q.sends = kept
			g.gc(k, q)
		}
	}
	return nil
}
