package rocev2

import (
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/rocev2/wire"
)

// maxQueuedResponses bounds the READ responses and atomic ACKs one QP
// keeps queued; a requester honouring max_rd_atomic stays far below it.
const maxQueuedResponses = 256

// ctrl is a control packet the responder wants sent (ACK or NAK), collected
// during a receive batch and sent after it.
type ctrl struct {
	q   *queuePair
	syn wire.Syndrome
	psn uint32
	msn uint32
}

// onRequest handles a request packet for this QP on the receive goroutine.
// It returns a control packet to send, if any.
func (q *queuePair) onRequest(p *wire.Packet, ce bool, now time.Time) (c ctrl, send bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.attr.State
	if st != rdma.QPSRTR && st != rdma.QPSRTS {
		q.dev.stats.UnknownQP.Add(1)
		return c, false
	}
	if ce {
		q.dev.stats.CERcvd.Add(1)
	}
	d := wire.PSNDiff(p.PSN, q.ePSN)
	switch {
	case d > 0:
		// A packet went missing: one sequence NAK, then silence until the
		// expected PSN shows up again.
		if q.nakSent {
			return c, false
		}
		q.nakSent = true
		q.dev.stats.SeqNAKsSent.Add(1)
		return q.nak(wire.NAKPSNSequenceError, q.ePSN), true
	case d < 0:
		q.dev.stats.DuplicateRequests.Add(1)
		return q.duplicate(p)
	}
	q.nakSent = false
	op := p.OpCode
	switch {
	case op.IsSend():
		return q.onSend(p)
	case op.IsWrite():
		return q.onWrite(p)
	case op == wire.OpRDMAReadRequest:
		return q.onReadRequest(p, p.PSN)
	case op.IsAtomic():
		return q.onAtomic(p)
	}
	return q.nak(wire.NAKInvalidRequest, p.PSN), true
}

func (q *queuePair) nak(syn wire.Syndrome, psn uint32) ctrl {
	if syn.IsNAK() && syn != wire.NAKPSNSequenceError {
		q.dev.stats.AccessNAKsSent.Add(1)
	}
	return ctrl{q: q, syn: syn, psn: psn, msn: q.msn}
}

// rnrNAK answers a request that needs a receive when none is posted. The
// packets already in flight behind it are dropped silently, like those
// behind a sequence NAK: one NAK per error, and the requester resends them
// all after the RNR timer anyway. A sequence NAK for each of them would
// cost the requester a transport retry per RNR round.
func (q *queuePair) rnrNAK(psn uint32) ctrl {
	q.dev.stats.RNRNAKsSent.Add(1)
	q.nakSent = true
	return ctrl{q: q, syn: wire.RNRNAKSyndrome(q.attr.MinRNRTimer), psn: psn, msn: q.msn}
}

// accept advances the expected PSN past an executed packet and notes an ACK
// when the requester asked for one.
func (q *queuePair) accept(p *wire.Packet) (ctrl, bool) {
	q.ePSN = wire.PSNAdd(q.ePSN, 1)
	if p.AckReq {
		q.ackDue = true
	}
	return ctrl{}, false
}

func (q *queuePair) onSend(p *wire.Packet) (ctrl, bool) {
	op := p.OpCode
	if op.IsFirst() || op.IsOnly() {
		if q.recvCur {
			return q.nak(wire.NAKInvalidRequest, p.PSN), true
		}
		if q.rqLen == 0 {
			return q.rnrNAK(p.PSN), true
		}
		q.recvCur, q.recvOff = true, 0
	} else if !q.recvCur {
		return q.nak(wire.NAKInvalidRequest, p.PSN), true
	}
	r := &q.rq[q.rqHead]
	if q.recvOff+uint32(len(p.Payload)) > r.length || !q.sglCopy(r.wr.SGL, q.recvOff, p.Payload, true, rdma.AccessLocalWrite) {
		// Longer than the receive buffer, or the buffer is not writable.
		st := rdma.WCLocLenErr
		if q.recvOff+uint32(len(p.Payload)) <= r.length {
			st = rdma.WCLocProtErr
		}
		q.finishRecv(rdma.WC{ID: r.wr.ID, Status: st, Opcode: rdma.WCRecv, QPN: q.qpn})
		return q.nak(wire.NAKInvalidRequest, p.PSN), true
	}
	q.recvOff += uint32(len(p.Payload))
	if op.IsLast() || op.IsOnly() {
		wc := rdma.WC{ID: r.wr.ID, Opcode: rdma.WCRecv, ByteLen: q.recvOff, QPN: q.qpn}
		if op.HasImm() {
			wc.Imm, wc.HasImm = p.Imm, true
		}
		q.finishRecv(wc)
		q.msn = wire.PSNAdd(q.msn, 1)
	}
	return q.accept(p)
}

// finishRecv completes the receive request at the head of the queue.
func (q *queuePair) finishRecv(wc rdma.WC) {
	q.recvCQ.push(wc)
	q.rqHead = (q.rqHead + 1) % len(q.rq)
	q.rqLen--
	q.recvCur = false
}

func (q *queuePair) onWrite(p *wire.Packet) (ctrl, bool) {
	op := p.OpCode
	if op.IsFirst() || op.IsOnly() {
		span, mr, ok := q.remoteSpan(p.RETH.RKey, p.RETH.VA, uint64(p.RETH.DMALen), rdma.AccessRemoteWrite)
		if !ok {
			return q.nak(wire.NAKRemoteAccessError, p.PSN), true
		}
		q.write, q.writeMR, q.writeOff = span, mr, 0
	} else if q.write == nil {
		return q.nak(wire.NAKInvalidRequest, p.PSN), true
	} else if q.writeMR != nil && q.writeMR.dead.Load() {
		// Deregistered in the middle of the message: access ends at once.
		q.write = nil
		return q.nak(wire.NAKRemoteAccessError, p.PSN), true
	}
	end := q.writeOff + uint32(len(p.Payload))
	lastPkt := op.IsLast() || op.IsOnly()
	if end > uint32(len(q.write)) || lastPkt && end != uint32(len(q.write)) {
		q.write = nil
		return q.nak(wire.NAKInvalidRequest, p.PSN), true
	}
	if op.HasImm() && q.rqLen == 0 {
		return q.rnrNAK(p.PSN), true
	}
	copy(q.write[q.writeOff:end], p.Payload)
	q.writeOff = end
	if lastPkt {
		if op.HasImm() {
			r := &q.rq[q.rqHead]
			q.finishRecv(rdma.WC{ID: r.wr.ID, Opcode: rdma.WCRecvRDMAWithImm, ByteLen: uint32(len(q.write)), Imm: p.Imm, HasImm: true, QPN: q.qpn})
		}
		q.write = nil
		q.msn = wire.PSNAdd(q.msn, 1)
	}
	return q.accept(p)
}

// remoteSpan checks a remote key, range and permission against this QP's
// protection domain and access flags.
func (q *queuePair) remoteSpan(rkey uint32, va, n uint64, need rdma.AccessFlags) ([]byte, *memRegion, bool) {
	if !q.attr.AccessFlags.Has(need) {
		return nil, nil, false
	}
	if n == 0 {
		return []byte{}, nil, true
	}
	mr := q.dev.mrs.lookup(rkey)
	span, ok := mr.span(q.pd, va, n, need)
	return span, mr, ok
}

func (q *queuePair) onReadRequest(p *wire.Packet, psn uint32) (ctrl, bool) {
	span, mr, ok := q.remoteSpan(p.RETH.RKey, p.RETH.VA, uint64(p.RETH.DMALen), rdma.AccessRemoteRead)
	if !ok {
		return q.nak(wire.NAKRemoteAccessError, psn), true
	}
	if len(q.resps) >= maxQueuedResponses {
		// More READs and atomics outstanding than any requester may have.
		return q.nak(wire.NAKInvalidRequest, psn), true
	}
	npkt := max(1, (uint32(len(span))+uint32(q.mtu)-1)/uint32(q.mtu))
	if psn == q.ePSN {
		q.ePSN = wire.PSNAdd(q.ePSN, npkt)
		q.msn = wire.PSNAdd(q.msn, 1)
	} else {
		// The requester went back to psn: what is queued from there on
		// would arrive as duplicates; its own go-back asks for it again.
		q.dropResponsesFrom(psn)
	}
	q.resps = append(q.resps, response{psn: psn, data: span, mr: mr, npkt: npkt})
	q.dev.tx.activate(q)
	return ctrl{}, false
}

func (q *queuePair) onAtomic(p *wire.Packet) (ctrl, bool) {
	a := &p.AtomicETH
	if a.VA%8 != 0 {
		return q.nak(wire.NAKInvalidRequest, p.PSN), true
	}
	span, _, ok := q.remoteSpan(a.RKey, a.VA, 8, rdma.AccessRemoteAtomic)
	if !ok {
		return q.nak(wire.NAKRemoteAccessError, p.PSN), true
	}
	// The region is 8-byte aligned here (VA is, and VA-Addr indexes a Go
	// slice whose base the VA was computed from).
	ptr := (*uint64)(unsafe.Pointer(&span[0]))
	var orig uint64
	if p.OpCode == wire.OpCompareSwap {
		for {
			orig = atomic.LoadUint64(ptr)
			if orig != a.Compare || atomic.CompareAndSwapUint64(ptr, orig, a.SwapAdd) {
				break
			}
		}
	} else {
		orig = atomic.AddUint64(ptr, a.SwapAdd) - a.SwapAdd
	}
	q.atomics[q.atomicIdx] = atomicRecord{valid: true, psn: p.PSN, orig: orig}
	q.atomicIdx = (q.atomicIdx + 1) % len(q.atomics)
	q.ePSN = wire.PSNAdd(q.ePSN, 1)
	q.msn = wire.PSNAdd(q.msn, 1)
	q.resps = append(q.resps, response{atomic: true, psn: p.PSN, orig: orig})
	q.dev.tx.activate(q)
	return ctrl{}, false
}

// dropResponsesFrom discards queued responses that are not wholly before psn.
func (q *queuePair) dropResponsesFrom(psn uint32) {
	kept := q.resps[:0]
	for _, r := range q.resps {
		if wire.PSNDiff(wire.PSNAdd(r.psn, max(r.npkt, 1)-1), psn) < 0 {
			kept = append(kept, r)
		}
	}
	clear(q.resps[len(kept):])
	q.resps = kept
}

// duplicate answers a request the responder has already executed: sends and
// writes are acknowledged again, reads are served again (they are
// idempotent), atomics get their recorded result without running again.
func (q *queuePair) duplicate(p *wire.Packet) (ctrl, bool) {
	switch {
	case p.OpCode == wire.OpRDMAReadRequest:
		return q.onReadRequest(p, p.PSN)
	case p.OpCode.IsAtomic():
		q.dropResponsesFrom(p.PSN)
		for _, r := range q.atomics {
			if r.valid && r.psn == p.PSN {
				q.resps = append(q.resps, response{atomic: true, psn: p.PSN, orig: r.orig})
				q.dev.tx.activate(q)
				break
			}
		}
		return ctrl{}, false
	}
	if p.AckReq {
		q.ackDue = true
	}
	return ctrl{}, false
}

// takeAck returns the coalesced ACK the responder owes, if no READ response
// or atomic ACK is still queued ahead of it (responses go out in PSN order).
func (q *queuePair) takeAck() (ctrl, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.takeAckLocked()
}

func (q *queuePair) takeAckLocked() (ctrl, bool) {
	if !q.ackDue || len(q.resps) > 0 {
		return ctrl{}, false
	}
	q.ackDue = false
	return ctrl{q: q, syn: wire.ACKSyndrome(wire.CreditInvalid), psn: wire.PSNAdd(q.ePSN, wire.Mask24), msn: q.msn}, true
}

// nextResponse encodes the next queued READ response packet or atomic ACK
// into b. It runs on the transmit path.
func (q *queuePair) nextResponse(b []byte) (n int, ok bool) {
	if len(q.resps) == 0 {
		return 0, false
	}
	r := &q.resps[0]
	var p wire.Packet
	p.PKey = 0xFFFF
	p.DestQP = q.attr.DestQPN
	p.PSN = wire.PSNAdd(r.psn, r.sent)
	p.AETH = wire.AETH{Syndrome: wire.ACKSyndrome(wire.CreditInvalid), MSN: q.msn}
	done := false
	if r.atomic {
		p.OpCode = wire.OpAtomicAcknowledge
		p.AtomicAck = r.orig
		done = true
	} else if r.mr != nil && r.mr.dead.Load() {
		// Deregistered while the response streamed: end it with a NAK.
		p.OpCode = wire.OpAcknowledge
		p.AETH.Syndrome = wire.NAKRemoteAccessError
		q.dev.stats.AccessNAKsSent.Add(1)
		done = true
	} else {
		mtu := uint32(q.mtu)
		off := r.sent * mtu
		size := min(mtu, uint32(len(r.data))-off)
		first, last := r.sent == 0, r.sent+1 == r.npkt
		switch {
		case first && last:
			p.OpCode = wire.OpRDMAReadResponseOnly
		case first:
			p.OpCode = wire.OpRDMAReadResponseFirst
		case last:
			p.OpCode = wire.OpRDMAReadResponseLast
		default:
			p.OpCode = wire.OpRDMAReadResponseMiddle
		}
		p.Payload = r.data[off : off+size]
		r.sent++
		done = last
	}
	n, err := wire.Encode(b, &p)
	if done {
		copy(q.resps, q.resps[1:])
		q.resps = q.resps[:len(q.resps)-1]
	}
	if err != nil {
		return 0, false
	}
	return n, true
}

// ceMarked reports whether a received packet carried CE.
func ceMarked(tos uint8) bool { return tos&dataplane.ECNMask == dataplane.ECNCE }
