package collective

// Reduce to a root along a binomial tree (comm_group.go's
// binomialReduce): log2(n) rounds, each rank sends once.

func init() {
	register(&algorithm{name: "binomial", kind: OpReduce, run: binomialReduceOp, cost: binomialReduceCost})
}

func binomialReduceOp(x *exec) error {
	acc := x.recv
	if x.rank == x.root {
		copy(acc, x.send) // a no-op in place
	} else {
		acc = x.buf(len(x.send))
		copy(acc, x.send)
	}
	if err := binomialReduce(x, x.worldGroup(), acc, x.root, 0); err != nil {
		return err
	}
	if x.rank == x.root {
		return Finish(acc, x.dt, x.op, x.size)
	}
	return nil
}

func binomialReduceCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	return float64(log2ceil(t.size)) * (a + float64(bytes)*(b+m.Gamma))
}
