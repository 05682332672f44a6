package collective

import (
	"fmt"
	"math"
)

// Hierarchical allreduce for ranks grouped by host (TransportInfo.Host):
// each host reduces to its lowest rank (binomial tree), those leaders run
// the flat allreduce the cost model picks for the inter-host level, and
// each leader broadcasts the result to its host. Messages all go through
// the transport; the win is that only one rank per host crosses the
// slower inter-host links.

func init() {
	register(&algorithm{name: "hier", kind: OpAllReduce, run: hierAllreduce, cost: hierAllreduceCost})
}

// innerAllreduce lists the flat algorithms the leader level picks from.
var innerAllreduce = []struct {
	name string
	run  flatAllreduce
	cost func(m *CostModel, t *topology, bytes int) float64
}{
	{"ring", ringAllreduce, ringAllreduceCost},
	{"rhd", rhdAllreduce, rhdAllreduceCost},
	{"rd", rdAllreduce, rdAllreduceCost},
	{"tree", treeAllreduce, treeAllreduceCost},
}

// pickInner is the cheapest leader-level algorithm for hosts leaders.
func pickInner(m *CostModel, hosts, bytes int) (int, float64) {
	t := flatTopology(hosts, true)
	best, bestCost := 0, math.Inf(1)
	for i, a := range innerAllreduce {
		if c := a.cost(m, t, bytes); c < bestCost {
			best, bestCost = i, c
		}
	}
	return best, bestCost
}

// hierSteps: local reduce, leaders from hierInnerStep, local broadcast.
const (
	hierLocalStep = 0
	hierInnerStep = 1
	hierBcastStep = 200
)

func hierAllreduce(x *exec) error {
	copy(x.recv, x.send) // a no-op in place
	buf := x.recv
	t := &x.c.topo
	h := t.hostOf[x.rank]
	locals := t.hosts[h]
	local := group{ranks: locals, me: indexOf(locals, x.rank)}
	if err := binomialReduce(x, local, buf, 0, hierLocalStep); err != nil {
		return fmt.Errorf("local reduce on host %d: %w", h, err)
	}
	if local.me == 0 {
		leaders := make([]int, len(t.hosts))
		for i, hr := range t.hosts {
			leaders[i] = hr[0]
		}
		i, _ := pickInner(&x.c.model, len(leaders), len(buf))
		inner := innerAllreduce[i]
		if err := inner.run(x, group{ranks: leaders, me: h}, buf, x.size, hierInnerStep); err != nil {
			return fmt.Errorf("leaders' %s: %w", inner.name, err)
		}
	}
	if err := binomialBcast(x, local, buf, 0, hierBcastStep); err != nil {
		return fmt.Errorf("local broadcast on host %d: %w", h, err)
	}
	return nil
}

func indexOf(s []int, v int) int {
	for i, e := range s {
		if e == v {
			return i
		}
	}
	return -1
}

func hierAllreduceCost(m *CostModel, t *topology, bytes int) float64 {
	if !t.known || !t.multiHost() || t.maxLocal() < 2 {
		return math.Inf(1) // no host structure to exploit
	}
	l := float64(log2ceil(t.maxLocal()))
	mb := float64(bytes)
	local := l*(m.AlphaLocal+mb*(m.BetaLocal+m.Gamma)) + l*(m.AlphaLocal+mb*m.BetaLocal)
	_, inner := pickInner(m, len(t.hosts), bytes)
	return local + inner
}
