package rdmatransport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/rdma"
)

// Transport implements collective.Transport over one RC queue pair per
// peer. It is safe for use from many goroutines at once.
type Transport struct {
	opts     Options
	slotSize int
	reserve  int // credits eager data leaves for control messages
	dev      rdma.Device
	pd       rdma.PD
	cq       rdma.CQ
	hosts    []string
	// poller and readyCQ are the device and CQ as rdma.Poller and
	// rdma.ReadyCQ, both set or both nil: waiters then poll (request.Wait).
	poller  rdma.Poller
	readyCQ rdma.ReadyCQ

	mu       sync.Mutex
	peers    []*peer // nil at this rank
	sends    idTable // rendezvous sends: RTS sent, waiting for CTS or the WRITE
	recvs    idTable // rendezvous receives: CTS sent, waiting for the WRITE
	mrc      *mrCache
	freeTags []*tagQueue
	self     map[collective.Tag]*selfQueue
	closed   bool // Close began: no new requests
	// byesPending counts goodbyes not yet acknowledged; byesDone is closed
	// when it reaches zero during Close.
	byesPending int
	byesDone    chan struct{}
	// scratch for posting, used under mu
	swr  [maxChunks]rdma.SendWR
	ssge [maxChunks]rdma.SGE

	cancel       context.CancelFunc
	progressDone chan struct{}
	stats        Stats
}

// Stats count what the transport did. The transport updates them with
// atomic adds; anyone may read them at any time.
type Stats struct {
	EagerSends, EagerRecvs atomic.Uint64 // messages copied through slots
	RendezvousSends        atomic.Uint64 // messages written straight into the receiver's buffer
	RendezvousRecvs        atomic.Uint64
	// Converted counts eager-sized messages sent by rendezvous because the
	// peer's eager credits ran low (its slots hold unreceived messages).
	Converted      atomic.Uint64
	CreditMessages atomic.Uint64 // explicit credit returns sent
	SizeMismatches atomic.Uint64
	PeersLost      atomic.Uint64
	Malformed      atomic.Uint64 // messages from a peer that made no sense, dropped
}

var (
	_ collective.Transport = (*Transport)(nil)
	_ collective.Describer = (*Transport)(nil)
)

// writeChunk is the most bytes one RDMA WRITE carries (the contract's
// request limit is 2 GiB); maxChunks bounds a message's WRITEs.
const (
	writeChunk = 1 << 30
	maxChunks  = 16
)

// WR ids: kind << 56 | peer << 32 | index (slot or rendezvous id).
const (
	wrRecv  = 1
	wrSend  = 2
	wrWrite = 3
)

func wrID(kind, peer int, idx uint32) uint64 {
	return uint64(kind)<<56 | uint64(peer)<<32 | uint64(idx)
}

// Rank implements collective.Transport.
func (t *Transport) Rank() int { return t.opts.Rank }

// Size implements collective.Transport.
func (t *Transport) Size() int { return t.opts.Size }

// Info implements collective.Describer.
func (t *Transport) Info() collective.TransportInfo {
	return collective.TransportInfo{Name: t.opts.Name, Host: append([]string(nil), t.hosts...)}
}

// Device is the device the transport runs on.
func (t *Transport) Device() rdma.Device { return t.dev }

// Stats returns the live counters.
func (t *Transport) Stats() *Stats { return &t.stats }

func (t *Transport) checkArgs(what string, peer int, b []byte) error {
	if peer < 0 || peer >= t.opts.Size {
		return fmt.Errorf("rdmatransport: %s rank %d of %d: %w", what, peer, t.opts.Size, collective.ErrInvalidArgument)
	}
	if len(b) > maxChunks*writeChunk || len(b) > 1<<32-1 {
		return fmt.Errorf("rdmatransport: %s rank %d: message of %d bytes is too long: %w", what, peer, len(b), collective.ErrInvalidArgument)
	}
	return nil
}

func (t *Transport) closedErr(what string, peer int) error {
	return fmt.Errorf("rdmatransport: %s rank %d: %w", what, peer, collective.ErrClosed)
}

// Isend implements collective.Transport. Messages up to Options.EagerMax
// bytes are copied and sent at once (credits allowing); larger ones wait
// for the receiver's clear-to-send and are written straight from b.
func (t *Transport) Isend(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	if err := t.checkArgs("send to", peer, b); err != nil {
		return nil, err
	}
	r := t.newRequest(peer, tag, b, true)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, t.closedErr("send to", peer)
	}
	if peer == t.opts.Rank {
		t.selfSend(r)
		return r, nil
	}
	p := t.peers[peer]
	if p.lost != nil {
		t.complete(r, p.lost)
		return r, nil
	}
	kind := outRTS
	if len(b) <= t.opts.EagerMax {
		kind = outEager
	}
	p.out.push(outItem{kind: kind, req: r, tag: tag})
	t.pump(p)
	return r, nil
}

// Irecv implements collective.Transport.
func (t *Transport) Irecv(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	if err := t.checkArgs("receive from", peer, b); err != nil {
		return nil, err
	}
	r := t.newRequest(peer, tag, b, false)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, t.closedErr("receive from", peer)
	}
	if peer == t.opts.Rank {
		t.selfRecv(r)
		return r, nil
	}
	p := t.peers[peer]
	q := t.tagQueue(p, tag, true)
	if q.rhead == len(q.recvs) {
		if a, ok := q.popArrival(); ok {
			t.dropIfEmpty(p, tag, q)
			t.match(p, r, a)
			t.pump(p)
			return r, nil
		}
	}
	if p.lost != nil {
		t.dropIfEmpty(p, tag, q)
		t.complete(r, p.lost)
		return r, nil
	}
	q.recvs = append(q.recvs, r)
	return r, nil
}

// match pairs a receive with the message that arrived for it.
func (t *Transport) match(p *peer, r *request, a arrival) {
	if a.kind == msgEager {
		t.deliverEager(p, r, int(a.slot), a.length)
		return
	}
	t.matchRTS(p, r, a.length, a.sendID)
}

func (t *Transport) mismatch(r *request, got uint32) error {
	t.stats.SizeMismatches.Add(1)
	return fmt.Errorf("rdmatransport: receive from rank %d tag %d: message of %d bytes for a buffer of %d: %w",
		r.peer, r.tag, got, len(r.buf), collective.ErrSizeMismatch)
}

// deliverEager copies an eager message out of its slot into r and gives
// the slot back.
func (t *Transport) deliverEager(p *peer, r *request, slot int, n uint32) {
	if int(n) != len(r.buf) {
		t.repost(p, slot)
		t.complete(r, t.mismatch(r, n))
		return
	}
	off := slot*t.slotSize + hdrLen
	copy(r.buf, p.recvMR.Buf()[off:off+int(n)])
	t.repost(p, slot)
	t.stats.EagerRecvs.Add(1)
	t.complete(r, nil)
}

// matchRTS answers a ready-to-send: a clear-to-send into r's buffer, or a
// reject when the lengths differ.
func (t *Transport) matchRTS(p *peer, r *request, n uint32, sendID uint32) {
	if int(n) != len(r.buf) {
		if p.lost == nil {
			p.out.push(outItem{kind: outReject, id: sendID, length: uint32(len(r.buf))})
		}
		t.complete(r, t.mismatch(r, n))
		return
	}
	if p.lost != nil {
		t.complete(r, p.lost)
		return
	}
	if len(r.buf) > 0 {
		mr, err := t.mrc.get(r.buf)
		if err != nil {
			p.out.push(outItem{kind: outReject, id: sendID, length: uint32(len(r.buf))})
			t.complete(r, fmt.Errorf("rdmatransport: receive from rank %d tag %d: register %d B: %w", r.peer, r.tag, len(r.buf), err))
			return
		}
		r.mr = mr
	}
	id, ok := t.recvs.put(r)
	if !ok {
		p.out.push(outItem{kind: outReject, id: sendID, length: uint32(len(r.buf))})
		t.complete(r, fmt.Errorf("rdmatransport: receive from rank %d: too many rendezvous receives: %w", r.peer, collective.ErrNotSupported))
		return
	}
	r.id = id
	p.out.push(outItem{kind: outCTS, req: r, id: sendID})
}

// complete finishes r with err (nil for success) once.
func (t *Transport) complete(r *request, err error) {
	if r.finished {
		return
	}
	r.finished = true
	if r.id != 0 {
		if r.send {
			t.sends.del(r.id)
		} else {
			t.recvs.del(r.id)
		}
		r.id = 0
	}
	if r.mr != nil {
		t.mrc.put(r.mr)
		r.mr = nil
	}
	r.Complete(err)
}

// repost gives a receive slot back to the peer.
func (t *Transport) repost(p *peer, slot int) {
	if p.lost != nil && t.closed {
		return
	}
	if _, err := p.qp.PostRecv(p.recvWR[slot : slot+1]); err != nil {
		t.peerLost(p, fmt.Errorf("rdmatransport: rank %d: re-post receive: %w: %w", p.rank, collective.ErrPeerLost, err))
		return
	}
	p.unreturned++
}

// peerLost fails everything that involves p with err and refuses what
// comes later; eager messages that already arrived stay receivable.
func (t *Transport) peerLost(p *peer, err error) {
	if p.lost != nil {
		return
	}
	p.lost = err
	if errors.Is(err, collective.ErrPeerLost) {
		t.stats.PeersLost.Add(1)
	}
	for tag, q := range p.tags {
		for r := q.popRecv(); r != nil; r = q.popRecv() {
			t.complete(r, err)
		}
		kept := q.arrivals[:0]
		for _, a := range q.arrivals[q.ahead:] {
			if a.kind == msgEager {
				kept = append(kept, a)
			}
		}
		q.arrivals, q.ahead = kept, 0
		t.dropIfEmpty(p, tag, q)
	}
	for p.out.size > 0 {
		if r := p.out.front().req; r != nil {
			t.complete(r, err)
		}
		p.out.pop()
	}
	fail := func(_ uint32, r *request) {
		if r.peer == p.rank {
			t.complete(r, err)
		}
	}
	t.sends.each(fail)
	t.recvs.each(fail)
}

// Close implements collective.Transport: goodbyes to the peers, pending
// requests fail with collective.ErrClosed, verbs resources released. The
// device stays open.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	// The goodbye's ACK also acknowledges every SEND before it (RC keeps
	// order): eager sends, done once posted, reached the peer. A peer
	// with no free send slot gets its goodbye when one comes back.
	// Every goodbye is counted before any is posted, so that byeDone
	// closes done once, when the last is acknowledged or given up.
	done := make(chan struct{})
	t.byesDone = done
	for _, p := range t.peers {
		if p != nil && p.lost == nil {
			t.byesPending++
			p.byeWanted = true
		}
	}
	if t.byesPending == 0 {
		close(done)
	}
	for _, p := range t.peers {
		if p != nil {
			t.sendBye(p)
		}
	}
	t.mu.Unlock()

	timer := time.NewTimer(t.opts.CloseTimeout)
	select {
	case <-done:
	case <-timer.C:
	}
	timer.Stop()

	t.mu.Lock()
	closedErr := fmt.Errorf("rdmatransport: rank %d: %w", t.opts.Rank, collective.ErrClosed)
	for _, p := range t.peers {
		if p != nil {
			p.lost = nil // fail everything again, with ErrClosed
			t.peerLost(p, closedErr)
		}
	}
	for tag, q := range t.self {
		for _, r := range q.sends {
			t.complete(r, closedErr)
		}
		for _, r := range q.recvs {
			t.complete(r, closedErr)
		}
		delete(t.self, tag)
	}
	t.mu.Unlock()

	t.cancel()
	<-t.progressDone
	t.release()
	return nil
}

// sendBye posts the goodbye p waits for, if a send slot is free; a peer
// lost meanwhile is not waited for. t.mu is held.
func (t *Transport) sendBye(p *peer) {
	if !p.byeWanted {
		return
	}
	if p.lost == nil && len(p.freeSend) == 0 {
		return // again when a slot comes back
	}
	p.byeWanted = false
	if p.lost == nil && t.postControl(p, &header{kind: msgBye}) == nil {
		p.byeSent = true
		return
	}
	t.byeDone()
}

// byeDone counts one goodbye acknowledged (or given up); t.mu is held.
func (t *Transport) byeDone() {
	if t.byesPending--; t.byesPending == 0 && t.byesDone != nil {
		close(t.byesDone)
	}
}

// release destroys the verbs resources (after the progress goroutine
// stopped).
func (t *Transport) release() {
	var errs []error
	for _, p := range t.peers {
		if p == nil {
			continue
		}
		if p.qp != nil {
			errs = append(errs, p.qp.Destroy())
		}
		for _, mr := range []rdma.MR{p.recvMR, p.sendMR} {
			if mr != nil {
				errs = append(errs, mr.Deregister())
			}
		}
	}
	if t.mrc != nil {
		t.mrc.close()
	}
	if t.cq != nil {
		errs = append(errs, t.cq.Close())
	}
	if t.pd != nil {
		errs = append(errs, t.pd.Dealloc())
	}
	_ = errors.Join(errs...) // teardown errors leave nothing to act on
}
