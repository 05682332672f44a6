package sim

// eventKind says what an event does when it fires.
type eventKind uint8

const (
	evWake   eventKind = iota // a sender may send (flow, gen)
	evDepart                  // the bottleneck finishes the head packet
	evCNP                     // a CNP reaches a sender (flow)
	evAck                     // an ACK reaches a sender (flow, bytes, aux = send time)
	evLoss                    // a drop is reported to a sender (flow, bytes)
	evTick                    // a controller deadline (flow, gen)
	evSample                  // a time-series sample
)

// event is one scheduled happening, kept by value in the heap.
type event struct {
	t     int64 // ns since the epoch
	seq   uint64
	aux   int64
	flow  int32
	bytes int32
	gen   uint32
	kind  eventKind
}

// eventQueue is a binary min-heap on (t, seq), by value so scheduling does
// not allocate once the slice has grown.
type eventQueue struct {
	h   []event
	seq uint64
}

func (q *eventQueue) less(i, j int) bool {
	a, b := &q.h[i], &q.h[j]
	if a.t != b.t {
		return a.t < b.t
	}
	return a.seq < b.seq
}

func (q *eventQueue) push(e event) {
	e.seq = q.seq
	q.seq++
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *eventQueue) pop() event {
	top := q.h[0]
	n := len(q.h) - 1
	q.h[0] = q.h[n]
	q.h = q.h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return top
}

func (q *eventQueue) len() int { return len(q.h) }
