package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/opennetworks/onetdp/collective"
)

// maxMessage is the largest length a record header may carry.
const maxMessage = 1 << 40

// pubChunk is how many bytes a side copies before it publishes its
// position, so that producer and consumer copy a long message in
// parallel.
const pubChunk = 128 << 10

// errProducerClosed ends a receive loop whose peer closed its ring.
var errProducerClosed = errors.New("peer closed its ring")

// peer is the state toward one local rank: the ring from it (in, read by
// the receive goroutine alone), the ring to it (out, written by the writer
// sq names: an inline sender or the writer goroutine), posted receives and
// unexpected messages (mu), and the send queue (sq). The rank itself is a
// peer like any other, over its own ring.
type peer struct {
	t    *Transport
	rank int
	in   *ring
	out  *ring
	tail uint64 // in's consumer position: receive goroutine only
	head uint64 // out's producer position: sq's current writer only

	dead atomic.Bool // lost is set

	mu         sync.Mutex
	cond       *sync.Cond // a receive was posted, space freed, or the peer failed
	posted     collective.TagQueues[*request]
	unexpected collective.TagQueues[[]byte]
	unexpBytes int
	maxUnexp   int
	lost       error

	sq collective.SendQueue[*request]
}

func newPeer(t *Transport, rank int, in, out *ring, maxUnexp int) *peer {
	p := &peer{t: t, rank: rank, in: in, out: out, maxUnexp: maxUnexp}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *peer) start() {
	p.t.wg.Add(2)
	go p.readLoop()
	go p.writeLoop()
}

func (p *peer) stopped() bool { return p.dead.Load() || p.t.closed.Load() }

func (p *peer) lostError(cause error) error {
	if p.t.closed.Load() {
		return fmt.Errorf("shm: rank %d: %w", p.t.rank, collective.ErrClosed)
	}
	return fmt.Errorf("shm: rank %d: ring with rank %d: %w: %w", p.t.rank, p.rank, collective.ErrPeerLost, cause)
}

// fail ends the peer: pending receives and queued sends complete with
// err; messages already buffered stay deliverable.
func (p *peer) fail(err error) {
	p.mu.Lock()
	var recvs []*request
	if p.lost == nil {
		p.lost = err
		p.dead.Store(true)
		p.posted.Drain(func(r *request) { recvs = append(recvs, r) })
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, r := range recvs {
		r.Complete(err)
	}
	for _, r := range p.sq.Fail(err) {
		r.Complete(err)
	}
}

func (p *peer) mismatch(tag Tag, got, want int) error {
	return fmt.Errorf("shm: rank %d: message from rank %d tag %#x: %d bytes into a %d-byte receive: %w",
		p.t.rank, p.rank, uint64(tag), got, want, collective.ErrSizeMismatch)
}

// recv posts a receive or completes it from a buffered message.
func (p *peer) recv(tag Tag, b []byte) *request {
	p.mu.Lock()
	if data, ok := p.unexpected.Pop(tag); ok {
		p.unexpBytes -= len(data)
		p.cond.Broadcast()
		p.mu.Unlock()
		if len(data) != len(b) {
			return completed(p.mismatch(tag, len(data), len(b)))
		}
		copy(b, data)
		return completed(nil)
	}
	if p.lost != nil {
		err := p.lost
		p.mu.Unlock()
		return completed(err)
	}
	r := newRequest(tag, b)
	p.posted.Push(tag, r)
	p.cond.Broadcast()
	p.mu.Unlock()
	return r
}

// popPosted takes the first posted receive for tag; p.mu is held.
func (p *peer) popPosted(tag Tag) *request {
	r, _ := p.posted.Pop(tag)
	return r
}

// send starts a send: written inline when the ring is free and has room,
// else queued for the writer goroutine.
func (p *peer) send(tag Tag, b []byte) *request {
	r := newRequest(tag, b)
	binary.LittleEndian.PutUint64(r.hdr[0:8], uint64(tag))
	binary.LittleEndian.PutUint64(r.hdr[8:16], uint64(len(b)))
	// The rings stay mapped while this inline path touches them.
	p.t.mapped.RLock()
	defer p.t.mapped.RUnlock()
	if p.t.closed.Load() {
		r.Complete(fmt.Errorf("shm: isend: %w", collective.ErrClosed))
		return r
	}
	if atomic.LoadUint64(p.out.u64(offConsClosed)) != 0 {
		p.fail(p.lostError(errProducerClosed))
	}
	inline, err := p.sq.Begin(r)
	if err != nil {
		r.Complete(err)
	}
	if !inline {
		return r
	}
	done, _ := p.writeSome(r)
	if err := p.sq.EndInline(r, done); err != nil {
		r.Complete(err)
	} else if done {
		r.Complete(nil)
	}
	return r
}

// writeSome copies as much of r's record as the ring has room for,
// publishing head every pubChunk bytes. It reports whether the record is
// complete and, if not, the tail it saw when the ring was full.
func (p *peer) writeSome(r *request) (done bool, tail uint64) {
	rg := p.out
	size := uint64(len(rg.data))
	n := uint64(len(r.buf))
	total := recordHdr + alignUp(n)
	tail = atomic.LoadUint64(rg.tail())
	unpub := uint64(0)
	for r.off < total {
		free := size - (p.head - tail)
		if free == 0 {
			tail = atomic.LoadUint64(rg.tail())
			if free = size - (p.head - tail); free == 0 {
				break
			}
		}
		var seg []byte
		switch {
		case r.off < recordHdr:
			seg = r.hdr[r.off:]
		case r.off < recordHdr+n:
			seg = r.buf[r.off-recordHdr:]
		default:
			seg = nil // padding: skipped, never read
		}
		k := min(free, pubChunk-unpub)
		if seg != nil {
			k = min(k, uint64(len(seg)))
			rg.copyIn(p.head, seg[:k])
		} else {
			k = min(k, total-r.off)
		}
		p.head += k
		r.off += k
		if unpub += k; unpub >= pubChunk {
			rg.publishHead(p.head)
			unpub = 0
		}
	}
	if unpub > 0 {
		rg.publishHead(p.head)
	}
	return r.off == total, tail
}

// writeLoop writes queued sends, waiting for ring space as needed.
func (p *peer) writeLoop() {
	defer p.t.wg.Done()
	var batch []*request
	for {
		var ok bool
		if batch, ok = p.sq.Take(batch[:0], 1); !ok {
			return
		}
		r := batch[0]
		done := false
		for !p.stopped() {
			var tail uint64
			if done, tail = p.writeSome(r); done {
				break
			}
			if atomic.LoadUint64(p.out.u64(offConsClosed)) != 0 {
				p.fail(p.lostError(errProducerClosed))
				break
			}
			p.out.waitSpace(tail, p.stopped)
		}
		p.sq.Release()
		if done {
			r.Complete(nil)
		} else {
			r.Complete(p.stoppedError()) // the peer failed or the transport closed first
		}
	}
}

// readFull copies the next len(b) bytes of the stream into b (b nil: n
// bytes are skipped), publishing tail every pubChunk bytes.
func (p *peer) readFull(b []byte, n uint64) error {
	rg := p.in
	for n > 0 {
		h := atomic.LoadUint64(rg.head())
		avail := h - p.tail
		if avail == 0 {
			if p.stopped() {
				return p.stoppedError()
			}
			if atomic.LoadUint64(rg.u64(offProdClosed)) != 0 && atomic.LoadUint64(rg.head()) == p.tail {
				return errProducerClosed
			}
			rg.waitData(p.tail, p.stopped)
			continue
		}
		rg.raceAcquire()
		k := min(avail, n, pubChunk)
		if b != nil {
			rg.copyOut(p.tail, b[:k])
			b = b[k:]
		}
		p.tail += k
		n -= k
		rg.publishTail(p.tail)
	}
	return nil
}

func (p *peer) stoppedError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost != nil {
		return p.lost
	}
	return fmt.Errorf("shm: rank %d: %w", p.t.rank, collective.ErrClosed)
}

// readLoop reads records and hands each to its receive.
func (p *peer) readLoop() {
	defer p.t.wg.Done()
	var hdr [recordHdr]byte
	var err error
	for {
		if err = p.readFull(hdr[:], recordHdr); err != nil {
			break
		}
		tag := Tag(binary.LittleEndian.Uint64(hdr[0:8]))
		n := binary.LittleEndian.Uint64(hdr[8:16])
		if n > maxMessage {
			err = fmt.Errorf("record header says %d bytes", n)
			break
		}
		if err = p.readMessage(tag, int(n)); err != nil {
			break
		}
	}
	if errors.Is(err, errProducerClosed) || !p.stopped() {
		err = p.lostError(err)
	}
	p.fail(err)
}

// readMessage reads one payload: into its posted receive, else into a
// buffer within the unexpected budget, else it waits (the message stays
// in the ring) for a receive to be posted.
func (p *peer) readMessage(tag Tag, n int) error {
	pad := alignUp(uint64(n)) - uint64(n)
	p.mu.Lock()
	var r *request
	for {
		if p.lost != nil {
			err := p.lost
			p.mu.Unlock()
			return err
		}
		if p.t.closed.Load() {
			p.mu.Unlock()
			return p.stoppedError()
		}
		if r = p.popPosted(tag); r != nil {
			break
		}
		if p.unexpBytes+n <= p.maxUnexp {
			p.unexpBytes += n
			break
		}
		p.cond.Wait()
	}
	p.mu.Unlock()

	if r != nil {
		if n != len(r.buf) {
			err := p.readFull(nil, uint64(n)+pad)
			r.Complete(p.mismatch(tag, n, len(r.buf)))
			return err
		}
		if err := p.readFull(r.buf, uint64(n)); err != nil {
			r.Complete(p.lostError(err))
			return err
		}
		r.Complete(nil)
		return p.readFull(nil, pad)
	}
	data := make([]byte, n)
	if err := p.readFull(data, uint64(n)); err != nil {
		return err
	}
	if err := p.readFull(nil, pad); err != nil {
		return err
	}
	p.mu.Lock()
	if r = p.popPosted(tag); r != nil { // posted while we read
		p.unexpBytes -= n
		p.cond.Broadcast()
		p.mu.Unlock()
		if n != len(r.buf) {
			r.Complete(p.mismatch(tag, n, len(r.buf)))
		} else {
			copy(r.buf, data)
			r.Complete(nil)
		}
		return nil
	}
	p.unexpected.Push(tag, data)
	p.mu.Unlock()
	return nil
}
