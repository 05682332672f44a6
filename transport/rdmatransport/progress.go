package rdmatransport

import (
	"context"
	"fmt"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/rdma"
)

// progress drains the completion queue until ctx ends: the transport's one
// background goroutine. With a ReadyCQ it takes completions under the
// lock, as waiters that poll (drive) do, so that the two never handle
// completions out of order; with another CQ it waits in CQ.Wait.
func (t *Transport) progress(ctx context.Context) {
	defer close(t.progressDone)
	wcs := make([]rdma.WC, 64)
	for {
		var n int
		var err error
		if t.readyCQ != nil {
			t.mu.Lock()
			n, err = t.cq.Poll(wcs)
			if n > 0 {
				t.handle(wcs[:n])
			}
			t.mu.Unlock()
			if n == 0 && err == nil {
				select {
				case <-t.readyCQ.Ready():
				case <-ctx.Done():
					return
				}
				continue
			}
		} else {
			n, err = t.cq.Wait(ctx, wcs)
			if n > 0 {
				t.mu.Lock()
				t.handle(wcs[:n])
				t.mu.Unlock()
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				// The queue overflowed or closed under us: nothing more can
				// complete, so every peer is lost.
				t.mu.Lock()
				for _, p := range t.peers {
					if p != nil {
						t.peerLost(p, fmt.Errorf("rdmatransport: completion queue: %w: %w", collective.ErrPeerLost, err))
					}
				}
				t.mu.Unlock()
			}
			return
		}
	}
}

// handle processes completions and then sends what they let go; t.mu is
// held.
func (t *Transport) handle(wcs []rdma.WC) {
	for i := range wcs {
		t.onCompletion(&wcs[i])
	}
	for _, p := range t.peers {
		if p != nil {
			t.pump(p)
		}
	}
}

// drive runs the device's receive path and handles the completions there
// are, on the calling goroutine (a waiter that polls, see request.Wait);
// it reports whether packets arrived. wcs is the caller's scratch.
func (t *Transport) drive(wcs []rdma.WC) bool {
	got := t.poller.Poll()
	if t.mu.TryLock() { // else someone else handles completions now
		if n, _ := t.cq.Poll(wcs); n > 0 {
			t.handle(wcs[:n])
		}
		t.mu.Unlock()
	}
	return got
}

func (t *Transport) onCompletion(wc *rdma.WC) {
	kind, pr, idx := int(wc.ID>>56), int(wc.ID>>32&0xFFFFFF), uint32(wc.ID)
	if pr >= len(t.peers) || t.peers[pr] == nil {
		return
	}
	p := t.peers[pr]
	if wc.Status != rdma.WCSuccess && p.lost == nil && !t.closed {
		t.peerLost(p, fmt.Errorf("rdmatransport: rank %d: %w: %w", p.rank, collective.ErrPeerLost, wc.Err()))
	}
	switch kind {
	case wrRecv:
		if wc.Status == rdma.WCSuccess {
			t.onRecv(p, int(idx), wc)
		}
	case wrSend:
		// The slot comes back; its send (eager sends complete once
		// posted) and the control messages need nothing more.
		p.freeSend = append(p.freeSend, int32(idx))
		if p.byeSent && int32(idx) == p.byeSlot {
			p.byeSent = false
			t.byeDone()
		}
		t.sendBye(p) // closing, and this slot was the one it waited for
	case wrWrite:
		r := t.sends.get(idx)
		if r != nil && r.peer == p.rank {
			p.writes -= chunks(len(r.buf))
			t.complete(r, p.sendErr(wc))
		}
	}
}

// sendErr is the error a send completion reports.
func (p *peer) sendErr(wc *rdma.WC) error {
	if wc.Status == rdma.WCSuccess {
		return nil
	}
	if p.lost != nil {
		return p.lost
	}
	return fmt.Errorf("rdmatransport: rank %d: %w: %w", p.rank, collective.ErrPeerLost, wc.Err())
}

// onRecv handles a message that landed in receive slot s.
func (t *Transport) onRecv(p *peer, s int, wc *rdma.WC) {
	p.arrived++
	if wc.Opcode == rdma.WCRecvRDMAWithImm {
		t.repost(p, s)
		if r := t.recvs.get(wc.Imm); r != nil && r.peer == p.rank {
			t.stats.RendezvousRecvs.Add(1)
			t.complete(r, nil)
		}
		return
	}
	off := s * t.slotSize
	b := p.recvMR.Buf()[off : off+min(int(wc.ByteLen), t.slotSize)]
	var h header
	if err := h.parse(b); err != nil || h.kind == msgEager && int(h.length) != len(b)-hdrLen {
		t.stats.Malformed.Add(1)
		t.repost(p, s)
		return
	}
	p.credits += int(h.credits)
	tag := collective.Tag(h.tag)
	switch h.kind {
	case msgEager, msgRTS:
		q := t.tagQueue(p, tag, true)
		if r := q.popRecv(); r != nil {
			t.dropIfEmpty(p, tag, q)
			if h.kind == msgEager {
				t.deliverEager(p, r, s, h.length)
				return
			}
			t.repost(p, s)
			t.matchRTS(p, r, h.length, h.id)
			return
		}
		a := arrival{kind: h.kind, slot: int32(s), length: h.length, sendID: h.id}
		q.arrivals = append(q.arrivals, a)
		if h.kind == msgRTS {
			t.repost(p, s)
		}
	case msgCTS:
		t.repost(p, s)
		r := t.sends.get(h.echo)
		if r == nil || r.peer != p.rank || int(h.length) != len(r.buf) {
			if r == nil {
				t.stats.Malformed.Add(1)
			}
			return
		}
		r.raddr, r.rkey, r.rid = h.addr, h.rkey, h.id
		p.out.push(outItem{kind: outWrite, req: r})
	case msgReject:
		t.repost(p, s)
		if r := t.sends.get(h.id); r != nil && r.peer == p.rank {
			t.stats.SizeMismatches.Add(1)
			t.complete(r, fmt.Errorf("rdmatransport: send to rank %d tag %d: %d bytes, the receive wants %d: %w",
				r.peer, r.tag, len(r.buf), h.length, collective.ErrSizeMismatch))
		}
	case msgCredit:
		t.repost(p, s)
	case msgBye:
		t.repost(p, s)
		t.peerLost(p, fmt.Errorf("rdmatransport: rank %d closed: %w", p.rank, collective.ErrPeerLost))
	default:
		t.stats.Malformed.Add(1)
		t.repost(p, s)
	}
}

func chunks(n int) int { return max(1, (n+writeChunk-1)/writeChunk) }

// pump sends what waits for p as far as credits, slots and the send queue
// allow, then returns credits if the peer needs them.
func (t *Transport) pump(p *peer) {
	if p.lost != nil {
		return
	}
	for p.out.size > 0 && p.lost == nil {
		it := p.out.front()
		if p.credits < 2 {
			break
		}
		if it.kind == outWrite {
			c := chunks(len(it.req.buf))
			if p.writes > 0 && p.writes+c > t.opts.MaxWrites {
				break
			}
			if err := t.postWrite(p, it.req); err != nil {
				t.peerLost(p, err)
				return
			}
			p.writes += c
			p.credits--
			p.out.pop()
			continue
		}
		if len(p.freeSend) < 2 {
			break
		}
		if it.kind == outEager && p.credits-1 < t.reserve {
			it.kind = outRTS
			t.stats.Converted.Add(1)
		}
		r := it.req
		var err error
		switch it.kind {
		case outEager:
			// The payload is copied into the slot, so the send is done
			// once posted, as a kernel socket's is once written: the
			// caller's buffer is free, and waiting for the peer's ACK
			// would only add its way back to the message's latency. A
			// peer lost later fails the receives and sends after it.
			h := header{kind: msgEager, length: uint32(len(r.buf)), tag: uint64(it.tag)}
			if err = t.postSlot(p, &h, r.buf); err == nil {
				t.complete(r, nil)
			}
			t.stats.EagerSends.Add(1)
		case outRTS:
			if r.id == 0 {
				if len(r.buf) > 0 {
					mr, gerr := t.mrc.get(r.buf)
					if gerr != nil {
						t.complete(r, fmt.Errorf("rdmatransport: send to rank %d tag %d: register %d B: %w", r.peer, r.tag, len(r.buf), gerr))
						p.out.pop()
						continue
					}
					r.mr = mr
				}
				id, ok := t.sends.put(r)
				if !ok {
					t.complete(r, fmt.Errorf("rdmatransport: send to rank %d: too many rendezvous sends: %w", r.peer, collective.ErrNotSupported))
					p.out.pop()
					continue
				}
				r.id = id
			}
			h := header{kind: msgRTS, length: uint32(len(r.buf)), tag: uint64(it.tag), id: r.id}
			err = t.postSlot(p, &h, nil)
			t.stats.RendezvousSends.Add(1)
		case outCTS:
			h := header{kind: msgCTS, length: uint32(len(r.buf)), id: r.id, echo: it.id}
			if r.mr != nil {
				h.addr, h.rkey = r.mr.Addr()+uint64(ptrOffset(r.mr.Buf(), r.buf)), r.mr.RKey()
			}
			if r.finished { // failed meanwhile (closing)
				p.out.pop()
				continue
			}
			err = t.postSlot(p, &h, nil)
		case outReject:
			h := header{kind: msgReject, id: it.id, length: it.length}
			err = t.postSlot(p, &h, nil)
		}
		if err != nil {
			t.peerLost(p, err)
			return
		}
		p.credits--
		p.out.pop()
	}
	t.maybeReturnCredits(p)
}

// maybeReturnCredits sends a credit message when many re-posted slots
// wait to be reported, or when the peer may be nearly out of credits.
func (t *Transport) maybeReturnCredits(p *peer) {
	if p.lost != nil || p.unreturned == 0 || p.credits < 1 || len(p.freeSend) < 1 {
		return
	}
	peerMay := int64(p.reported) - int64(p.arrived) // the peer's credits, at most
	if p.unreturned < t.opts.Slots/4 && peerMay > 2 {
		return
	}
	if err := t.postControl(p, &header{kind: msgCredit}); err != nil {
		t.peerLost(p, err)
		return
	}
	t.stats.CreditMessages.Add(1)
}

// postControl sends a header-only message that may use the last credit.
func (t *Transport) postControl(p *peer, h *header) error {
	slot := p.freeSend[len(p.freeSend)-1]
	if err := t.postSlot(p, h, nil); err != nil {
		return err
	}
	if h.kind == msgBye {
		p.byeSlot = slot
	}
	p.credits--
	return nil
}

// postSlot fills a send slot with h (carrying the credits to return) and
// payload and posts it.
func (t *Transport) postSlot(p *peer, h *header, payload []byte) error {
	slot := p.freeSend[len(p.freeSend)-1]
	off := int(slot) * t.slotSize
	b := p.sendMR.Buf()[off : off+t.slotSize]
	give := min(p.unreturned, 0xFFFF)
	h.credits = uint16(give)
	h.put(b)
	copy(b[hdrLen:], payload)
	t.ssge[0] = rdma.SGE{Addr: p.sendMR.Addr() + uint64(off), Length: uint32(hdrLen + len(payload)), LKey: p.sendMR.LKey()}
	t.swr[0] = rdma.SendWR{ID: wrID(wrSend, p.rank, uint32(slot)), Opcode: rdma.WRSend, SGL: t.ssge[:1], Signaled: true}
	if _, err := p.qp.PostSend(t.swr[:1]); err != nil {
		return fmt.Errorf("rdmatransport: rank %d: post send: %w: %w", p.rank, collective.ErrPeerLost, err)
	}
	p.freeSend = p.freeSend[:len(p.freeSend)-1]
	p.unreturned -= give
	p.reported += uint64(give)
	return nil
}

// postWrite writes r's buffer into the receiver's, the last WRITE carrying
// the receive id as immediate data.
func (t *Transport) postWrite(p *peer, r *request) error {
	n := chunks(len(r.buf))
	for i := range n {
		lo := i * writeChunk
		hi := min(len(r.buf), lo+writeChunk)
		wr := rdma.SendWR{ID: wrID(wrWrite, p.rank, r.id), Opcode: rdma.WRRDMAWrite, RemoteAddr: r.raddr + uint64(lo), RKey: r.rkey}
		if hi > lo {
			t.ssge[i] = rdma.SGE{Addr: r.mr.Addr() + uint64(ptrOffset(r.mr.Buf(), r.buf)+lo), Length: uint32(hi - lo), LKey: r.mr.LKey()}
			wr.SGL = t.ssge[i : i+1]
		}
		if i == n-1 {
			wr.Opcode, wr.Imm, wr.Signaled = rdma.WRRDMAWriteWithImm, r.rid, true
		}
		t.swr[i] = wr
	}
	if k, err := p.qp.PostSend(t.swr[:n]); err != nil || k != n {
		return fmt.Errorf("rdmatransport: rank %d: post write: %w: %w", p.rank, collective.ErrPeerLost, err)
	}
	return nil
}
