package porttest

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
)

// Port is a dataplane.Port on a Network. It follows the Port contract: one
// goroutine sends, one receives (SetRecvTimeout belongs to the receiver);
// Close, Stats, Caps and LocalAddr may be called from any goroutine.
type Port struct {
	net    *Network
	addr   netip.AddrPort
	maxPay int
	stats  dataplane.PortStats

	notify chan struct{} // a token when the queue gains datagrams
	done   chan struct{} // closed by Close
	closed atomic.Bool
	once   sync.Once

	mu    sync.Mutex // guards the receive queue
	queue []queued   // ring of len Network.queueLen
	head  int        // oldest queued datagram
	count int        // datagrams queued

	// Owned by the Recv goroutine.
	timeout time.Duration
	timer   *time.Timer
}

// queued is one datagram waiting in a receive queue; buf is reused.
type queued struct {
	buf  []byte
	from netip.AddrPort
	tos  uint8
}

var _ dataplane.Port = (*Port)(nil)

func newPort(n *Network, addr netip.AddrPort, maxPay int) *Port {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &Port{
		net:    n,
		addr:   addr,
		maxPay: maxPay,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		queue:  make([]queued, n.queueLen),
		timer:  t,
	}
}

// Send copies each datagram into its destination's queue. Lost, unroutable
// and queue-full datagrams are still accepted (a wire would take them) and
// counted in the Network's stats; the destination also counts a full queue
// in its RxDropped.
func (p *Port) Send(pkts []dataplane.Packet) (int, error) {
	if p.closed.Load() {
		return 0, dataplane.ErrClosed
	}
	var txBytes uint64
	sent := 0
	defer func() {
		p.stats.TxPackets.Add(uint64(sent))
		p.stats.TxBytes.Add(txBytes)
		p.net.stats.Sent.Add(uint64(sent))
	}()
	for i := range pkts {
		pk := &pkts[i]
		if len(pk.Buf) > p.maxPay {
			return sent, dataplane.ErrTooBig
		}
		dst := pk.Addr
		if !dst.Addr().IsValid() || dst.Port() == 0 {
			return sent, dataplane.ErrNoRoute
		}
		if dst.Addr().Is4In6() {
			dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
		}
		to, lost, markCE := p.net.route(dst, pk.TOS)
		switch {
		case lost:
			p.net.stats.Lost.Add(1)
		case to == nil:
			p.net.stats.NoListener.Add(1)
		default:
			tos := pk.TOS
			if markCE {
				tos |= dataplane.ECNCE
			}
			to.enqueue(pk.Buf, p.addr, tos, markCE)
		}
		sent++
		txBytes += uint64(len(pk.Buf))
	}
	return sent, nil
}

// enqueue copies one datagram into the queue, or counts it dropped.
func (p *Port) enqueue(b []byte, from netip.AddrPort, tos uint8, markedCE bool) {
	p.mu.Lock()
	switch {
	case p.closed.Load():
		p.mu.Unlock()
		p.net.stats.NoListener.Add(1)
		return
	case p.count == len(p.queue):
		p.mu.Unlock()
		p.net.stats.QueueFull.Add(1)
		p.stats.RxDropped.Add(1)
		return
	}
	q := &p.queue[(p.head+p.count)%len(p.queue)]
	if cap(q.buf) < len(b) {
		q.buf = make([]byte, len(b), p.net.mtu) // first use of this slot
	}
	q.buf = q.buf[:len(b)]
	copy(q.buf, b)
	q.from, q.tos = from, tos
	p.count++
	p.mu.Unlock()
	p.net.stats.Delivered.Add(1)
	if markedCE {
		p.net.stats.CEMarked.Add(1)
	}
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// Recv waits for queued datagrams, the timeout, or Close.
func (p *Port) Recv(pkts []dataplane.Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	armed := false
	defer func() {
		if armed {
			p.timer.Stop()
		}
	}()
	for {
		if p.closed.Load() {
			return 0, dataplane.ErrClosed
		}
		if n := p.drain(pkts); n > 0 {
			return n, nil
		}
		var expired <-chan time.Time
		if p.timeout > 0 {
			if !armed {
				p.timer.Reset(p.timeout)
				armed = true
			}
			expired = p.timer.C
		}
		select {
		case <-p.notify:
		case <-p.done:
			return 0, dataplane.ErrClosed
		case <-expired:
			armed = false
			return 0, dataplane.ErrTimeout
		}
	}
}

// drain moves queued datagrams into pkts; ones longer than the caller's
// buffer are dropped and counted.
func (p *Port) drain(pkts []dataplane.Packet) int {
	var rxBytes, rxCE, truncated uint64
	n := 0
	p.mu.Lock()
	for n < len(pkts) && p.count > 0 {
		q := &p.queue[p.head]
		p.head = (p.head + 1) % len(p.queue)
		p.count--
		pk := &pkts[n]
		if len(q.buf) > cap(pk.Buf) {
			truncated++
			continue
		}
		pk.Buf = pk.Buf[:len(q.buf)]
		copy(pk.Buf, q.buf)
		pk.Addr, pk.TOS = q.from, q.tos
		rxBytes += uint64(len(q.buf))
		if q.tos&dataplane.ECNMask == dataplane.ECNCE {
			rxCE++
		}
		n++
	}
	p.mu.Unlock()
	p.stats.RxPackets.Add(uint64(n))
	p.stats.RxBytes.Add(rxBytes)
	p.stats.RxCE.Add(rxCE)
	p.stats.RxTruncated.Add(truncated)
	return n
}

// SetRecvTimeout bounds how long Recv waits; 0 waits forever.
func (p *Port) SetRecvTimeout(d time.Duration) {
	if d < 0 {
		d = 0
	}
	p.timeout = d
}

// LocalAddr is the port's address on the network.
func (p *Port) LocalAddr() netip.AddrPort { return p.addr }

// MaxPayload is the network MTU less IP and UDP headers.
func (p *Port) MaxPayload() int { return p.maxPay }

// Caps reports kind "fake" with TOS visible both ways.
func (p *Port) Caps() dataplane.Caps {
	return dataplane.Caps{Kind: "fake", RxTOS: true, TxTOS: true, Reason: "in-memory test network"}
}

// Stats returns the live port counters.
func (p *Port) Stats() *dataplane.PortStats { return &p.stats }

// Queued reports how many datagrams wait in the receive queue.
func (p *Port) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

// Close removes the port from the network (its address becomes free) and
// unblocks a pending Recv with ErrClosed. Closing twice is harmless.
func (p *Port) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed.Store(true)
		p.mu.Unlock()
		p.net.remove(p)
		close(p.done)
	})
	return nil
}
