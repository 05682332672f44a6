package rocev2

import (
	"fmt"
	"time"

	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/rocev2/wire"
)

// PostSend implements rdma.QP. Requests are checked here (opcode, SGE count,
// lengths); bad local keys surface as LOC_PROT_ERR completions when the
// request runs, as on a NIC.
func (q *queuePair) PostSend(wrs []rdma.SendWR) (int, error) {
	q.mu.Lock()
	n, err := q.postSendLocked(wrs)
	q.mu.Unlock()
	if n > 0 {
		q.dev.tx.activate(q)
		q.dev.tx.pumpIfIdle()
	}
	return n, err
}

func (q *queuePair) postSendLocked(wrs []rdma.SendWR) (int, error) {
	if q.attr.State != rdma.QPSRTS && q.attr.State != rdma.QPSError {
		return 0, fmt.Errorf("rocev2: post send on QP %#x in %s: %w", q.qpn, q.attr.State, rdma.ErrInvalidState)
	}
	now := q.dev.monoNow()
	for i := range wrs {
		wr := &wrs[i]
		if err := q.checkSendWR(wr); err != nil {
			return i, err
		}
		if q.sqLen == len(q.sq) {
			return i, fmt.Errorf("rocev2: send queue of QP %#x holds %d: %w", q.qpn, len(q.sq), rdma.ErrQueueFull)
		}
		slot := (q.sqHead + q.sqLen) % len(q.sq)
		w := &q.sq[slot]
		sge := q.sqSGE[slot*q.cap.MaxSendSGE : slot*q.cap.MaxSendSGE+len(wr.SGL)]
		copy(sge, wr.SGL)
		*w = sendWQE{wr: *wr, posted: now}
		w.wr.SGL = sge
		w.wr.Signaled = wr.Signaled || q.sigAll
		for _, s := range sge {
			w.length += s.Length
		}
		q.sqLen++
		if q.attr.State == rdma.QPSError {
			w.failed, w.status = true, rdma.WCWRFlushErr
			q.completeLocked()
			continue
		}
		w.psn = q.postPSN
		w.npsn = q.packets(w)
		q.postPSN = wire.PSNAdd(q.postPSN, w.npsn)
	}
	return len(wrs), nil
}

func (q *queuePair) checkSendWR(wr *rdma.SendWR) error {
	bad := func(why string) error {
		return fmt.Errorf("rocev2: send request %d on QP %#x: %s: %w", wr.ID, q.qpn, why, rdma.ErrInvalidWR)
	}
	if len(wr.SGL) > q.cap.MaxSendSGE {
		return bad(fmt.Sprintf("%d SGEs, QP allows %d", len(wr.SGL), q.cap.MaxSendSGE))
	}
	var n uint64
	for _, s := range wr.SGL {
		n += uint64(s.Length)
	}
	switch wr.Opcode {
	case rdma.WRSend, rdma.WRSendWithImm, rdma.WRRDMAWrite, rdma.WRRDMAWriteWithImm, rdma.WRRDMARead:
		if n > 1<<31 {
			return bad("message above 2 GiB")
		}
	case rdma.WRAtomicCmpAndSwp, rdma.WRAtomicFetchAndAdd:
		if n != 8 || len(wr.SGL) != 1 {
			return bad("an atomic needs one 8-byte SGE")
		}
		if wr.RemoteAddr%8 != 0 {
			return bad("atomic remote address not 8-byte aligned")
		}
	default:
		return bad("unknown opcode " + wr.Opcode.String())
	}
	return nil
}

// packets is the PSNs a request uses.
func (q *queuePair) packets(w *sendWQE) uint32 {
	switch w.wr.Opcode {
	case rdma.WRAtomicCmpAndSwp, rdma.WRAtomicFetchAndAdd:
		return 1
	}
	return max(1, (w.length+uint32(q.mtu)-1)/uint32(q.mtu))
}

// minWindow is the smallest window go-back halving leaves.
const minWindow = 8

// requestWork reports whether the requester has packets it may send now.
func (q *queuePair) requestWork(now time.Time) bool {
	if q.attr.State != rdma.QPSRTS || q.sqSend >= q.sqLen {
		return false
	}
	if !q.rnrUntil.IsZero() && now.Before(q.rnrUntil) {
		return false
	}
	if int(wire.PSNDiff(q.nextPSN, q.oldestPSN())) >= q.wnd || !q.ccWindowOpen() {
		return false
	}
	if w := &q.sq[(q.sqHead+q.sqSend)%len(q.sq)]; (w.wr.Opcode == rdma.WRRDMARead || isAtomic(w.wr.Opcode)) && q.sendPkt == 0 {
		return q.readsOutstanding() < max(1, int(q.attr.MaxRdAtomic))
	}
	return true
}

// readsOutstanding counts started READs and atomics not yet answered
// (bounded by max_rd_atomic).
func (q *queuePair) readsOutstanding() int {
	n := 0
	for i := 0; i < q.sqSend && i < q.sqLen; i++ {
		w := &q.sq[(q.sqHead+i)%len(q.sq)]
		if !w.acked && (w.wr.Opcode == rdma.WRRDMARead || isAtomic(w.wr.Opcode)) {
			n++
		}
	}
	return n
}

// oldestPSN is the first PSN not yet acknowledged or answered.
func (q *queuePair) oldestPSN() uint32 {
	for i := 0; i <= q.sqSend && i < q.sqLen; i++ { // the transmitting entry too: it may be mid-resend
		w := &q.sq[(q.sqHead+i)%len(q.sq)]
		if w.acked {
			continue
		}
		base := wire.PSNAdd(w.psn, w.gotPkt)
		if w.wr.Opcode == rdma.WRRDMARead || isAtomic(w.wr.Opcode) {
			return base // only responses move a READ or atomic forward
		}
		switch d := wire.PSNDiff(q.una, base); {
		case d <= 0:
			return base
		case d < int32(w.npsn):
			return q.una // part of a long SEND or WRITE is acknowledged
		}
		// Wholly acknowledged, not yet marked: look further.
	}
	return q.nextPSN
}

// nextRequest encodes the next request packet into b; ok false when there is
// nothing to send now. It advances the transmit position.
func (q *queuePair) nextRequest(b []byte, now time.Time) (n int, ok bool) {
	if !q.requestWork(now) {
		return 0, false
	}
	w := &q.sq[(q.sqHead+q.sqSend)%len(q.sq)]
	var p wire.Packet
	p.PKey = 0xFFFF
	p.DestQP = q.attr.DestQPN
	p.PSN = q.nextPSN
	mtu := uint32(q.mtu)
	k := q.sendPkt // packet index within the request
	last := false
	switch w.wr.Opcode {
	case rdma.WRRDMARead:
		// Ask (again) from the first response not yet placed.
		p.OpCode = wire.OpRDMAReadRequest
		p.PSN = wire.PSNAdd(w.psn, w.gotPkt)
		off := uint64(w.gotPkt) * uint64(mtu)
		p.RETH = wire.RETH{VA: w.wr.RemoteAddr + off, RKey: w.wr.RKey, DMALen: w.length - uint32(off)}
		q.nextPSN = wire.PSNAdd(w.psn, w.npsn)
		last = true
	case rdma.WRAtomicCmpAndSwp, rdma.WRAtomicFetchAndAdd:
		p.OpCode = wire.OpCompareSwap
		if w.wr.Opcode == rdma.WRAtomicFetchAndAdd {
			p.OpCode = wire.OpFetchAdd
		}
		p.AtomicETH = wire.AtomicETH{VA: w.wr.RemoteAddr, RKey: w.wr.RKey, SwapAdd: w.wr.Swap, Compare: w.wr.CompareAdd}
		if w.wr.Opcode == rdma.WRAtomicFetchAndAdd {
			p.AtomicETH.SwapAdd, p.AtomicETH.Compare = w.wr.CompareAdd, 0
		}
		q.nextPSN = wire.PSNAdd(q.nextPSN, 1)
		last = true
	default:
		first, lastPkt := k == 0, k+1 == w.npsn
		p.OpCode = dataOpcode(w.wr.Opcode, first, lastPkt)
		if first && (w.wr.Opcode == rdma.WRRDMAWrite || w.wr.Opcode == rdma.WRRDMAWriteWithImm) {
			p.RETH = wire.RETH{VA: w.wr.RemoteAddr, RKey: w.wr.RKey, DMALen: w.length}
		}
		if lastPkt && (w.wr.Opcode == rdma.WRSendWithImm || w.wr.Opcode == rdma.WRRDMAWriteWithImm) {
			p.Imm = w.wr.Imm
		}
		off := k * mtu
		size := min(mtu, w.length-off)
		hl := p.HeaderLen()
		if len(b) < hl+int(size)+8 {
			return 0, false
		}
		// Gather the payload straight into its place in b.
		dst := b[hl : hl+int(size)]
		if !q.gather(w, off, dst) {
			q.failLocked(w, rdma.WCLocProtErr)
			return 0, false
		}
		p.Payload = dst
		q.nextPSN = wire.PSNAdd(q.nextPSN, 1)
		last = lastPkt
	}
	// Ask for an ACK at least twice per window, or a small window stalls.
	if last || wire.PSNDiff(p.PSN, q.lastReq) >= int32(q.ackReqSpacing()) {
		p.AckReq = p.OpCode != wire.OpRDMAReadRequest && !p.OpCode.IsAtomic()
		q.lastReq = p.PSN
	}
	if last {
		q.sqSend++
		q.sendPkt = 0
	} else {
		q.sendPkt++
	}
	resend := wire.PSNDiff(p.PSN, q.highPSN) < 0
	if resend {
		q.dev.stats.Retransmits.Add(1)
	} else {
		q.highPSN = q.nextPSN
	}
	q.cc.txPSN, q.cc.txAckReq, q.cc.txResend = p.PSN, p.AckReq, resend
	if q.rto.IsZero() {
		q.armRTO(now)
	}
	n, err := wire.Encode(b, &p)
	if err != nil {
		q.failLocked(w, rdma.WCLocQPOpErr)
		return 0, false
	}
	return n, true
}

func dataOpcode(op rdma.WROpcode, first, last bool) wire.OpCode {
	write := op == rdma.WRRDMAWrite || op == rdma.WRRDMAWriteWithImm
	imm := op == rdma.WRSendWithImm || op == rdma.WRRDMAWriteWithImm
	switch {
	case first && last && write && imm:
		return wire.OpRDMAWriteOnlyWithImmediate
	case first && last && write:
		return wire.OpRDMAWriteOnly
	case first && last && imm:
		return wire.OpSendOnlyWithImmediate
	case first && last:
		return wire.OpSendOnly
	case first && write:
		return wire.OpRDMAWriteFirst
	case first:
		return wire.OpSendFirst
	case last && write && imm:
		return wire.OpRDMAWriteLastWithImmediate
	case last && write:
		return wire.OpRDMAWriteLast
	case last && imm:
		return wire.OpSendLastWithImmediate
	case last:
		return wire.OpSendLast
	case write:
		return wire.OpRDMAWriteMiddle
	}
	return wire.OpSendMiddle
}

// gather copies len(dst) bytes of w's local data starting at byte off.
func (q *queuePair) gather(w *sendWQE, off uint32, dst []byte) bool {
	return q.sglCopy(w.wr.SGL, off, dst, false, 0)
}

// sglCopy copies between dst and the local memory an SGL names, starting at
// byte off of the SGL: from the SGL into dst (toSGL false, needs no access
// flag) or from dst into the SGL (toSGL true, needs local write).
func (q *queuePair) sglCopy(sgl []rdma.SGE, off uint32, dst []byte, toSGL bool, need rdma.AccessFlags) bool {
	for _, s := range sgl {
		if len(dst) == 0 {
			return true
		}
		if off >= s.Length {
			off -= s.Length
			continue
		}
		n := min(s.Length-off, uint32(len(dst)))
		span, ok := q.dev.mrs.lookup(s.LKey).span(q.pd, s.Addr+uint64(off), uint64(n), need)
		if !ok {
			return false
		}
		if toSGL {
			copy(span, dst[:n])
		} else {
			copy(dst[:n], span)
		}
		dst = dst[n:]
		off = 0
	}
	return len(dst) == 0
}

func (q *queuePair) armRTO(now time.Time) {
	if d := rdma.AckTimeout(q.attr.Timeout); d > 0 {
		q.rto = now.Add(d)
	}
}

// failLocked completes w with an error and moves the QP to ERR.
func (q *queuePair) failLocked(w *sendWQE, st rdma.WCStatus) {
	w.failed, w.status, w.acked = true, st, true
	q.attr.State = rdma.QPSError
	q.completeLocked()
	q.flushLocked()
}

// completeLocked pushes the completions of finished requests at the head of
// the send queue, in order.
func (q *queuePair) completeLocked() {
	for q.sqLen > 0 {
		w := &q.sq[q.sqHead]
		if !w.acked && !w.failed {
			return
		}
		q.completeHeadLocked(w)
	}
}

func (q *queuePair) completeHeadLocked(w *sendWQE) {
	if !w.failed {
		q.recordLatency(w)
	}
	if w.wr.Signaled || w.failed {
		wc := rdma.WC{ID: w.wr.ID, Opcode: wcOpcode(w.wr.Opcode), QPN: q.qpn}
		if w.failed {
			wc.Status = w.status
		}
		if w.wr.Opcode == rdma.WRRDMARead {
			wc.ByteLen = w.got
		}
		if !q.sendCQ.push(wc) {
			q.attr.State = rdma.QPSError
		}
	}
	q.sqHead = (q.sqHead + 1) % len(q.sq)
	q.sqLen--
	if q.sqSend > 0 {
		q.sqSend--
	} else {
		q.sendPkt = 0
	}
}

func wcOpcode(op rdma.WROpcode) rdma.WCOpcode {
	switch op {
	case rdma.WRRDMAWrite, rdma.WRRDMAWriteWithImm:
		return rdma.WCRDMAWrite
	case rdma.WRRDMARead:
		return rdma.WCRDMARead
	case rdma.WRAtomicCmpAndSwp:
		return rdma.WCCompSwap
	case rdma.WRAtomicFetchAndAdd:
		return rdma.WCFetchAdd
	}
	return rdma.WCSend
}
