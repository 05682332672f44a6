package collective

import "math"

// AllToAll algorithms. Each runs on the worker with x.send (Size pieces,
// piece j for rank j) and x.recv (piece j from rank j); in place they
// alias and the algorithm works from a copy of send.

func init() {
	register(&algorithm{name: "pairwise", kind: OpAllToAll, run: runAllToAll(allToAllPairwise), cost: pairwiseAllToAllCost})
	register(&algorithm{name: "concurrent", kind: OpAllToAll, run: runAllToAll(allToAllConcurrent), cost: concurrentAllToAllCost})
}

// allToAllConcurrentMaxRanks is the largest group selection runs the
// concurrent alltoall on: it keeps 2(n-1) requests and n-1 incoming
// messages in flight at once.
const allToAllConcurrentMaxRanks = 8

// runAllToAll copies this rank's own piece and, in place, the send
// buffer aside, then runs core on pieces of blk bytes.
func runAllToAll(core func(x *exec, send, recv []byte, blk int) error) func(x *exec) error {
	return func(x *exec) error {
		blk := len(x.send) / x.size
		send := x.send
		if aliased(send, x.recv) {
			send = x.buf(len(x.send))
			copy(send, x.send)
		}
		r := x.rank
		copy(x.recv[r*blk:(r+1)*blk], send[r*blk:(r+1)*blk])
		return core(x, send, x.recv, blk)
	}
}

// allToAllPairwise runs n-1 exchange steps: at step s rank r sends to
// r+s and receives from r-s, so every rank has exactly one send and one
// receive in flight whatever n is.
func allToAllPairwise(x *exec, send, recv []byte, blk int) error {
	r, n := x.rank, x.size
	for s := 1; s < n; s++ {
		to, from := ringPos(r+s, n), ringPos(r-s, n)
		if err := x.sendrecv(to, send[to*blk:(to+1)*blk], from, recv[from*blk:(from+1)*blk], s); err != nil {
			return err
		}
	}
	return nil
}

// allToAllConcurrent posts every receive, then every send (in the
// pairwise order, so no rank is everybody's first target), and waits for
// all: one round of latency instead of n-1.
func allToAllConcurrent(x *exec, send, recv []byte, blk int) error {
	r, n := x.rank, x.size
	reqs := make([]xreq, 0, 2*(n-1))
	for s := 1; s < n; s++ {
		from := ringPos(r-s, n)
		q, err := x.irecv(from, 0, recv[from*blk:(from+1)*blk])
		if err != nil {
			return err
		}
		reqs = append(reqs, q)
	}
	for s := 1; s < n; s++ {
		to := ringPos(r+s, n)
		q, err := x.isend(to, 0, send[to*blk:(to+1)*blk])
		if err != nil {
			return err
		}
		reqs = append(reqs, q)
	}
	return x.wait(reqs...)
}

// Costs, for m bytes sent by each rank (Size pieces of m/n).

// pairwiseAllToAllCost: (n-1)(alpha + m/n beta).
func pairwiseAllToAllCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	n := float64(t.size)
	return (n - 1) * (a + float64(bytes)/n*b)
}

// concurrentAllToAllCost: alpha + (n-1)/n m beta (the pieces share this
// rank's link, the latencies overlap), up to
// allToAllConcurrentMaxRanks ranks.
func concurrentAllToAllCost(m *CostModel, t *topology, bytes int) float64 {
	if t.size > allToAllConcurrentMaxRanks {
		return math.Inf(1)
	}
	a, b := m.link(t)
	n := float64(t.size)
	return a + (n-1)/n*float64(bytes)*b
}
