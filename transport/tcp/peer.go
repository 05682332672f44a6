package tcp

import (
	"fmt"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/collective"
)

// maxMessage is the largest length a header may carry.
const maxMessage = 1 << 40

// writeBatch is how many queued sends the writer goroutine puts in one
// writev.
const writeBatch = 64

// peer is the state toward one rank: the receive side (posted receives and
// unexpected messages, guarded by mu) and the send side (sq). For the rank
// itself there is no connection: Isend hands the send request to the
// matching receive, which copies and completes both.
type peer struct {
	t    *Transport
	rank int
	conn *net.TCPConn // nil for self
	raw  syscall.RawConn

	mu         sync.Mutex
	cond       *sync.Cond // signalled when a receive is posted or space frees
	posted     collective.TagQueues[*request]
	unexpected collective.TagQueues[message]
	unexpBytes int
	maxUnexp   int
	lost       error // set once; later receives fail with it
	// stalled: the parser holds a header (stallTag, stallSize) that has
	// no receive and no room yet; stallPosted: a receive for it came.
	stalled     bool
	stallPosted bool
	stallTag    Tag
	stallSize   int

	// rxmu is held by whoever drives the receive parser rx (recv.go).
	// Lock order: rxmu before mu.
	rxmu sync.Mutex
	rx   rxState

	// sq orders the sends: inline when the connection is idle, else by
	// the writer goroutine; once failed, later sends fail with its error.
	sq  collective.SendQueue[*request]
	iov [3]unix.Iovec // the inline writer's (sq.Begin said inline)
}

// message is a message that arrived before its receive: data read off the
// wire, or (toward self) the sender's request.
type message struct {
	data []byte
	send *request
}

func newPeer(t *Transport, rank int, c *net.TCPConn, maxUnexp int) *peer {
	p := &peer{t: t, rank: rank, conn: c, maxUnexp: maxUnexp}
	p.cond = sync.NewCond(&p.mu)
	if c != nil {
		p.raw, _ = c.SyscallConn()
		if p.raw != nil {
			_ = p.raw.Control(func(fd uintptr) { p.rx.fd = int(fd) })
		}
	}
	return p
}

func (p *peer) start() {
	if p.conn == nil {
		return
	}
	p.t.wg.Add(2)
	go p.readLoop()
	go p.writeLoop()
}

func (p *peer) lostError(cause error) error {
	if p.t.isClosed() {
		return fmt.Errorf("tcp: rank %d: %w", p.t.rank, collective.ErrClosed)
	}
	return fmt.Errorf("tcp: rank %d: connection to rank %d: %w: %w", p.t.rank, p.rank, collective.ErrPeerLost, cause)
}

// fail ends the peer: pending receives and queued sends complete with err,
// messages already buffered stay deliverable, the connection closes.
func (p *peer) fail(err error) {
	p.mu.Lock()
	var recvs []*request
	if p.lost == nil {
		p.lost = err
		p.posted.Drain(func(r *request) { recvs = append(recvs, r) })
		if p.conn == nil { // self: senders wait on receives that will never come
			p.unexpected.Drain(func(m message) {
				if m.send != nil {
					m.send.Complete(err)
				}
			})
		}
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, r := range recvs {
		r.Complete(err)
	}

	for _, r := range p.sq.Fail(err) {
		r.Complete(err)
	}
	if p.conn != nil {
		// No one reads the descriptor once it may be closed (and its
		// number reused).
		p.rxmu.Lock()
		if !p.rx.closed {
			p.rx.closed = true
			p.failRx(err)
		}
		p.rxmu.Unlock()
		_ = p.conn.Close()
	}
}

// recv posts a receive or completes it from a buffered message.
func (p *peer) recv(tag Tag, b []byte) *request {
	p.mu.Lock()
	if m, ok := p.unexpected.Pop(tag); ok {
		if m.send == nil {
			p.unexpBytes -= len(m.data)
			p.cond.Broadcast()
		}
		p.mu.Unlock()
		data := m.data
		if m.send != nil {
			data = m.send.buf
		}
		err := p.deliver(tag, data, b)
		if m.send != nil {
			m.send.Complete(nil)
		} else {
			putBuf(data)
		}
		return completed(err)
	}
	if p.lost != nil {
		err := p.lost
		p.mu.Unlock()
		return completed(err)
	}
	r := newRequest(tag, b)
	if p.conn != nil {
		r.rp = p
	}
	p.posted.Push(tag, r)
	if p.stalled && tag == p.stallTag {
		p.stallPosted = true
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	return r
}

// deliver copies a buffered message into a receive buffer.
func (p *peer) deliver(tag Tag, data, b []byte) error {
	if len(data) != len(b) {
		return p.mismatch(tag, len(data), len(b))
	}
	copy(b, data)
	return nil
}

func (p *peer) mismatch(tag Tag, got, want int) error {
	return fmt.Errorf("tcp: rank %d: message from rank %d tag %#x: %d bytes into a %d-byte receive: %w",
		p.t.rank, p.rank, uint64(tag), got, want, collective.ErrSizeMismatch)
}

// popPosted takes the first posted receive for tag; p.mu is held.
func (p *peer) popPosted(tag Tag) *request {
	r, _ := p.posted.Pop(tag)
	return r
}
