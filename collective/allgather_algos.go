package collective

import "math"

// AllGather algorithms. Each runs on the communicator's worker with
// x.send (this rank's piece) and x.recv (Size pieces, rank order); in
// place x.send is x.recv's piece Rank. The cores take a blocks layout
// so that they also serve pieces of different sizes (allgatherv), which
// the scatter+allgather broadcast needs, and a first step so that they
// can run as a later phase of another operation.

func init() {
	register(&algorithm{name: "ring", kind: OpAllGather, run: runAllGather(ringAllGatherCore), cost: ringAllGatherCost})
	register(&algorithm{name: "recursive_doubling", kind: OpAllGather, run: runAllGather(rdAllGatherCore), cost: rdAllGatherCost})
	register(&algorithm{name: "bruck", kind: OpAllGather, run: runAllGather(bruckAllGatherCore), cost: bruckAllGatherCost})
}

// allGatherCore gathers every piece of layout b into buf, where this
// rank's piece (index x.rank) is already in place, using steps from step.
type allGatherCore func(x *exec, b blocks, buf []byte, step int) error

// runAllGather adapts a core to the AllGather operation.
func runAllGather(f allGatherCore) func(x *exec) error {
	return func(x *exec) error {
		b := evenBlocks(len(x.recv), 1, x.size)
		copy(b.piece(x.recv, x.rank), x.send) // a no-op in place
		return f(x, b, x.recv, 0)
	}
}

// ringAllGatherCore is the ring with this rank's own piece index.
func ringAllGatherCore(x *exec, b blocks, buf []byte, step int) error {
	return allGatherRing(x, b, buf, x.rank, step)
}

// allGatherRing passes pieces around the ring: at step s rank r sends
// piece (v-s) mod n to its right neighbour and receives piece (v-s-1)
// mod n from its left one, where v is the piece this rank started with
// (its rank for AllGather, its rank relative to the root in the
// broadcast). n-1 steps of one piece each, every link busy all along.
func allGatherRing(x *exec, b blocks, buf []byte, v, step int) error {
	r, n := x.rank, x.size
	right, left := ringPos(r+1, n), ringPos(r-1, n)
	for s := range n - 1 {
		out, in := ringPos(v-s, n), ringPos(v-s-1, n)
		if err := x.sendrecv(right, b.piece(buf, out), left, b.piece(buf, in), step+s); err != nil {
			return err
		}
	}
	return nil
}

// rdAllGatherCore is recursive doubling: at step k rank r swaps the 2^k
// pieces of its aligned group with partner r xor 2^k, so it holds twice
// as many after each step: log2(n) steps. It needs a power-of-two rank
// count; on others it runs Bruck, which has the same step count.
func rdAllGatherCore(x *exec, b blocks, buf []byte, step int) error {
	r, n := x.rank, x.size
	if !powerOfTwo(n) {
		x.c.debugf("allgather recursive_doubling on %d ranks (not a power of two): bruck instead", n)
		return bruckAllGatherCore(x, b, buf, step)
	}
	for k := 0; 1<<k < n; k++ {
		d := 1 << k
		mine := r &^ (d - 1)
		theirs := mine ^ d
		partner := r ^ d
		if err := x.sendrecv(partner, b.span(buf, mine, mine+d), partner, b.span(buf, theirs, theirs+d), step+k); err != nil {
			return err
		}
	}
	return nil
}

// bruckAllGatherCore is Bruck's algorithm, for any rank count in
// ceil(log2 n) steps. Rank r keeps its pieces rotated, slot i holding
// piece (r+i) mod n: at distance d it sends its first min(d, n-d) slots
// to rank r-d and receives rank r+d's first slots into its slots d, ... .
// A final copy undoes the rotation (rank 0 needs none and works in buf).
func bruckAllGatherCore(x *exec, b blocks, buf []byte, step int) error {
	r, n := x.rank, x.size
	sizes := make([]int, n)
	for i := range sizes {
		sizes[i] = b.size((r + i) % n)
	}
	rb := sizedBlocks(sizes)
	tmp := buf
	if r != 0 {
		tmp = x.buf(b.total())
		copy(rb.piece(tmp, 0), b.piece(buf, r))
	}
	for k, d := 0, 1; d < n; k, d = k+1, d<<1 {
		cnt := min(d, n-d)
		to, from := ringPos(r-d, n), ringPos(r+d, n)
		if err := x.sendrecv(to, rb.span(tmp, 0, cnt), from, rb.span(tmp, d, d+cnt), step+k); err != nil {
			return err
		}
	}
	if r != 0 {
		for i := 1; i < n; i++ {
			copy(b.piece(buf, (r+i)%n), rb.piece(tmp, i))
		}
	}
	return nil
}

// Costs, for m bytes gathered (the receive buffer) over n ranks.

// ringAllGatherCost: (n-1)(alpha + m/n beta).
func ringAllGatherCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	n := float64(t.size)
	return (n - 1) * (a + float64(bytes)/n*b)
}

// rdAllGatherCost: log2(n) alpha + (n-1)/n m beta; only for a power of
// two (elsewhere it would run Bruck: +Inf keeps selection off it).
func rdAllGatherCost(m *CostModel, t *topology, bytes int) float64 {
	if !powerOfTwo(t.size) {
		return math.Inf(1)
	}
	a, b := m.link(t)
	n := float64(t.size)
	return float64(log2ceil(t.size))*a + (n-1)/n*float64(bytes)*b
}

// bruckAllGatherCost: ceil(log2 n) alpha + (n-1)/n m beta, plus the
// final un-rotation, a local copy of m bytes charged at gamma.
func bruckAllGatherCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	n := float64(t.size)
	return float64(log2ceil(t.size))*a + (n-1)/n*float64(bytes)*b + float64(bytes)*m.Gamma
}
