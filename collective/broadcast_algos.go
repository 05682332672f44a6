package collective

// Broadcast algorithms. Each runs on the worker with x.recv (every
// rank's buffer) and, on the root, x.send (x.recv in place). They work in
// ranks relative to the root, vr = (r - root) mod n, so the root is 0 of
// the tree and the head of the chain.

func init() {
	register(&algorithm{name: "binomial", kind: OpBroadcast, run: binomialBroadcast, cost: binomialBroadcastCost})
	register(&algorithm{name: "chain", kind: OpBroadcast, run: chainBroadcast, cost: chainBroadcastCost})
	register(&algorithm{name: "scatter_allgather", kind: OpBroadcast, run: scatterAllGatherBroadcast, cost: scatterAllGatherBroadcastCost})
}

// rootCopy puts the root's send into its recv (a no-op in place).
func rootCopy(x *exec) {
	if x.rank == x.root {
		copy(x.recv, x.send)
	}
}

// binomialBroadcast sends the whole message down a binomial tree:
// relative rank vr receives from vr minus its lowest set bit, then sends
// to vr+m for every smaller power of two m, largest subtree first.
// ceil(log2 n) rounds.
func binomialBroadcast(x *exec) error {
	rootCopy(x)
	return binomialBcast(x, x.worldGroup(), x.recv, x.root, 0)
}

// chainBroadcast pipelines segments of Options.SegmentBytes down the
// chain root, root+1, ..., root+n-1: a rank forwards segment i as soon as
// it has it while segment i+1 is still arriving, so with k segments the
// last rank is done after n-2+k segment times. Every receive is posted
// up front; all segments share one step (they match in order).
func chainBroadcast(x *exec) error {
	rootCopy(x)
	r, n := x.rank, x.size
	vr := ringPos(r-x.root, n)
	buf := x.recv
	seg := max(1, x.c.opts.SegmentBytes)
	k := max(1, (len(buf)+seg-1)/seg)
	piece := func(i int) []byte {
		lo := min(i*seg, len(buf))
		hi := min(lo+seg, len(buf))
		return buf[lo:hi:hi]
	}
	prev, next := ringPos(r-1, n), ringPos(r+1, n)
	var recvs []xreq
	if vr != 0 {
		recvs = make([]xreq, k)
		for i := range k {
			q, err := x.irecv(prev, 0, piece(i))
			if err != nil {
				return err
			}
			recvs[i] = q
		}
	}
	var sends []xreq
	if vr != n-1 {
		sends = make([]xreq, 0, k)
	}
	for i := range k {
		if recvs != nil {
			if err := x.wait(recvs[i]); err != nil {
				return err
			}
		}
		if sends != nil {
			q, err := x.isend(next, 0, piece(i))
			if err != nil {
				return err
			}
			sends = append(sends, q)
		}
	}
	return x.wait(sends...)
}

// scatterAllGatherBroadcast is van de Geijn's broadcast for large
// messages: the root scatters n pieces (piece j for relative rank j) down
// a binomial tree, then a ring allgather over the relative ranks
// completes every copy. Each rank moves about 2(n-1)/n of the message
// instead of ceil(log2 n) whole copies.
func scatterAllGatherBroadcast(x *exec) error {
	rootCopy(x)
	r, n := x.rank, x.size
	buf := x.recv
	vr := ringPos(r-x.root, n)
	b := evenBlocks(len(buf), 1, n)
	mask := 1 << log2ceil(n)
	if vr != 0 {
		mask = vr & -vr
		q, err := x.irecv(ringPos(vr-mask+x.root, n), 0, b.span(buf, vr, min(vr+mask, n)))
		if err != nil {
			return err
		}
		if err := x.wait(q); err != nil {
			return err
		}
	}
	var reqs []xreq
	for m := mask >> 1; m > 0; m >>= 1 {
		if vr+m >= n {
			continue
		}
		q, err := x.isend(ringPos(vr+m+x.root, n), 0, b.span(buf, vr+m, min(vr+2*m, n)))
		if err != nil {
			return err
		}
		reqs = append(reqs, q)
	}
	if err := x.wait(reqs...); err != nil {
		return err
	}
	return allGatherRing(x, b, buf, vr, 1)
}

// Costs, for an m-byte message over n ranks.

// binomialBroadcastCost: ceil(log2 n)(alpha + m beta).
func binomialBroadcastCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	return float64(log2ceil(t.size)) * (a + float64(bytes)*b)
}

// chainBroadcastCost: (n-2+k)(alpha + m/k beta) with k segments of
// DefaultSegmentBytes (the cost model does not see Options).
func chainBroadcastCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	k := float64(max(1, (bytes+DefaultSegmentBytes-1)/DefaultSegmentBytes))
	return (float64(t.size) - 2 + k) * (a + float64(bytes)/k*b)
}

// scatterAllGatherBroadcastCost: (ceil(log2 n) + n-1) alpha +
// 2 (n-1)/n m beta.
func scatterAllGatherBroadcastCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	n := float64(t.size)
	return (float64(log2ceil(t.size))+n-1)*a + 2*(n-1)/n*float64(bytes)*b
}
