package rdmatransport

import (
	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/rdma"
)

// peer is the connection to one other rank. Guarded by the transport's lock.
type peer struct {
	rank int
	qp   rdma.QP
	// psn is the first PSN this side sends.
	psn uint32
	// recv slots (posted for the peer's SENDs) and send slots, each
	// slotSize bytes in one registered buffer.
	recvMR, sendMR rdma.MR
	recvWR         []rdma.RecvWR // one prebuilt request per receive slot
	recvSGE        []rdma.SGE
	freeSend       []int32 // free send slots
	// credits: receive slots the peer has posted for us that we know of
	// and have not used. unreturned: slots we re-posted and not yet
	// reported. reported/arrived count the slots reported to the peer and
	// the messages that came from it: their difference bounds the peer's
	// credits.
	credits    int
	unreturned int
	reported   uint64
	arrived    uint64
	writes     int // rendezvous WRITEs outstanding
	byeSent    bool
	byeSlot    int32
	byeWanted  bool // closing, the goodbye waits for a free send slot
	out        outQueue
	tags       map[collective.Tag]*tagQueue
	// lost is set once the peer closed or its QP failed: every request
	// with it fails with this error.
	lost error
}

// outKind is what an outQueue item sends.
type outKind uint8

const (
	outEager outKind = iota + 1
	outRTS
	outCTS
	outReject
	outWrite
)

// outItem is one thing waiting to leave for a peer, in order.
type outItem struct {
	kind outKind
	req  *request // eager, rts, write: the send; cts: the receive
	tag  collective.Tag
	// reject: the send id refused and the length that was offered.
	id     uint32
	length uint32
}

// outQueue is a FIFO ring of items that grows as needed (bounded by the
// requests callers posted).
type outQueue struct {
	items      []outItem
	head, size int
}

func (q *outQueue) push(it outItem) {
	if q.size == len(q.items) {
		n := max(16, 2*len(q.items))
		items := make([]outItem, n)
		for i := range q.size {
			items[i] = q.items[(q.head+i)%len(q.items)]
		}
		q.items, q.head = items, 0
	}
	q.items[(q.head+q.size)%len(q.items)] = it
	q.size++
}

func (q *outQueue) front() *outItem { return &q.items[q.head] }

func (q *outQueue) pop() {
	q.items[q.head] = outItem{}
	q.head = (q.head + 1) % len(q.items)
	q.size--
}

// arrival is a message (eager data held in a receive slot, or an RTS) that
// came before its receive was posted.
type arrival struct {
	kind   uint8 // msgEager or msgRTS
	slot   int32 // eager: the receive slot holding it
	length uint32
	sendID uint32 // rts
}

// tagQueue is the matching state of one (peer, tag): receives posted and
// not yet matched, or messages arrived and not yet received (never both).
// It is dropped when empty and its slices reused.
type tagQueue struct {
	recvs    []*request
	rhead    int
	arrivals []arrival
	ahead    int
}

func (q *tagQueue) empty() bool { return q.rhead == len(q.recvs) && q.ahead == len(q.arrivals) }

func (q *tagQueue) popRecv() *request {
	if q.rhead == len(q.recvs) {
		return nil
	}
	r := q.recvs[q.rhead]
	q.recvs[q.rhead] = nil
	q.rhead++
	return r
}

func (q *tagQueue) popArrival() (arrival, bool) {
	if q.ahead == len(q.arrivals) {
		return arrival{}, false
	}
	a := q.arrivals[q.ahead]
	q.ahead++
	return a, true
}

func (q *tagQueue) reset() {
	q.recvs, q.rhead = q.recvs[:0], 0
	q.arrivals, q.ahead = q.arrivals[:0], 0
}

// tagQueue returns the (peer, tag) queue, making it when create is set.
func (t *Transport) tagQueue(p *peer, tag collective.Tag, create bool) *tagQueue {
	if q, ok := p.tags[tag]; ok {
		return q
	}
	if !create {
		return nil
	}
	var q *tagQueue
	if n := len(t.freeTags); n > 0 {
		q, t.freeTags = t.freeTags[n-1], t.freeTags[:n-1]
	} else {
		q = &tagQueue{}
	}
	p.tags[tag] = q
	return q
}

// dropIfEmpty gives an empty queue back for reuse.
func (t *Transport) dropIfEmpty(p *peer, tag collective.Tag, q *tagQueue) {
	if !q.empty() {
		return
	}
	q.reset()
	delete(p.tags, tag)
	if len(t.freeTags) < 1024 {
		t.freeTags = append(t.freeTags, q)
	}
}
