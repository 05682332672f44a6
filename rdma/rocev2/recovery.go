package rocev2

import (
	"encoding/binary"
	"time"

	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/rocev2/wire"
)

// The requester's side of reliability: acknowledgements, NAKs, READ
// responses and atomic ACKs coming back, and go-back-N after a NAK or a
// timeout.

// onResponse handles an ACK, NAK, READ response or atomic ACK for this QP.
// It runs on the receive goroutine.
func (q *queuePair) onResponse(p *wire.Packet, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.attr.State != rdma.QPSRTS {
		return
	}
	psn := p.PSN
	switch {
	case p.OpCode == wire.OpAcknowledge:
		syn := p.AETH.Syndrome
		switch {
		case syn.IsACK():
			q.dev.stats.AcksRcvd.Add(1)
			q.ackThrough(psn, now)
		case syn.IsRNRNAK():
			q.dev.stats.RNRNAKsRcvd.Add(1)
			q.ackThrough(wire.PSNAdd(psn, wire.Mask24), now) // everything before psn
			if q.attr.RNRRetry != 7 {
				if q.rnrRetry == 0 {
					if w := q.wqeAt(psn); w != nil {
						q.failLocked(w, rdma.WCRNRRetryExcErr)
					}
					return
				}
				q.rnrRetry--
			}
			q.rnrUntil = now.Add(max(wire.RNRTimer(syn.Value()), 10*time.Microsecond))
			q.goBack(psn)
		case syn == wire.NAKPSNSequenceError:
			q.dev.stats.SeqNAKsRcvd.Add(1)
			q.ackThrough(wire.PSNAdd(psn, wire.Mask24), now)
			if !q.rnrUntil.IsZero() {
				// The packets sent behind an RNR-NAKed request: the RNR
				// wait resends them, and it costs no transport retry.
				return
			}
			if !q.consumeRetry() {
				return
			}
			q.ccLoss(now)
			q.goBack(psn)
		default:
			q.dev.stats.ErrNAKsRcvd.Add(1)
			q.ackThrough(wire.PSNAdd(psn, wire.Mask24), now)
			st := rdma.WCRemOpErr
			switch syn {
			case wire.NAKInvalidRequest:
				st = rdma.WCRemInvReqErr
			case wire.NAKRemoteAccessError:
				st = rdma.WCRemAccessErr
			}
			if w := q.wqeAt(psn); w != nil {
				q.failLocked(w, st)
			}
		}
	case p.OpCode.IsReadResponse():
		q.onReadResponse(p, now)
	case p.OpCode == wire.OpAtomicAcknowledge:
		w := q.wqeAt(psn)
		if w == nil || w.acked || w.psn != psn || !isAtomic(w.wr.Opcode) {
			return // duplicate or stray
		}
		var v [8]byte
		binary.LittleEndian.PutUint64(v[:], p.AtomicAck)
		if !q.sglCopy(w.wr.SGL, 0, v[:], true, rdma.AccessLocalWrite) {
			q.failLocked(w, rdma.WCLocProtErr)
			return
		}
		w.acked, w.gotPkt = true, 1
		q.ackThrough(wire.PSNAdd(psn, wire.Mask24), now)
		q.progress(now)
	}
}

func isAtomic(op rdma.WROpcode) bool {
	return op == rdma.WRAtomicCmpAndSwp || op == rdma.WRAtomicFetchAndAdd
}

func (q *queuePair) onReadResponse(p *wire.Packet, now time.Time) {
	w := q.wqeAt(p.PSN)
	if w == nil || w.acked || w.wr.Opcode != rdma.WRRDMARead {
		return
	}
	want := wire.PSNAdd(w.psn, w.gotPkt)
	if p.PSN != want {
		switch {
		case wire.PSNDiff(p.PSN, want) <= 0:
			// A duplicate of something placed already.
		case w.reasked && w.reaskedAt == want:
			// The rest of a burst we already asked again about: the
			// responder is alive, so the timer waits for the burst to end
			// rather than spending a retry while responses still arrive.
			q.armRTO(now)
		default:
			// A response went missing: ask again from the first missing
			// one, once; the rest of this burst is out of order too.
			if q.consumeRetry() {
				w.reasked, w.reaskedAt = true, want
				q.ccLoss(now)
				q.goBack(want)
			}
		}
		return
	}
	// A response implies that every earlier request was executed, even if
	// this one turns out malformed.
	q.ackThrough(wire.PSNAdd(w.psn, wire.Mask24), now)
	mtu := uint32(q.mtu)
	lastPkt := w.gotPkt+1 == w.npsn
	if !lastPkt && uint32(len(p.Payload)) != mtu || lastPkt && w.got+uint32(len(p.Payload)) != w.length {
		q.failLocked(w, rdma.WCBadRespErr)
		return
	}
	if !q.sglCopy(w.wr.SGL, w.got, p.Payload, true, rdma.AccessLocalWrite) {
		q.failLocked(w, rdma.WCLocProtErr)
		return
	}
	w.got += uint32(len(p.Payload))
	w.gotPkt++
	if lastPkt {
		w.acked = true
	}
	q.progress(now)
	q.completeLocked()
}

// wqeAt finds the started request whose PSN range holds psn.
func (q *queuePair) wqeAt(psn uint32) *sendWQE {
	for i := 0; i < q.sqLen; i++ {
		w := &q.sq[(q.sqHead+i)%len(q.sq)]
		if d := wire.PSNDiff(psn, w.psn); d >= 0 && d < int32(w.npsn) {
			return w
		}
	}
	return nil
}

// ackThrough marks sends and writes whose last PSN is at or before psn as
// acknowledged and completes what it can.
func (q *queuePair) ackThrough(psn uint32, now time.Time) {
	moved := false
	// Against highPSN, not nextPSN: after a go-back an ACK may cover
	// packets sent before it, ahead of the resend position.
	if next := wire.PSNAdd(psn, 1); wire.PSNDiff(next, q.una) > 0 && wire.PSNDiff(next, q.highPSN) <= 0 {
		// Additive increase: one more packet per window's worth acknowledged.
		acked := int(wire.PSNDiff(next, q.una))
		q.ccAck(now, acked, psn)
		q.wndAcc += acked
		for q.wndAcc >= q.wnd && q.wnd < q.dev.opts.Window {
			q.wndAcc -= q.wnd
			q.wnd++
		}
		q.una = next
		moved = true
		q.skipAcked()
	}
	for i := 0; i <= q.sqSend && i < q.sqLen; i++ {
		w := &q.sq[(q.sqHead+i)%len(q.sq)]
		last := wire.PSNAdd(w.psn, w.npsn-1)
		if wire.PSNDiff(psn, last) < 0 || wire.PSNDiff(q.nextPSN, w.psn) <= 0 && i == q.sqSend {
			break // not (wholly) acknowledged, or not sent at all
		}
		if !w.acked && (w.wr.Opcode != rdma.WRRDMARead && !isAtomic(w.wr.Opcode)) {
			w.acked = true
			moved = true
			if i == q.sqSend {
				// Acknowledged while being resent: skip the rest of it.
				q.sqSend++
				q.sendPkt = 0
				if end := wire.PSNAdd(w.psn, w.npsn); wire.PSNDiff(end, q.nextPSN) > 0 {
					q.nextPSN = end
				}
			}
		}
	}
	if moved {
		q.progress(now)
	}
	q.completeLocked()
}

// skipAcked moves the transmit position of a resend past packets the
// responder has since acknowledged.
func (q *queuePair) skipAcked() {
	if wire.PSNDiff(q.una, q.nextPSN) <= 0 || q.sqSend >= q.sqLen {
		return
	}
	w := &q.sq[(q.sqHead+q.sqSend)%len(q.sq)]
	if w.wr.Opcode == rdma.WRRDMARead || isAtomic(w.wr.Opcode) {
		return
	}
	if d := wire.PSNDiff(q.una, w.psn); d > 0 && d < int32(w.npsn) {
		q.sendPkt = uint32(d)
		q.nextPSN = q.una
	}
}

// progress restarts the retry budget and the timer after forward progress,
// and wakes the transmit path: the window may have opened.
func (q *queuePair) progress(now time.Time) {
	q.retry = int(q.attr.RetryCnt)
	q.rnrRetry = int(q.attr.RNRRetry)
	if q.sqSend < q.sqLen {
		q.dev.tx.activate(q)
	}
	if q.oldestPSN() == q.nextPSN && q.sqSend >= q.sqLen {
		q.rto = time.Time{}
	} else {
		q.armRTO(now)
	}
}

// consumeRetry takes one retry; when none is left the oldest request fails
// with RETRY_EXC_ERR and the QP goes to ERR.
func (q *queuePair) consumeRetry() bool {
	if q.retry > 0 {
		q.retry--
		return true
	}
	if q.sqLen > 0 {
		q.failLocked(&q.sq[q.sqHead], rdma.WCRetryExcErr)
	}
	return false
}

// goBack restarts transmission at psn (go-back-N): the request holding it
// and everything after are sent again. Every go-back halves the window
// (down to minWindow): go-back-N resends a whole window per loss, so on a
// lossy path a small window wastes far less; progress opens it again.
func (q *queuePair) goBack(psn uint32) {
	q.wnd, q.wndAcc = max(minWindow, q.wnd/2), 0
	q.cc.rttReset() // Karn: no RTT sample across a resend
	// Count the AckReq spacing from here: the last AckReq may lie ahead of
	// the resent packets, beyond the window.
	q.lastReq = wire.PSNAdd(psn, wire.Mask24)
	for i := 0; i < q.sqLen; i++ {
		w := &q.sq[(q.sqHead+i)%len(q.sq)]
		d := wire.PSNDiff(psn, w.psn)
		if d < 0 || d >= int32(w.npsn) {
			continue
		}
		if i > q.sqSend {
			return // not sent yet: nothing to go back to
		}
		q.sqSend = i
		q.sendPkt = uint32(d)
		if w.wr.Opcode == rdma.WRRDMARead {
			q.sendPkt = w.gotPkt
			psn = wire.PSNAdd(w.psn, w.gotPkt)
		}
		q.nextPSN = psn
		q.dev.tx.activate(q)
		return
	}
}

// checkTimer fires the retransmission timer and ends RNR waits. It runs on
// the transmit goroutine.
func (q *queuePair) checkTimer(now time.Time) (work bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.attr.State != rdma.QPSRTS {
		return false
	}
	if !q.rnrUntil.IsZero() && !now.Before(q.rnrUntil) {
		q.rnrUntil = time.Time{}
		q.armRTO(now)
	}
	if !q.rto.IsZero() && now.After(q.rto) && q.rnrUntil.IsZero() {
		q.dev.stats.Timeouts.Add(1)
		if q.consumeRetry() {
			q.armRTO(now)
			q.ccLoss(now)
			q.goBack(q.oldestPSN())
		}
	}
	q.ccTick(now)
	return q.requestWork(now) || len(q.resps) > 0
}
