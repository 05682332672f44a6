package collective

import "fmt"

// Ring allreduce, segmented and pipelined: a ring reduce-scatter, then a
// ring allgather that hands each rank's fully reduced chunk around. Each
// chunk is cut into segments; a segment is forwarded as soon as it is
// reduced, so the send of one segment overlaps the reduction of the next.
// Every chunk's final value is computed on one rank and copied, so all
// ranks end with identical bytes.

func init() {
	register(&algorithm{name: "ring", kind: OpAllReduce, run: ringAllreduceRun, cost: ringAllreduceCost})
}

// flatAllreduce is an allreduce core: in place on buf over group g,
// dividing by avgN for Avg, using steps from step on.
type flatAllreduce func(x *exec, g group, buf []byte, avgN, step int) error

// runFlat adapts a core to an algorithm over every rank.
func runFlat(f flatAllreduce) func(x *exec) error {
	return func(x *exec) error {
		copy(x.recv, x.send) // a no-op in place
		return f(x, x.worldGroup(), x.recv, x.size, 0)
	}
}

// chunkOffsets splits count elements of size esz into n chunks that
// differ by at most one element; the result holds n+1 byte offsets.
func chunkOffsets(count, esz, n int) []int {
	off := make([]int, n+1)
	base, extra := count/n, count%n
	for i := 0; i < n; i++ {
		e := base
		if i < extra {
			e++
		}
		off[i+1] = off[i] + e*esz
	}
	return off
}

// ringSegs is how many segments each chunk is cut into.
func ringSegs(x *exec, off []int) int {
	maxChunk := 0
	for i := 0; i+1 < len(off); i++ {
		maxChunk = max(maxChunk, off[i+1]-off[i])
	}
	seg := max(x.c.opts.SegmentBytes, 1)
	return max(1, (maxChunk+seg-1)/seg)
}

// segment j of nseg of chunk c of buf.
func segment(buf []byte, off []int, esz, c, j, nseg int) []byte {
	elems := (off[c+1] - off[c]) / esz
	lo := off[c] + j*elems/nseg*esz
	hi := off[c] + (j+1)*elems/nseg*esz
	return buf[lo:hi]
}

func mod(a, n int) int { return ((a % n) + n) % n }

// rsWindow is the ring reduce-scatter's receives: total segments from the
// left neighbour, receive q into a window of scratch slots, posted ahead
// of use (size receives in flight).
type rsWindow struct {
	x           *exec
	in          []byte
	off         []int
	esz, n, me  int
	nseg, left  int
	step        int
	total, size int
	slotLen     int
	slots       []byte
	recvs       []xreq
}

// newRSWindow posts the window's first receives.
func newRSWindow(x *exec, g group, in []byte, off []int, nseg, step int) (*rsWindow, error) {
	n, esz := g.size(), x.dt.Size()
	w := &rsWindow{x: x, in: in, off: off, esz: esz, n: n, me: g.me, nseg: nseg, left: g.peer(g.me - 1),
		step: step, total: (n - 1) * nseg, slotLen: maxSegment(in, off, esz, n, nseg)}
	w.size = min(w.total, 2*nseg)
	w.slots = x.buf(w.size * w.slotLen)
	w.recvs = make([]xreq, w.total)
	for q := 0; q < w.size; q++ {
		if err := w.post(q); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// at is receive q's place: reduce-scatter step s, chunk c, segment j.
func (w *rsWindow) at(q int) (s, c, j int) {
	s, j = q/w.nseg, q%w.nseg
	return s, mod(w.me-s-2, w.n), j
}

func (w *rsWindow) post(q int) error {
	_, c, j := w.at(q)
	l := len(segment(w.in, w.off, w.esz, c, j, w.nseg))
	var err error
	w.recvs[q], err = w.x.irecv(w.left, w.step, w.slots[(q%w.size)*w.slotLen:][:l])
	return err
}

// wait waits for receive q and returns its slot, l bytes.
func (w *rsWindow) wait(q, l int) ([]byte, error) {
	if err := w.x.wait(w.recvs[q]); err != nil {
		return nil, err
	}
	return w.slots[(q%w.size)*w.slotLen:][:l], nil
}

// next posts the receive that takes over the slot receive q used.
func (w *rsWindow) next(q int) error {
	if q+w.size < w.total {
		return w.post(q + w.size)
	}
	return nil
}

// maxSegment is the scratch slot size for the ring's segments: the
// longest segment of any of the n chunks (the first or the last of a
// chunk is the longest), plus one element of slack.
func maxSegment(in []byte, off []int, esz, n, nseg int) int {
	m := 0
	for c := 0; c < n; c++ {
		m = max(m, len(segment(in, off, esz, c, 0, nseg)))
		if nseg > 1 {
			m = max(m, len(segment(in, off, esz, c, nseg-1, nseg)))
		}
	}
	return m + esz
}

// ringReduceScatter runs the pipelined ring reduce-scatter over g: chunk
// c of the result (chunk offsets off) ends in work on member c. At step s
// member i sends chunk i-s-1 to the right and reduces chunk i-s-2 from
// the left. in is read, work written; they may be the same buffer. It
// returns the send requests still in flight per chunk.
func ringReduceScatter(x *exec, g group, in, work []byte, off []int, step int) ([][]xreq, error) {
	n, me := g.size(), g.me
	esz := x.dt.Size()
	nseg := ringSegs(x, off)
	right := g.peer(me + 1)
	sends := make([][]xreq, n)
	w, err := newRSWindow(x, g, in, off, nseg, step)
	if err != nil {
		return nil, err
	}
	c0 := mod(me-1, n)
	for j := 0; j < nseg; j++ {
		r, err := x.isend(right, step, segment(in, off, esz, c0, j, nseg))
		if err != nil {
			return nil, err
		}
		sends[c0] = append(sends[c0], r)
	}
	for q := 0; q < w.total; q++ {
		s, c, j := w.at(q)
		dst := segment(work, off, esz, c, j, nseg)
		slot, err := w.wait(q, len(dst))
		if err != nil {
			return nil, err
		}
		if err := ReduceOut(dst, slot, segment(in, off, esz, c, j, nseg), x.dt, x.op); err != nil {
			return nil, err
		}
		if s < n-2 {
			r, err := x.isend(right, step, dst)
			if err != nil {
				return nil, err
			}
			sends[c] = append(sends[c], r)
		}
		if err := w.next(q); err != nil {
			return nil, err
		}
	}
	return sends, nil
}

func ringAllreduce(x *exec, g group, buf []byte, avgN, step int) error {
	return ringAllreduceInto(x, g, buf, buf, avgN, step)
}

// ringAllreduceRun is the ring over every rank, out of place without a
// first copy of send into recv: the reduce-scatter reads send and writes
// its partial sums into recv, and the allgather fills the rest of recv.
func ringAllreduceRun(x *exec) error {
	return ringAllreduceInto(x, x.worldGroup(), x.send, x.recv, x.size, 0)
}

// ringAllreduceInto reduces in (read only) into buf over g; they may be
// the same buffer. It is the ring reduce-scatter (as ringReduceScatter)
// and the ring allgather run as one pipeline, as NCCL's ring does: each segment of this member's own chunk goes out to the right the
// moment its last reduction is done, and each allgather receive is posted
// as soon as the segment it fills is no longer read or written by the
// reduce-scatter, so that segments do not arrive before their receive (an
// early one costs the transport an allocation and a copy).
func ringAllreduceInto(x *exec, g group, in, buf []byte, avgN, step int) error {
	n := g.size()
	if n == 1 {
		copy(buf, in)
		return Finish(buf, x.dt, x.op, avgN)
	}
	esz := x.dt.Size()
	off := chunkOffsets(len(buf)/esz, esz, n)
	me := g.me
	nseg := ringSegs(x, off)
	right, left := g.peer(me+1), g.peer(me-1)

	// pending[c][j]: the send that read segment j of chunk c of buf, to
	// finish before the allgather receives into it; done: the other sends.
	pending := make([][]xreq, n)
	done := make([]xreq, 0, 2*(n-1)*nseg)

	// Reduce-scatter receives, into a window of scratch slots.
	w, err := newRSWindow(x, g, in, off, nseg, step)
	if err != nil {
		return fmt.Errorf("reduce-scatter: %w", err)
	}
	total := w.total

	// Allgather receives: segment j of chunk me-1-a at index a*nseg+j,
	// once the reduce-scatter step a-1 (the last to write that chunk) is
	// over and pending[c][j] finished. Receives are posted in order.
	agRecvs := make([]xreq, 0, total)
	rsDone := -1
	postAG := func(block bool) error {
		for len(agRecvs) < total {
			a, j := len(agRecvs)/nseg, len(agRecvs)%nseg
			if a-1 > rsDone {
				return nil
			}
			c := mod(me-a-1, n)
			if j < len(pending[c]) {
				if ok, _ := pending[c][j].r.Test(); !ok && !block {
					return nil
				}
				if err := x.wait(pending[c][j]); err != nil {
					return err
				}
			}
			r, err := x.irecv(left, step+1, segment(buf, off, esz, c, j, nseg))
			if err != nil {
				return err
			}
			agRecvs = append(agRecvs, r)
		}
		return nil
	}

	c0 := mod(me-1, n)
	inPlace := aliased(in, buf)
	for j := 0; j < nseg; j++ {
		r, err := x.isend(right, step, segment(in, off, esz, c0, j, nseg))
		if err != nil {
			return fmt.Errorf("reduce-scatter: %w", err)
		}
		if inPlace {
			pending[c0] = append(pending[c0], r)
		} else {
			done = append(done, r)
		}
	}
	if err := postAG(false); err != nil {
		return fmt.Errorf("allgather: %w", err)
	}
	for q := 0; q < total; q++ {
		s, c, j := w.at(q)
		dst := segment(buf, off, esz, c, j, nseg)
		slot, err := w.wait(q, len(dst))
		if err != nil {
			return fmt.Errorf("reduce-scatter: %w", err)
		}
		if err := ReduceOut(dst, slot, segment(in, off, esz, c, j, nseg), x.dt, x.op); err != nil {
			return err
		}
		if s < n-2 {
			r, err := x.isend(right, step, dst)
			if err != nil {
				return fmt.Errorf("reduce-scatter: %w", err)
			}
			pending[c] = append(pending[c], r)
		} else { // c == me, final: the allgather starts with it
			if err := Finish(dst, x.dt, x.op, avgN); err != nil {
				return err
			}
			r, err := x.isend(right, step+1, dst)
			if err != nil {
				return fmt.Errorf("allgather: %w", err)
			}
			done = append(done, r)
		}
		if err := w.next(q); err != nil {
			return fmt.Errorf("reduce-scatter: %w", err)
		}
		if j == nseg-1 {
			rsDone = s
		}
		if err := postAG(false); err != nil {
			return fmt.Errorf("allgather: %w", err)
		}
	}
	if err := postAG(true); err != nil {
		return fmt.Errorf("allgather: %w", err)
	}
	for q, r := range agRecvs {
		s, j := q/nseg, q%nseg
		if err := x.wait(r); err != nil {
			return fmt.Errorf("allgather: %w", err)
		}
		if s < n-2 {
			c := mod(me-s-1, n)
			r, err := x.isend(right, step+1, segment(buf, off, esz, c, j, nseg))
			if err != nil {
				return fmt.Errorf("allgather: %w", err)
			}
			done = append(done, r)
		}
	}
	for _, p := range pending {
		done = append(done, p...)
	}
	if err := x.wait(done...); err != nil {
		return fmt.Errorf("allgather: %w", err)
	}
	return nil
}

func ringAllreduceCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	n := float64(t.size)
	f := (n - 1) / n * float64(bytes)
	// The reduce-scatter overlaps transfer and reduction.
	return 2*(n-1)*a + f*max(b, m.Gamma) + f*b
}
