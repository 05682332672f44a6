package rocev2

import (
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/rdma/rocev2/wire"
)

// txPath owns the port's send direction. Any goroutine may transmit while
// holding mu: posting goroutines send inline when the path is free, the
// receive goroutine sends its ACKs and NAKs, and the transmit goroutine
// (loop) does the rest and runs the timers. Lock order: mu, then a QP's mu.
type txPath struct {
	dev *Device

	mu     sync.Mutex
	pkts   []dataplane.Packet
	bufs   [][]byte
	n      int
	active []*queuePair // QPs with work, owned under mu

	// held counts the staged packets (ACKs) kept back to ride with the
	// next transmit; heldAt is when the first of them was staged (monotonic
	// nanoseconds since the device's epoch, plus one; 0 when none), read
	// without mu to decide a flush.
	held   int
	heldAt atomic.Int64

	pending chan *queuePair // QPs activated without mu held
	wake    chan struct{}
}

// timerTick is how often the transmit goroutine checks retransmission and
// RNR timers while any QP has work outstanding.
const timerTick = 200 * time.Microsecond

// pktOverhead is the header bytes the pacer adds to a path-MTU payload
// when it judges whether the next packet may go (BTH, RETH, ICRC, pad).
const pktOverhead = 48

// pumpBudget bounds the packets one pump call sends, so that holding mu
// never starves the receive goroutine's ACKs for long.
const pumpBudget = 256

func (t *txPath) init(d *Device) {
	t.dev = d
	b := d.opts.TxBatch
	t.pkts = make([]dataplane.Packet, b)
	t.bufs = make([][]byte, b)
	for i := range t.bufs {
		t.bufs[i] = make([]byte, d.port.MaxPayload())
	}
	t.pending = make(chan *queuePair, d.opts.MaxQPs)
	t.wake = make(chan struct{}, 1)
}

// activate queues q for transmission. It takes no lock, so it may be called
// with q.mu held. If the transmit path is free the work is done inline.
func (t *txPath) activate(q *queuePair) {
	if q.active.CompareAndSwap(false, true) {
		t.pending <- q // capacity MaxQPs: one slot per QP, never blocks
	}
	t.kick()
}

func (t *txPath) kick() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// loop is the transmit goroutine.
func (t *txPath) loop() {
	defer t.dev.wg.Done()
	tick := time.NewTicker(timerTick)
	defer tick.Stop()
	for {
		select {
		case <-t.dev.stop:
			return
		case <-t.wake:
		case <-tick.C:
			now := time.Now()
			t.flushHeld(now, false)
			t.dev.qps.each(func(q *queuePair) {
				if q.checkTimer(now) {
					t.activate(q)
				}
			})
		}
		for t.pump() {
			runtime.Gosched()
		}
	}
}

// pump sends up to pumpBudget packets from the active QPs, round-robin, and
// reports whether work is left.
func (t *txPath) pump() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pumpLocked()
}

// pumpIfIdle pumps on the calling goroutine when nobody else transmits, and
// leaves what is left to the transmit goroutine.
func (t *txPath) pumpIfIdle() {
	if !t.mu.TryLock() {
		return
	}
	more := t.pumpLocked()
	t.mu.Unlock()
	if more {
		t.kick()
	}
}

func (t *txPath) pumpLocked() bool {
	for {
		select {
		case q := <-t.pending:
			t.active = append(t.active, q)
			continue
		default:
		}
		break
	}
	now := time.Now()
	sent := 0
	for sent < pumpBudget && len(t.active) > 0 {
		round := 0
		kept := t.active[:0]
		for i, q := range t.active {
			if sent >= pumpBudget {
				kept = append(kept, t.active[i:]...) // their turn comes next call
				break
			}
			k := t.fill(q, now, min(16, pumpBudget-sent))
			sent += k
			round += k
			if k > 0 {
				kept = append(kept, q)
				continue
			}
			q.active.Store(false)
			// Work may have arrived between fill and the store.
			if q.hasWork(now) && q.active.CompareAndSwap(false, true) {
				kept = append(kept, q)
			}
		}
		t.active = kept
		if round == 0 {
			break
		}
	}
	if t.n > t.held || t.heldOver(now) {
		t.flush()
	}
	return len(t.active) > 0 && sent > 0
}

// fill stages up to max packets of q: queued responses first, then requests.
func (t *txPath) fill(q *queuePair, now time.Time, max int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for n < max {
		// The flow controller's pacer gates data packets (requests and
		// READ responses): a QP it holds back stays active and the timer
		// tick or the next kick brings it back.
		if q.cc.ctl != nil && (len(q.resps) > 0 || q.requestWork(now)) && q.paceDelay(now, q.mtu+pktOverhead) > 0 {
			break
		}
		b := t.buf()
		// Data packets (requests and READ responses) are ECN-capable.
		k, ok := q.nextResponse(b)
		req := false
		if !ok {
			k, ok = q.nextRequest(b, now)
			req = true
		}
		tos := q.tos | dataplane.ECNECT0
		if !ok {
			break
		}
		t.stage(q, k, tos)
		if q.cc.ctl != nil {
			if req {
				q.ccSent(now, k, q.cc.txPSN, q.cc.txAckReq, q.cc.txResend)
			} else {
				q.ccSent(now, k, 0, false, true)
			}
		}
		n++
	}
	if n > 0 && len(q.resps) == 0 && q.ackDue {
		if c, ok := q.takeAckLocked(); ok {
			t.stageCtrl(c)
		}
	}
	return n
}

func (q *queuePair) hasWork(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.resps) > 0 || q.requestWork(now)
}

// buf returns the next staging buffer, flushing first when all are used.
func (t *txPath) buf() []byte {
	if t.n == len(t.pkts) {
		t.flush()
	}
	return t.bufs[t.n][:cap(t.bufs[t.n])]
}

// stage finishes the packet just encoded into buf(): ICRC and addressing.
func (t *txPath) stage(q *queuePair, n int, tos uint8) {
	b := t.bufs[t.n][:n]
	sport := t.dev.local.Port() // ports that cannot choose the source port send from 4791
	if t.dev.txSrcPort {
		sport = q.srcPort
	}
	src := netip.AddrPortFrom(t.dev.local.Addr(), sport)
	if err := wire.PutICRCFromParts(src, q.remote, 0, b); err != nil {
		t.dev.stats.Malformed.Add(1)
		return
	}
	t.pkts[t.n] = dataplane.Packet{Buf: b, Addr: q.remote, TOS: tos, SrcPort: sport}
	t.n++
}

// stageCtrl encodes and stages an ACK or NAK.
func (t *txPath) stageCtrl(c ctrl) {
	q := c.q
	var p wire.Packet
	p.OpCode = wire.OpAcknowledge
	p.PKey = 0xFFFF
	p.DestQP = q.attr.DestQPN
	p.PSN = c.psn
	p.AETH = wire.AETH{Syndrome: c.syn, MSN: c.msn}
	b := t.buf()
	n, err := wire.Encode(b, &p)
	if err != nil {
		return
	}
	if c.syn.IsACK() {
		t.dev.stats.AcksSent.Add(1)
	}
	t.stage(q, n, q.tos)
}

// stageCNP stages a congestion notification to the sender of q's flow.
func (t *txPath) stageCNP(q *queuePair) {
	b := t.buf()
	n, err := wire.EncodeCNP(b, q.attr.DestQPN)
	if err != nil {
		return
	}
	t.dev.stats.CNPsSent.Add(1)
	q.cc.stats.CNPsSent++
	t.stage(q, n, t.dev.opts.CNPDSCP<<2)
}

// flush hands the staged packets to the port, retrying a full transmit
// queue for a bounded time; what still does not fit is dropped and left to
// the retransmission timer.
func (t *txPath) flush() {
	if t.n == 0 {
		return
	}
	pkts := t.pkts[:t.n]
	deadline := time.Time{}
	for len(pkts) > 0 {
		k, err := t.dev.port.Send(pkts)
		for _, p := range pkts[:k] {
			t.dev.stats.TxBytes.Add(uint64(len(p.Buf)))
		}
		t.dev.stats.TxPackets.Add(uint64(k))
		pkts = pkts[k:]
		if err != nil {
			pkts = pkts[1:] // pkts[0] can never go: drop it, keep the rest
			continue
		}
		if len(pkts) == 0 {
			break
		}
		if deadline.IsZero() {
			t.dev.stats.TxStalls.Add(1)
			deadline = time.Now().Add(2 * time.Millisecond)
		} else if time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	t.n = 0
	t.held = 0
	t.heldAt.Store(0)
}

// allACKs reports whether every packet of cs is an ACK (no NAK).
func allACKs(cs []ctrl) bool {
	for _, c := range cs {
		if !c.syn.IsACK() {
			return false
		}
	}
	return true
}

// ackHold bounds how long an ACK may wait for a transmit to ride with.
const ackHold = 50 * time.Microsecond

// heldOver reports whether held packets have waited ackHold or longer.
func (t *txPath) heldOver(now time.Time) bool {
	at := t.heldAt.Load()
	return at != 0 && t.stamp(now)-at >= int64(ackHold)
}

// stamp is now for heldAt: monotonic (a wall clock stepped back would
// keep ACKs held), never 0.
func (t *txPath) stamp(now time.Time) int64 { return int64(now.Sub(t.dev.epoch)) + 1 }

// flushHeld sends held packets: all of them (force), or those that have
// waited ackHold. It never waits for mu: whoever holds it may send them,
// and the next poll or timer tick looks again.
func (t *txPath) flushHeld(now time.Time, force bool) {
	if t.heldAt.Load() == 0 || !force && !t.heldOver(now) {
		return
	}
	if t.mu.TryLock() {
		if t.held > 0 {
			t.flush()
		}
		t.mu.Unlock()
	}
}

// sendCtrl sends control packets collected by the receive path. With hold
// set, ACKs (not NAKs or CNPs) stay staged to go out with the next
// transmit, for at most ackHold: one system call for the ACK and the data
// a waiter sends next.
func (t *txPath) sendCtrl(cs []ctrl, cnps []*queuePair, hold bool, now time.Time) {
	if len(cs) == 0 && len(cnps) == 0 {
		return
	}
	t.mu.Lock()
	for _, c := range cs {
		c.q.mu.Lock()
		t.stageCtrl(c)
		c.q.mu.Unlock()
	}
	for _, q := range cnps {
		q.mu.Lock()
		t.stageCNP(q)
		q.mu.Unlock()
	}
	switch {
	case hold && len(cnps) == 0 && allACKs(cs) && !t.heldOver(now):
		if t.n > t.held { // something was staged
			t.dev.stats.AcksHeld.Add(uint64(t.n - t.held))
			t.held = t.n
			t.heldAt.CompareAndSwap(0, t.stamp(now))
		}
	default:
		t.flush()
	}
	t.mu.Unlock()
}
