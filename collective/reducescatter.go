package collective

import "fmt"

// Reduce-scatter: the pipelined ring (allreduce_ring.go's first half) and
// recursive halving with the pre/post step for rank counts that are not
// a power of two (allreduce_rhd.go). Each block's result is computed on
// the rank that keeps it.

func init() {
	register(&algorithm{name: "ring", kind: OpReduceScatter, run: ringReduceScatterOp, cost: ringReduceScatterCost})
	register(&algorithm{name: "halving", kind: OpReduceScatter, run: halvingReduceScatter, cost: halvingReduceScatterCost})
}

func ringReduceScatterOp(x *exec) error {
	n := x.size
	blk := len(x.recv)
	off := make([]int, n+1)
	for i := range off {
		off[i] = i * blk
	}
	work := x.buf(len(x.send))
	g := x.worldGroup()
	pending, err := ringReduceScatter(x, g, x.send, work, off, 0)
	if err != nil {
		return err
	}
	var all []xreq
	for _, p := range pending {
		all = append(all, p...)
	}
	if err := x.wait(all...); err != nil {
		return err
	}
	copy(x.recv, work[off[x.rank]:off[x.rank+1]])
	return Finish(x.recv, x.dt, x.op, n)
}

func halvingReduceScatter(x *exec) error {
	n, me := x.size, x.rank
	blk := len(x.recv)
	g := x.worldGroup()
	f := newFold(n)
	work := x.buf(len(x.send))
	copy(work, x.send)
	if err := foldIn(x, g, f, work, 0); err != nil {
		return fmt.Errorf("pre-step: %w", err)
	}
	// Virtual rank v keeps the real blocks of the members it stands for:
	// 2v and 2v+1 below rem, v+rem above.
	boff := make([]int, f.p+1)
	for v := 0; v <= f.p; v++ {
		if v < f.rem {
			boff[v] = 2 * v * blk
		} else {
			boff[v] = (v + f.rem) * blk
		}
	}
	levels := log2ceil(f.p)
	if v := f.virt(me); v >= 0 {
		if err := halve(x, g, f, v, work, boff, 1); err != nil {
			return fmt.Errorf("recursive halving: %w", err)
		}
		mine := work[boff[v]:boff[v+1]]
		if err := Finish(mine, x.dt, x.op, n); err != nil {
			return err
		}
		if v < f.rem {
			// Hand block me-1 to the member that sat out.
			s, err := x.isend(g.peer(me-1), 1+levels, work[(me-1)*blk:me*blk])
			if err != nil {
				return err
			}
			if err := x.wait(s); err != nil {
				return fmt.Errorf("post-step: %w", err)
			}
		}
		copy(x.recv, work[me*blk:(me+1)*blk])
		return nil
	}
	r, err := x.irecv(g.peer(me+1), 1+levels, x.recv)
	if err != nil {
		return err
	}
	if err := x.wait(r); err != nil {
		return fmt.Errorf("post-step: %w", err)
	}
	return nil
}

func ringReduceScatterCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	n := float64(t.size)
	return (n-1)*a + (n-1)/n*float64(bytes)*max(b, m.Gamma)
}

func halvingReduceScatterCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	p := pow2floor(t.size)
	mb := float64(bytes)
	c := float64(log2ceil(p))*a + float64(p-1)/float64(p)*mb*(b+m.Gamma)
	if p != t.size {
		c += 2*a + mb*(b+m.Gamma) + mb/float64(t.size)*b
	}
	return c
}
