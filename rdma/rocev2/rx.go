package rocev2

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/internal/spin"
	"github.com/opennetworks/onetdp/rdma/rocev2/wire"
)

// rxBatch is how many packets the receive path takes per Recv.
const rxBatch = 64

// rxTimeout is how long the receive goroutine waits before it looks at
// whether the engine closed.
const rxTimeout = 50 * time.Millisecond

// rxPath is the receive direction: the scratch of one batch and, where the
// port is a dataplane.Poller, the lock that lets a waiting application
// goroutine run it (Device.Poll) instead of the receive goroutine.
type rxPath struct {
	mu    sync.Mutex // held while taking and processing a batch (Poller ports)
	pkts  []dataplane.Packet
	ctrls []ctrl
	acks  []*queuePair
	cnps  []*queuePair
	p     wire.Packet

	// poller is the port as a Poller, nil when it is not one.
	poller dataplane.Poller
	// spinMu guards spinHeld: the engine holds the port's spin slot
	// (Poller.TakeSpin), for the receive goroutine's own spinning or for
	// the application goroutines that poll (StartPolling).
	spinMu   sync.Mutex
	spinHeld bool
	// polling counts the goroutines between StartPolling and StopPolling;
	// while there are any the receive goroutine stays out of their way.
	polling atomic.Int32
	// idle is signalled when polling drops to zero.
	idle chan struct{}
}

func (x *rxPath) init(d *Device) {
	x.pkts = make([]dataplane.Packet, rxBatch)
	for i := range x.pkts {
		x.pkts[i].Buf = make([]byte, 0, d.port.MaxPayload())
	}
	x.poller, _ = d.port.(dataplane.Poller)
	x.idle = make(chan struct{}, 1)
}

// takeSpin makes sure the engine holds the port's spin slot and, when it
// does and poll is set, counts one more polling goroutine.
func (x *rxPath) takeSpin(poll bool) bool {
	x.spinMu.Lock()
	defer x.spinMu.Unlock()
	if !x.spinHeld {
		x.spinHeld = x.poller.TakeSpin()
	}
	if x.spinHeld && poll {
		x.polling.Add(1)
	}
	return x.spinHeld
}

// dropSpin gives the spin slot back unless someone polls (or always,
// when the engine stops).
func (x *rxPath) dropSpin(always bool) {
	x.spinMu.Lock()
	defer x.spinMu.Unlock()
	if x.spinHeld && (always || x.polling.Load() == 0) {
		x.poller.DropSpin()
		x.spinHeld = false
	}
}

// rxLoop is the receive goroutine. On a Poller port it spins on the rings
// for a while after traffic when the port's busy-poll rule allows, then
// parks until packets arrive, and stands aside while an application
// goroutine polls; on other ports it blocks in Recv.
func (d *Device) rxLoop() {
	defer d.wg.Done()
	d.port.SetRecvTimeout(rxTimeout)
	x := &d.rx
	if x.poller == nil {
		d.recvLoop()
		return
	}
	defer x.dropSpin(true)
	aside := time.NewTimer(time.Hour)
	defer aside.Stop()
	for !d.closed.Load() {
		if x.polling.Load() > 0 {
			// Whoever polls takes the packets; look again when it stops (or
			// after a while, should a wake-up be missed).
			aside.Reset(time.Millisecond)
			select {
			case <-x.idle:
			case <-aside.C:
			case <-d.stop:
				return
			}
			continue
		}
		if x.takeSpin(false) && d.spin() {
			continue // someone started polling
		}
		x.dropSpin(false)
		d.tx.flushHeld(time.Time{}, true) // nobody polls now to send them
		err := x.poller.WaitRecv()
		if errors.Is(err, dataplane.ErrTimeout) {
			continue
		}
		if err != nil {
			return // closed
		}
		x.mu.Lock()
		n, err := x.poller.TryRecv(x.pkts)
		if n > 0 {
			d.processBatch(n, false)
		}
		x.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// recvLoop is the receive goroutine on a port that cannot be polled.
func (d *Device) recvLoop() {
	for {
		n, err := d.port.Recv(d.rx.pkts)
		if errors.Is(err, dataplane.ErrTimeout) {
			if d.closed.Load() {
				return
			}
			continue
		}
		if err != nil {
			return // closed
		}
		d.processBatch(n, false)
	}
}

// spinBudget is how long the receive goroutine spins on the rings after
// the last packet before it parks.
const spinBudget = dataplane.DefaultBusyPollBudget

// spin polls the rings until spinBudget passes without a packet, the
// engine closes or an application goroutine starts polling (true).
func (d *Device) spin() bool {
	x := &d.rx
	last := time.Now()
	for i := 1; ; i++ {
		if x.polling.Load() > 0 {
			return true
		}
		if d.Poll() {
			i = 0
		}
		if i%64 == 0 {
			now := time.Now()
			if i == 0 {
				last = now
			} else if now.Sub(last) > spinBudget || d.closed.Load() {
				return false
			}
			spin.Idle(now.Sub(last))
		}
	}
}

// Poll implements rdma.Poller: it runs the receive path once, without
// waiting, on the calling goroutine. It does nothing (false) on a port
// that is not a dataplane.Poller or while another goroutine holds the
// receive path.
func (d *Device) Poll() bool {
	x := &d.rx
	if x.poller == nil || !x.mu.TryLock() {
		return false
	}
	if d.tx.heldAt.Load() != 0 {
		d.tx.flushHeld(time.Now(), false)
	}
	n, _ := x.poller.TryRecv(x.pkts)
	if n > 0 {
		d.processBatch(n, true)
	}
	x.mu.Unlock()
	return n > 0
}

// StartPolling implements rdma.Poller: true when the port lets a caller
// spin on it now (dataplane.Poller.TakeSpin: busy-polling on and, for
// BusyPollAuto, this process's one such port and ONET_BUSY_POLL not off);
// the receive goroutine then leaves the packets to the callers until the
// last StopPolling.
func (d *Device) StartPolling() bool {
	x := &d.rx
	if x.poller == nil || d.closed.Load() {
		return false
	}
	return x.takeSpin(true)
}

// StopPolling implements rdma.Poller; call it once per StartPolling that
// returned true.
func (d *Device) StopPolling() {
	x := &d.rx
	if x.polling.Add(-1) == 0 {
		select {
		case x.idle <- struct{}{}:
		default:
		}
	}
}

// processBatch decodes x.pkts[:n], checks the ICRC, dispatches by
// destination QP, and then sends the coalesced ACKs, the NAKs and the CNPs
// the batch produced. The receive direction is the caller's. With hold
// (a polled receive), the ACKs of a batch of SENDs may wait up to ackHold
// for the next transmit to go out with (txPath.sendCtrl).
func (d *Device) processBatch(n int, hold bool) {
	x := &d.rx
	now := time.Now()
	x.ctrls, x.acks, x.cnps = x.ctrls[:0], x.acks[:0], x.cnps[:0]
	p := &x.p
	for i := range x.pkts[:n] {
		pk := &x.pkts[i]
		d.stats.RxPackets.Add(1)
		d.stats.RxBytes.Add(uint64(len(pk.Buf)))
		if err := wire.Decode(pk.Buf, p); err != nil {
			d.stats.Malformed.Add(1)
			continue
		}
		if !d.checkICRC(pk) {
			d.stats.ICRCErrors.Add(1)
			continue
		}
		q := d.qps.get(p.DestQP)
		if q == nil {
			d.stats.UnknownQP.Add(1)
			continue
		}
		switch {
		case p.OpCode == wire.OpCNP:
			d.stats.CNPsRcvd.Add(1)
			q.onCNP(now)
		case p.OpCode.IsRequest():
			// Only the ACKs of SENDs are held: a SEND meets a receive the
			// application posted and usually answers, and the answer
			// carries the ACK. WRITEs, READs and atomics are answered at
			// once (a requester that waits for a WRITE's completion, as a
			// rendezvous does, would otherwise wait ackHold).
			hold = hold && p.OpCode.IsSend() && q.holdAcks.Load()
			ce := ceMarked(pk.TOS)
			c, send := q.onRequest(p, ce, now)
			if send {
				x.ctrls = append(x.ctrls, c)
			}
			if !containsQP(x.acks, q) {
				x.acks = append(x.acks, q)
			}
			if ce && q.cnpDue(now) && !containsQP(x.cnps, q) {
				x.cnps = append(x.cnps, q)
			}
		default:
			q.onResponse(p, now)
			// READ responses are data too: congestion on them is
			// notified to the responder's QP.
			if ceMarked(pk.TOS) && p.OpCode.IsReadResponse() && q.cnpDue(now) && !containsQP(x.cnps, q) {
				x.cnps = append(x.cnps, q)
			}
		}
	}
	for _, q := range x.acks {
		if c, ok := q.takeAck(); ok {
			x.ctrls = append(x.ctrls, c)
		}
	}
	d.tx.sendCtrl(x.ctrls, x.cnps, hold, now)
	d.tx.pumpIfIdle()
}

func containsQP(qs []*queuePair, q *queuePair) bool {
	for _, x := range qs {
		if x == q {
			return true
		}
	}
	return false
}

// cnpDue applies the notification point's rate limit (flowctl.CNPLimiter):
// at most one CNP per Options.CNPInterval (min_time_between_cnps) per QP.
func (q *queuePair) cnpDue(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cnpLim.Allow(now)
}

// checkICRC verifies the ICRC over the header the sender's frame carried,
// rebuilt from the datagram's addresses and IPv4 ID (NICs number their
// packets; ports that cannot see the ID report 0, which is what our frames
// and Linux's unconnected DF datagrams carry).
func (d *Device) checkICRC(pk *dataplane.Packet) bool {
	if len(pk.Buf) < wire.ICRCLen {
		return false
	}
	got, err := wire.ICRCFromParts(pk.Addr, d.local, pk.IPID, pk.Buf)
	if err != nil {
		return false
	}
	b := pk.Buf[len(pk.Buf)-wire.ICRCLen:]
	return uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16|uint32(b[3])<<24 == got
}
