package collective

func init() {
	register(&algorithm{name: "dissemination", kind: OpBarrier, run: disseminationBarrier, cost: disseminationBarrierCost})
}

// disseminationBarrier is the dissemination barrier (Hensgen, Finkel and
// Manber): in round k rank r sends an empty message to r+2^k and waits
// for one from r-2^k. After ceil(log2 n) rounds every rank has heard,
// directly or through others, from every rank, so none leaves before all
// have arrived.
func disseminationBarrier(x *exec) error {
	r, n := x.rank, x.size
	for k, d := 0, 1; d < n; k, d = k+1, d<<1 {
		if err := x.sendrecv(ringPos(r+d, n), nil, ringPos(r-d, n), nil, k); err != nil {
			return err
		}
	}
	return nil
}

// disseminationBarrierCost: ceil(log2 n) alpha.
func disseminationBarrierCost(m *CostModel, t *topology, _ int) float64 {
	a, _ := m.link(t)
	return float64(log2ceil(t.size)) * a
}
