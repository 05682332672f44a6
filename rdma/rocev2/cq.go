package rocev2

import (
	"context"
	"sync"

	"github.com/opennetworks/onetdp/rdma"
)

// compQueue implements rdma.CQ: a bounded ring filled by the engine's
// goroutines and drained by the application's.
type compQueue struct {
	mu       sync.Mutex
	ring     []rdma.WC
	head, n  int
	overflow bool
	closed   bool
	wake     chan struct{} // one-slot: signalled when a completion arrives
}

var _ rdma.ReadyCQ = (*compQueue)(nil)

func newCompQueue(depth int) *compQueue {
	return &compQueue{ring: make([]rdma.WC, depth), wake: make(chan struct{}, 1)}
}

// push adds one completion; when the ring is full the queue is marked
// overflowed (the caller moves the QP to error) and false returned.
func (c *compQueue) push(wc rdma.WC) bool {
	c.mu.Lock()
	if c.closed || c.n == len(c.ring) {
		c.overflow = c.overflow || !c.closed
		c.mu.Unlock()
		return false
	}
	c.ring[(c.head+c.n)%len(c.ring)] = wc
	c.n++
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

// Poll implements rdma.CQ.
func (c *compQueue) Poll(wcs []rdma.WC) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, rdma.ErrClosed
	}
	k := 0
	for k < len(wcs) && c.n > 0 {
		wcs[k] = c.ring[c.head]
		c.head = (c.head + 1) % len(c.ring)
		c.n--
		k++
	}
	if k == 0 && c.overflow {
		return 0, rdma.ErrCQOverflow
	}
	return k, nil
}

// Wait implements rdma.CQ.
func (c *compQueue) Wait(ctx context.Context, wcs []rdma.WC) (int, error) {
	for {
		n, err := c.Poll(wcs)
		if n > 0 || err != nil {
			return n, err
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Ready implements rdma.ReadyCQ.
func (c *compQueue) Ready() <-chan struct{} { return c.wake }

// Close implements rdma.CQ.
func (c *compQueue) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}
