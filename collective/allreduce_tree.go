package collective

import (
	"fmt"
	"sync"
)

// Double binary tree allreduce (as NCCL builds it): two binary trees over
// the same ranks where most ranks that are interior in one are leaves in
// the other; each tree reduces half the vector up to its root and
// broadcasts it back down, both halves at once, pipelined by segments.
// Roots compute the final values and the broadcast copies them, so every
// rank ends with identical bytes.

func init() {
	register(&algorithm{name: "tree", kind: OpAllReduce, run: runFlat(treeAllreduce), cost: treeAllreduceCost})
}

// btree is member r's parent and children in NCCL's binary tree over n
// members (-1 where absent): rank 0 is the root with one child; member r
// with lowest set bit b has children r-b/2 and r+b/2 (the latter clipped
// to the range).
func btree(n, r int) (parent, c0, c1 int) {
	bit := 1
	for bit < n && bit&r == 0 {
		bit <<= 1
	}
	if r == 0 {
		c1 = -1
		if n > 1 {
			c1 = bit >> 1
		}
		return -1, -1, c1
	}
	up := (r ^ bit) | bit<<1
	if up >= n {
		up = r ^ bit
	}
	low := bit >> 1
	c0, c1 = -1, -1
	if low > 0 {
		c0 = r - low
		for low > 0 && r+low >= n {
			low >>= 1
		}
		if low > 0 {
			c1 = r + low
		}
	}
	return up, c0, c1
}

// dtree is member r's parent and children in tree 0 or tree 1: tree 1 is
// tree 0 mirrored (even n) or shifted by one (odd n).
func dtree(n, r, which int) (parent, c0, c1 int) {
	if which == 0 {
		return btree(n, r)
	}
	to := func(v int) int { return mod(v-1, n) }
	from := func(v int) int {
		if v < 0 {
			return -1
		}
		return mod(v+1, n)
	}
	if n%2 == 0 {
		to = func(v int) int { return n - 1 - v }
		from = func(v int) int {
			if v < 0 {
				return -1
			}
			return n - 1 - v
		}
	}
	p, a, b := btree(n, to(r))
	return from(p), from(a), from(b)
}

func treeAllreduce(x *exec, g group, buf []byte, avgN, step int) error {
	n := g.size()
	if n == 1 {
		return Finish(buf, x.dt, x.op, avgN)
	}
	esz := x.dt.Size()
	half := chunkOffsets(len(buf)/esz, esz, 2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for t := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[t] = treeHalf(x, g, buf[half[t]:half[t+1]], t, avgN, step+2*t)
		}()
	}
	wg.Wait()
	for t, err := range errs {
		if err != nil {
			return fmt.Errorf("tree %d: %w", t, err)
		}
	}
	return nil
}

// treeHalf reduces part up tree which and broadcasts it down, segment by
// segment; up uses step, down step+1.
func treeHalf(x *exec, g group, part []byte, which, avgN, step int) error {
	n, me := g.size(), g.me
	esz := x.dt.Size()
	parent, c0, c1 := dtree(n, me, which)
	var kids []int
	for _, c := range []int{c0, c1} {
		if c >= 0 {
			kids = append(kids, c)
		}
	}
	off := []int{0, len(part)}
	nseg := ringSegs(x, off)
	seg := func(b []byte, j int) []byte { return segment(b, off, esz, 0, j, nseg) }
	// Children's partial sums land in one scratch region per child.
	var from [][]byte
	var recvs [][]xreq
	for k, c := range kids {
		from = append(from, x.buf(len(part)))
		recvs = append(recvs, make([]xreq, nseg))
		for j := 0; j < nseg; j++ {
			var err error
			if recvs[k][j], err = x.irecv(g.peer(c), step, seg(from[k], j)); err != nil {
				return err
			}
		}
	}
	ups := make([]xreq, nseg)
	var downs []xreq
	for j := 0; j < nseg; j++ {
		acc := seg(part, j)
		for k := range kids {
			if err := x.wait(recvs[k][j]); err != nil {
				return err
			}
			if err := ReduceOut(acc, acc, seg(from[k], j), x.dt, x.op); err != nil {
				return err
			}
		}
		if parent >= 0 {
			var err error
			if ups[j], err = x.isend(g.peer(parent), step, acc); err != nil {
				return err
			}
			continue
		}
		if err := Finish(acc, x.dt, x.op, avgN); err != nil {
			return err
		}
		for _, c := range kids {
			s, err := x.isend(g.peer(c), step+1, acc)
			if err != nil {
				return err
			}
			downs = append(downs, s)
		}
	}
	if parent >= 0 {
		// A segment's result may arrive only once its partial sum left.
		fromParent := make([]xreq, nseg)
		for j := 0; j < nseg; j++ {
			if err := x.wait(ups[j]); err != nil {
				return err
			}
			var err error
			if fromParent[j], err = x.irecv(g.peer(parent), step+1, seg(part, j)); err != nil {
				return err
			}
		}
		for j := 0; j < nseg; j++ {
			if err := x.wait(fromParent[j]); err != nil {
				return err
			}
			for _, c := range kids {
				s, err := x.isend(g.peer(c), step+1, seg(part, j))
				if err != nil {
					return err
				}
				downs = append(downs, s)
			}
		}
	}
	return x.wait(downs...)
}

func treeAllreduceCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	depth := float64(log2ceil(t.size + 1))
	s := float64(min(bytes/2, DefaultSegmentBytes))
	mb := float64(bytes)
	// Pipeline fill up and down, then the busiest node's traffic: half
	// the vector in and out of each of its two roles.
	return 2*depth*(a+s*b) + max(2*mb*b, mb*m.Gamma)
}
