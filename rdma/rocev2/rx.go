package rocev2

import (
	"errors"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/rdma/rocev2/wire"
)

// rxBatch is how many packets the receive goroutine takes per Recv.
const rxBatch = 64

// rxLoop is the receive goroutine: it decodes, checks the ICRC, dispatches
// by destination QP, and after every batch sends the coalesced ACKs, the
// NAKs and the CNPs the batch produced.
func (d *Device) rxLoop() {
	defer d.wg.Done()
	pkts := make([]dataplane.Packet, rxBatch)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 0, d.port.MaxPayload())
	}
	var (
		ctrls []ctrl
		acks  []*queuePair
		cnps  []*queuePair
		p     wire.Packet
	)
	d.port.SetRecvTimeout(50 * time.Millisecond)
	for {
		n, err := d.port.Recv(pkts)
		if errors.Is(err, dataplane.ErrTimeout) {
			if d.closed.Load() {
				return
			}
			continue
		}
		if err != nil {
			return // closed
		}
		now := time.Now()
		ctrls, acks, cnps = ctrls[:0], acks[:0], cnps[:0]
		for i := range pkts[:n] {
			pk := &pkts[i]
			d.stats.RxPackets.Add(1)
			d.stats.RxBytes.Add(uint64(len(pk.Buf)))
			if err := wire.Decode(pk.Buf, &p); err != nil {
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
				ce := ceMarked(pk.TOS)
				c, send := q.onRequest(&p, ce, now)
				if send {
					ctrls = append(ctrls, c)
				}
				if !containsQP(acks, q) {
					acks = append(acks, q)
				}
				if ce && q.cnpDue(now) && !containsQP(cnps, q) {
					cnps = append(cnps, q)
				}
			default:
				q.onResponse(&p, now)
				// READ responses are data too: congestion on them is
				// notified to the responder's QP.
				if ceMarked(pk.TOS) && p.OpCode.IsReadResponse() && q.cnpDue(now) && !containsQP(cnps, q) {
					cnps = append(cnps, q)
				}
			}
		}
		for _, q := range acks {
			if c, ok := q.takeAck(); ok {
				ctrls = append(ctrls, c)
			}
		}
		d.tx.sendCtrl(ctrls, cnps)
		d.tx.pumpIfIdle()
	}
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
