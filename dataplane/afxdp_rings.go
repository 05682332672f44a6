package dataplane

import "sync/atomic"

// AFXDPRingStats is a snapshot of an AF_XDP port's rings and UMEM, summed
// over its sockets, as the port's own goroutines last saw them: Recv
// updates the rx side each time it looks at the rings, Send the tx side
// each time it sends (or is called with no packets). Reading it takes no
// lock and costs the hot paths a few atomic stores per batch.
type AFXDPRingStats struct {
	// Queues is the number of sockets (rx queues); RingSize the
	// descriptors of each of their fill, rx, tx and completion rings.
	Queues, RingSize int
	// RxRing is the rx ring occupancy: descriptors the kernel had put on
	// the rx rings when Recv last found any, before it took them (0 once
	// Recv found the rings empty).
	RxRing int
	// FillRing is the frames on the fill rings for the kernel to receive
	// into, after Recv's last refill.
	FillRing int
	// TxRing is the descriptors on the tx ring the kernel had not taken
	// yet when Send's last kick ended.
	TxRing int
	// TxInFlight is the send-queue depth: frames handed to the kernel
	// whose completions Send has not reaped yet (it reaps at its start).
	TxInFlight int
	// UMEMFrames is the frames of every socket's UMEM; UMEMFreeFrames those
	// neither the kernel nor a ring holds: tx frames not in flight, and rx
	// frames on neither the fill nor the rx ring (rx frames beyond RingSize
	// never circulate and count as free).
	UMEMFrames, UMEMFreeFrames int
}

// xskRings are one socket's ring counters, written by the goroutine that
// owns each side (rx: Recv, tx: Send) and read by RingStats.
type xskRings struct {
	rxRing, fillRing, rxFree atomic.Uint32 // Recv
	txRing, txInFlight       atomic.Uint32 // Send (queue 0 only)
}

// noteRx records the rx side after Recv looked at q: seen descriptors were
// on the rx ring. It stores only what changed, so an idle busy-polling Recv
// writes nothing.
func (q *xskQueue) noteRx(seen int) {
	r := q.rings
	if uint32(seen) != r.rxRing.Load() {
		r.rxRing.Store(uint32(seen))
	}
	if seen == 0 {
		return
	}
	fill := q.ringSize - q.sock.NumFreeFillSlots()
	r.fillRing.Store(uint32(fill))
	r.rxFree.Store(uint32(max(0, q.rxFrames-fill-q.sock.NumReceived())))
}

// noteTx records the tx side after Send.
func (q *xskQueue) noteTx() {
	q.rings.txRing.Store(uint32(q.pendingTx()))
	q.rings.txInFlight.Store(uint32(q.txInFlight))
}

// RingStats returns the rings' occupancy and the UMEM's free frames. It
// takes no lock; on a closed port it returns ErrClosed.
func (p *AFXDPPort) RingStats() (AFXDPRingStats, error) {
	if p.closed.Load() {
		return AFXDPRingStats{}, ErrClosed
	}
	s := AFXDPRingStats{Queues: len(p.rings), RingSize: p.opts.RingSize}
	rxFrames := p.opts.NumFrames / 2
	txFrames := p.opts.NumFrames - rxFrames
	for i := range p.rings {
		r := &p.rings[i]
		s.RxRing += int(r.rxRing.Load())
		s.FillRing += int(r.fillRing.Load())
		s.UMEMFreeFrames += int(r.rxFree.Load())
		s.UMEMFrames += p.opts.NumFrames
		if i == 0 { // only the first socket transmits
			s.TxRing = int(r.txRing.Load())
			s.TxInFlight = int(r.txInFlight.Load())
		}
		s.UMEMFreeFrames += txFrames - int(r.txInFlight.Load())
	}
	return s, nil
}
