package rocev2

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opennetworks/onetdp/flowctl"
	"github.com/opennetworks/onetdp/rdma"
)

// sendWQE is a send-queue entry, owned by its QP's mutex.
type sendWQE struct {
	wr     rdma.SendWR // SGL points into the QP's SGE store, not the caller's slice
	length uint32
	psn    uint32 // first PSN
	npsn   uint32 // PSNs used: request packets, or response packets of a READ
	acked  bool   // every packet acknowledged (sends, writes) or answered (reads, atomics)
	status rdma.WCStatus
	failed bool
	got    uint32 // READ: response bytes placed
	gotPkt uint32 // READ: response packets placed
	// reasked: a READ was asked again from PSN reaskedAt after a missing
	// response; later out-of-order responses wait for that answer instead of
	// asking again.
	reasked   bool
	reaskedAt uint32
	posted    int64 // Device.monoNow at PostSend, for Stats.OpLatency
}

// recvWQE is a receive-queue entry.
type recvWQE struct {
	wr     rdma.RecvWR
	length uint32
}

// queuePair implements rdma.QP. Everything below mu is guarded by it; the
// receive goroutine, the transmit path and posting goroutines all take it.
type queuePair struct {
	dev     *Device
	pd      *protDomain
	qpn     uint32
	sendCQ  *compQueue
	recvCQ  *compQueue
	sigAll  bool
	cap     rdma.QPCap
	srcPort uint16
	// holdAcks: a polled receive may hold this QP's ACKs of SENDs for the
	// next transmit (ackHold); not under a delay-based controller or one
	// we do not know, whose RTT samples (the peer's, from our ACKs, when
	// both ends run the same controller) the wait would stretch.
	holdAcks atomic.Bool

	mu     sync.Mutex
	attr   rdma.QPAttr
	remote netip.AddrPort
	mtu    int
	tos    uint8

	// requester
	sq       []sendWQE
	sqSGE    []rdma.SGE
	sqHead   int // oldest uncompleted entry
	sqLen    int
	sqSend   int    // entries after sqHead already started: sqHead+sqSend is transmitting
	sendPkt  uint32 // packets of the transmitting entry already sent
	nextPSN  uint32 // PSN of the next packet to transmit
	postPSN  uint32 // first PSN of the next posted request
	highPSN  uint32 // one past the highest PSN ever sent (retransmissions count below it)
	una      uint32 // first PSN not acknowledged by an ACK (partial progress inside a message)
	wnd      int    // packets allowed in flight: Options.Window, halved per go-back, reopened by ACKs
	wndAcc   int    // packets acknowledged towards the next window increment
	lastReq  uint32 // PSN of the last packet with AckReq set
	retry    int    // retries left (timeouts, sequence NAKs)
	rnrRetry int    // RNR retries left (ignored when RNRRetry is 7)
	rto      time.Time
	rnrUntil time.Time

	// responder
	rq        []recvWQE
	rqSGE     []rdma.SGE
	rqHead    int
	rqLen     int
	ePSN      uint32
	msn       uint32
	recvCur   bool // a SEND is being received into rq[rqHead]
	recvOff   uint32
	write     []byte     // span of the RDMA WRITE in progress
	writeMR   *memRegion // its region: deregistration ends the WRITE
	writeOff  uint32
	nakSent   bool // a sequence NAK went out: silent until ePSN arrives
	ackDue    bool
	resps     []response // READ responses and atomic ACKs waiting to go out, in PSN order
	atomics   [16]atomicRecord
	atomicIdx int
	cnpLim    flowctl.CNPLimiter // notification point: min_time_between_cnps

	cc qpCC // reaction point: controller, pacer, RTT sample

	active atomic.Bool // queued for the transmit path (see txPath.activate)
}

// response is a responder message waiting for the transmit path.
type response struct {
	atomic bool
	psn    uint32
	data   []byte     // READ: the bytes to return
	mr     *memRegion // READ: their region (nil for an empty READ)
	sent   uint32     // READ: packets sent
	npkt   uint32
	orig   uint64 // atomic: the original value
}

// atomicRecord keeps an executed atomic's result so that a duplicate
// request is answered without executing it again.
type atomicRecord struct {
	valid bool
	psn   uint32
	orig  uint64
}

var _ rdma.QP = (*queuePair)(nil)

func newQueuePair(pd *protDomain, ia rdma.QPInitAttr) (*queuePair, error) {
	scq, ok1 := ia.SendCQ.(*compQueue)
	rcq, ok2 := ia.RecvCQ.(*compQueue)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("rocev2: QP needs CQs of the same device: %w", rdma.ErrInvalidAttr)
	}
	c := ia.Cap
	if c.MaxSendWR <= 0 || c.MaxRecvWR <= 0 || c.MaxSendWR > 1<<16 || c.MaxRecvWR > 1<<16 {
		return nil, fmt.Errorf("rocev2: QP capacity %+v: work requests 1..65536: %w", c, rdma.ErrInvalidAttr)
	}
	c.MaxSendSGE = max(c.MaxSendSGE, 1)
	c.MaxRecvSGE = max(c.MaxRecvSGE, 1)
	if c.MaxSendSGE > 32 || c.MaxRecvSGE > 32 {
		return nil, fmt.Errorf("rocev2: at most 32 SGEs per request: %w", rdma.ErrInvalidAttr)
	}
	q := &queuePair{
		dev: pd.dev, pd: pd, sendCQ: scq, recvCQ: rcq, sigAll: ia.SigAll, cap: c,
		sq:    make([]sendWQE, c.MaxSendWR),
		sqSGE: make([]rdma.SGE, c.MaxSendWR*c.MaxSendSGE),
		rq:    make([]recvWQE, c.MaxRecvWR),
		rqSGE: make([]rdma.SGE, c.MaxRecvWR*c.MaxRecvSGE),
	}
	q.attr.State = rdma.QPSReset
	qpn, err := pd.dev.qps.add(q)
	if err != nil {
		return nil, err
	}
	q.qpn = qpn
	q.srcPort = 0xC000 | uint16(qpn*2654435761>>16)&0x3FFF
	q.cnpLim.Interval = pd.dev.opts.CNPInterval
	if err := q.initCC(); err != nil {
		pd.dev.qps.remove(qpn)
		return nil, err
	}
	return q, nil
}

func (q *queuePair) QPN() uint32 { return q.qpn }

// Query implements rdma.QP.
func (q *queuePair) Query() (rdma.QPAttr, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	a := q.attr
	a.SQPSN, a.RQPSN = q.nextPSN, q.ePSN
	return a, nil
}

// Modify implements rdma.QP with the verbs state machine for RC:
// RESET→INIT (port, pkey, access), INIT→RTR (AV, path MTU, dest QPN, RQ PSN,
// max dest rd atomic, min RNR timer), RTR→RTS (SQ PSN, timeout, retry
// counts, max rd atomic), any→ERR, any→RESET.
func (q *queuePair) Modify(attr *rdma.QPAttr, mask rdma.QPAttrMask) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	cur := q.attr.State
	next := cur
	if mask&rdma.AttrState != 0 {
		next = attr.State
	}
	var required, allowed rdma.QPAttrMask
	switch {
	case next == rdma.QPSError || next == rdma.QPSReset:
		allowed = ^rdma.QPAttrMask(0)
	case cur == rdma.QPSReset && next == rdma.QPSInit:
		required = rdma.AttrState | rdma.AttrPKeyIndex | rdma.AttrPort | rdma.AttrAccessFlags
		allowed = required
	case cur == rdma.QPSInit && next == rdma.QPSInit:
		allowed = rdma.AttrState | rdma.AttrPKeyIndex | rdma.AttrPort | rdma.AttrAccessFlags
	case cur == rdma.QPSInit && next == rdma.QPSRTR:
		required = rdma.AttrState | rdma.AttrAV | rdma.AttrPathMTU | rdma.AttrDestQPN | rdma.AttrRQPSN | rdma.AttrMaxDestRdAtomic | rdma.AttrMinRNRTimer
		allowed = required | rdma.AttrAccessFlags | rdma.AttrPKeyIndex
	case cur == rdma.QPSRTR && next == rdma.QPSRTS:
		required = rdma.AttrState | rdma.AttrSQPSN | rdma.AttrTimeout | rdma.AttrRetryCnt | rdma.AttrRNRRetry | rdma.AttrMaxRdAtomic
		allowed = required | rdma.AttrAccessFlags | rdma.AttrMinRNRTimer
	case cur == rdma.QPSRTS && next == rdma.QPSRTS:
		allowed = rdma.AttrState | rdma.AttrAccessFlags | rdma.AttrMinRNRTimer | rdma.AttrTimeout | rdma.AttrRetryCnt | rdma.AttrRNRRetry
	default:
		return fmt.Errorf("rocev2: QP %#x: %s -> %s: %w", q.qpn, cur, next, rdma.ErrInvalidState)
	}
	if mask&required != required || mask&^allowed != 0 {
		return fmt.Errorf("rocev2: QP %#x: %s -> %s: attribute mask %#x (required %#x, allowed %#x): %w",
			q.qpn, cur, next, mask, required, allowed, rdma.ErrInvalidAttr)
	}
	if err := q.checkAttr(attr, mask); err != nil {
		return err
	}
	q.applyAttr(attr, mask)
	switch next {
	case rdma.QPSError:
		q.attr.State = rdma.QPSError
		q.flushLocked()
		return nil
	case rdma.QPSReset:
		q.resetLocked()
		return nil
	}
	q.attr.State = next
	return nil
}

func (q *queuePair) checkAttr(a *rdma.QPAttr, mask rdma.QPAttrMask) error {
	bad := func(what string) error {
		return fmt.Errorf("rocev2: QP %#x: %s: %w", q.qpn, what, rdma.ErrInvalidAttr)
	}
	if mask&rdma.AttrPathMTU != 0 {
		if a.PathMTU.Bytes() == 0 {
			return bad("invalid path MTU")
		}
		if a.PathMTU.Bytes()+64 > q.dev.port.MaxPayload() {
			return bad(fmt.Sprintf("path MTU %d does not fit the port's %d-byte payload", a.PathMTU.Bytes(), q.dev.port.MaxPayload()))
		}
	}
	if mask&rdma.AttrDestQPN != 0 && a.DestQPN > 0xFFFFFF {
		return bad("destination QPN above 24 bits")
	}
	if mask&rdma.AttrRQPSN != 0 && a.RQPSN > 0xFFFFFF || mask&rdma.AttrSQPSN != 0 && a.SQPSN > 0xFFFFFF {
		return bad("PSN above 24 bits")
	}
	if mask&rdma.AttrRetryCnt != 0 && a.RetryCnt > 7 || mask&rdma.AttrRNRRetry != 0 && a.RNRRetry > 7 {
		return bad("retry count above 7")
	}
	if mask&rdma.AttrMinRNRTimer != 0 && a.MinRNRTimer > 31 {
		return bad("RNR timer code above 31")
	}
	if mask&rdma.AttrTimeout != 0 && a.Timeout > 31 {
		return bad("timeout above 31")
	}
	if mask&rdma.AttrAV != 0 {
		dst := a.AV.DGID.Addr()
		if !dst.IsValid() || dst.Is4() != q.dev.local.Addr().Is4() {
			return bad(fmt.Sprintf("destination GID %s is not of the device's address family", a.AV.DGID))
		}
		if a.AV.SGIDIndex != 0 {
			return bad("SGID index must be 0 (one GID per device)")
		}
	}
	return nil
}

func (q *queuePair) applyAttr(a *rdma.QPAttr, mask rdma.QPAttrMask) {
	set := func(bit rdma.QPAttrMask, f func()) {
		if mask&bit != 0 {
			f()
		}
	}
	set(rdma.AttrAccessFlags, func() { q.attr.AccessFlags = a.AccessFlags })
	set(rdma.AttrPKeyIndex, func() { q.attr.PKeyIndex = a.PKeyIndex })
	set(rdma.AttrPort, func() { q.attr.Port = a.Port })
	set(rdma.AttrAV, func() {
		q.attr.AV = a.AV
		q.remote = netip.AddrPortFrom(a.AV.DGID.Addr(), UDPPort)
		q.tos = a.AV.TrafficClass &^ 3
		if a.AV.UDPSrcPort != 0 {
			q.srcPort = a.AV.UDPSrcPort
		}
	})
	set(rdma.AttrPathMTU, func() { q.attr.PathMTU = a.PathMTU; q.mtu = a.PathMTU.Bytes() })
	set(rdma.AttrTimeout, func() { q.attr.Timeout = a.Timeout })
	set(rdma.AttrRetryCnt, func() { q.attr.RetryCnt = a.RetryCnt; q.retry = int(a.RetryCnt) })
	set(rdma.AttrRNRRetry, func() { q.attr.RNRRetry = a.RNRRetry; q.rnrRetry = int(a.RNRRetry) })
	set(rdma.AttrMinRNRTimer, func() { q.attr.MinRNRTimer = a.MinRNRTimer })
	set(rdma.AttrRQPSN, func() { q.attr.RQPSN = a.RQPSN; q.ePSN = a.RQPSN })
	set(rdma.AttrSQPSN, func() {
		q.attr.SQPSN = a.SQPSN
		q.nextPSN, q.postPSN, q.highPSN, q.una, q.lastReq = a.SQPSN, a.SQPSN, a.SQPSN, a.SQPSN, a.SQPSN
		q.wnd = q.dev.opts.Window
	})
	set(rdma.AttrMaxRdAtomic, func() { q.attr.MaxRdAtomic = a.MaxRdAtomic })
	set(rdma.AttrMaxDestRdAtomic, func() { q.attr.MaxDestRdAtomic = a.MaxDestRdAtomic })
	set(rdma.AttrDestQPN, func() { q.attr.DestQPN = a.DestQPN })
}

// resetLocked returns the QP to RESET, dropping every queued request
// without completions, as verbs does.
func (q *queuePair) resetLocked() {
	q.sqHead, q.sqLen, q.sqSend, q.sendPkt = 0, 0, 0, 0
	q.rqHead, q.rqLen, q.recvCur = 0, 0, false
	q.resps = q.resps[:0]
	q.write, q.nakSent, q.ackDue = nil, false, false
	q.atomics = [16]atomicRecord{}
	q.attr = rdma.QPAttr{State: rdma.QPSReset}
}

// toError moves the QP to ERR from outside, flushing its queues.
func (q *queuePair) toError() {
	q.mu.Lock()
	if q.attr.State != rdma.QPSError && q.attr.State != rdma.QPSReset {
		q.attr.State = rdma.QPSError
		q.flushLocked()
	}
	q.mu.Unlock()
}

// flushLocked completes every outstanding request: failed ones with their
// status, the rest of both queues with WCWRFlushErr.
func (q *queuePair) flushLocked() {
	for q.sqLen > 0 {
		w := &q.sq[q.sqHead]
		if !w.failed {
			w.failed, w.status = true, rdma.WCWRFlushErr
		}
		q.completeHeadLocked(w)
	}
	for q.rqLen > 0 {
		r := &q.rq[q.rqHead]
		q.recvCQ.push(rdma.WC{ID: r.wr.ID, Status: rdma.WCWRFlushErr, Opcode: rdma.WCRecv, QPN: q.qpn})
		q.rqHead = (q.rqHead + 1) % len(q.rq)
		q.rqLen--
	}
	q.recvCur = false
	q.resps = q.resps[:0]
	q.sqSend, q.sendPkt = 0, 0
}

// Destroy implements rdma.QP.
func (q *queuePair) Destroy() error {
	q.toError()
	q.dev.qps.remove(q.qpn)
	return nil
}

// PostRecv implements rdma.QP.
func (q *queuePair) PostRecv(wrs []rdma.RecvWR) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.attr.State == rdma.QPSReset {
		return 0, fmt.Errorf("rocev2: post receive on QP %#x in RESET: %w", q.qpn, rdma.ErrInvalidState)
	}
	for i := range wrs {
		wr := &wrs[i]
		if q.rqLen == len(q.rq) {
			return i, fmt.Errorf("rocev2: receive queue of QP %#x holds %d: %w", q.qpn, len(q.rq), rdma.ErrQueueFull)
		}
		if len(wr.SGL) > q.cap.MaxRecvSGE {
			return i, fmt.Errorf("rocev2: receive request %d has %d SGEs, QP allows %d: %w", wr.ID, len(wr.SGL), q.cap.MaxRecvSGE, rdma.ErrInvalidWR)
		}
		if q.attr.State == rdma.QPSError {
			q.recvCQ.push(rdma.WC{ID: wr.ID, Status: rdma.WCWRFlushErr, Opcode: rdma.WCRecv, QPN: q.qpn})
			continue
		}
		slot := (q.rqHead + q.rqLen) % len(q.rq)
		sge := q.rqSGE[slot*q.cap.MaxRecvSGE : slot*q.cap.MaxRecvSGE+len(wr.SGL)]
		copy(sge, wr.SGL)
		var n uint32
		for _, s := range sge {
			n += s.Length
		}
		q.rq[slot] = recvWQE{wr: rdma.RecvWR{ID: wr.ID, SGL: sge}, length: n}
		q.rqLen++
	}
	return len(wrs), nil
}
