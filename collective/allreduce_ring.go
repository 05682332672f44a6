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

// ringReduceScatter runs the pipelined ring reduce-scatter over g: chunk
// c of the result (chunk offsets off) ends in work on member c. At step s
// member i sends chunk i-s-1 to the right and reduces chunk i-s-2 from
// the left. in is read, work written; they may be the same buffer. It
// returns the send requests still in flight per chunk.
func ringReduceScatter(x *exec, g group, in, work []byte, off []int, step int) ([][]xreq, error) {
	n, me := g.size(), g.me
	esz := x.dt.Size()
	nseg := ringSegs(x, off)
	right, left := g.peer(me+1), g.peer(me-1)
	sends := make([][]xreq, n)
	maxSeg := 0
	for c := 0; c < n; c++ {
		maxSeg = max(maxSeg, len(segment(in, off, esz, c, 0, nseg)))
		if nseg > 1 {
			maxSeg = max(maxSeg, len(segment(in, off, esz, c, nseg-1, nseg)))
		}
	}
	maxSeg += esz
	total := (n - 1) * nseg
	window := min(total, 2*nseg)
	slots := x.buf(window * maxSeg)
	recvs := make([]xreq, total)
	post := func(q int) error {
		s, j := q/nseg, q%nseg
		c := mod(me-s-2, n)
		l := len(segment(in, off, esz, c, j, nseg))
		slot := slots[(q%window)*maxSeg:][:l]
		var err error
		recvs[q], err = x.irecv(left, step, slot)
		return err
	}
	for q := 0; q < window; q++ {
		if err := post(q); err != nil {
			return nil, err
		}
	}
	c0 := mod(me-1, n)
	for j := 0; j < nseg; j++ {
		r, err := x.isend(right, step, segment(in, off, esz, c0, j, nseg))
		if err != nil {
			return nil, err
		}
		sends[c0] = append(sends[c0], r)
	}
	for q := 0; q < total; q++ {
		s, j := q/nseg, q%nseg
		c := mod(me-s-2, n)
		if err := x.wait(recvs[q]); err != nil {
			return nil, err
		}
		dst := segment(work, off, esz, c, j, nseg)
		slot := slots[(q%window)*maxSeg:][:len(dst)]
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
		if q+window < total {
			if err := post(q + window); err != nil {
				return nil, err
			}
		}
	}
	return sends, nil
}

// ringAllgatherChunks hands member i's chunk i of buf around the ring,
// pipelined by segments; pending holds sends per chunk that must finish
// before that chunk is overwritten.
func ringAllgatherChunks(x *exec, g group, buf []byte, off []int, esz int, pending [][]xreq, step int) error {
	n, me := g.size(), g.me
	nseg := ringSegs(x, off)
	right, left := g.peer(me+1), g.peer(me-1)
	var sends []xreq
	recvs := make([]xreq, 0, (n-1)*nseg)
	for s := 0; s < n-1; s++ {
		c := mod(me-s-1, n)
		if err := x.wait(pending[c]...); err != nil {
			return err
		}
		pending[c] = nil
		for j := 0; j < nseg; j++ {
			r, err := x.irecv(left, step, segment(buf, off, esz, c, j, nseg))
			if err != nil {
				return err
			}
			recvs = append(recvs, r)
		}
	}
	for j := 0; j < nseg; j++ {
		r, err := x.isend(right, step, segment(buf, off, esz, me, j, nseg))
		if err != nil {
			return err
		}
		sends = append(sends, r)
	}
	for q, r := range recvs {
		s, j := q/nseg, q%nseg
		if err := x.wait(r); err != nil {
			return err
		}
		if s < n-2 {
			c := mod(me-s-1, n)
			r, err := x.isend(right, step, segment(buf, off, esz, c, j, nseg))
			if err != nil {
				return err
			}
			sends = append(sends, r)
		}
	}
	for _, p := range pending {
		sends = append(sends, p...)
	}
	return x.wait(sends...)
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
// the same buffer.
func ringAllreduceInto(x *exec, g group, in, buf []byte, avgN, step int) error {
	n := g.size()
	if n == 1 {
		copy(buf, in)
		return Finish(buf, x.dt, x.op, avgN)
	}
	esz := x.dt.Size()
	off := chunkOffsets(len(buf)/esz, esz, n)
	pending, err := ringReduceScatter(x, g, in, buf, off, step)
	if err != nil {
		return fmt.Errorf("reduce-scatter: %w", err)
	}
	if err := Finish(buf[off[g.me]:off[g.me+1]], x.dt, x.op, avgN); err != nil {
		return err
	}
	if err := ringAllgatherChunks(x, g, buf, off, esz, pending, step+1); err != nil {
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
