package collective

import (
	"fmt"
	"math"
	"slices"
)

// CostModel holds the alpha-beta-gamma parameters selection predicts
// with: a message of m bytes between two ranks costs Alpha + m*Beta
// seconds, reducing m bytes costs m*Gamma. The Local pair applies between
// ranks on the same host (TransportInfo.Host).
type CostModel struct {
	// Alpha is the one-way latency between hosts, in seconds.
	Alpha float64
	// Beta is the inverse bandwidth between hosts, seconds per byte.
	Beta float64
	// AlphaLocal and BetaLocal are the same within a host; 0 means equal
	// to Alpha and Beta.
	AlphaLocal, BetaLocal float64
	// Gamma is the reduction cost, seconds per byte.
	Gamma float64
}

// Defaults before (or without) calibration: a kernel TCP path.
const (
	defaultAlpha = 20e-6
	defaultBeta  = 1.0 / 1e9
	defaultGamma = 1.0 / 2e9
)

func (m *CostModel) fill() {
	if !(m.Alpha > 0) {
		m.Alpha = defaultAlpha
	}
	if !(m.Beta > 0) {
		m.Beta = defaultBeta
	}
	if !(m.AlphaLocal > 0) {
		m.AlphaLocal = m.Alpha
	}
	if !(m.BetaLocal > 0) {
		m.BetaLocal = m.Beta
	}
	if !(m.Gamma > 0) {
		m.Gamma = defaultGamma
	}
}

func (m CostModel) String() string {
	return fmt.Sprintf("alpha %.3gus beta %.3g GB/s local alpha %.3gus beta %.3g GB/s gamma %.3g GB/s",
		m.Alpha*1e6, 1/m.Beta/1e9, m.AlphaLocal*1e6, 1/m.BetaLocal/1e9, 1/m.Gamma/1e9)
}

// link is the (alpha, beta) of the slowest link a flat algorithm over t
// crosses.
func (m *CostModel) link(t *topology) (alpha, beta float64) {
	if t.multiHost() {
		return m.Alpha, m.Beta
	}
	return m.AlphaLocal, m.BetaLocal
}

// topology is what selection knows about where ranks are.
type topology struct {
	rank, size int
	hostOf     []int   // host index of each rank
	hosts      [][]int // ranks of each host, hosts in order of their lowest rank
	known      bool    // the transport named hosts
}

// newTopology groups ranks by host name; without names every rank is its
// own host.
func newTopology(rank, size int, names []string) topology {
	t := topology{rank: rank, size: size, hostOf: make([]int, size), known: len(names) == size}
	idx := map[string]int{}
	for r := 0; r < size; r++ {
		name := fmt.Sprint("rank", r)
		if t.known {
			name = "host:" + names[r]
		}
		h, ok := idx[name]
		if !ok {
			h = len(t.hosts)
			idx[name] = h
			t.hosts = append(t.hosts, nil)
		}
		t.hostOf[r] = h
		t.hosts[h] = append(t.hosts[h], r)
	}
	return t
}

func (t *topology) multiHost() bool { return len(t.hosts) > 1 }

// maxLocal is the most ranks any host has.
func (t *topology) maxLocal() int {
	l := 0
	for _, h := range t.hosts {
		l = max(l, len(h))
	}
	return l
}

// flat is a single-host-class topology of n ranks with the link class of
// t (for the inner level of hierarchical algorithms).
func flatTopology(n int, multiHost bool) *topology {
	t := &topology{size: n, hostOf: make([]int, n)}
	if multiHost {
		for r := range n {
			t.hostOf[r] = r
			t.hosts = append(t.hosts, []int{r})
		}
	} else {
		r := make([]int, n)
		for i := range r {
			r[i] = i
		}
		t.hosts = [][]int{r}
	}
	return t
}

func log2ceil(n int) int {
	l := 0
	for 1<<l < n {
		l++
	}
	return l
}

func pow2floor(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// costTable lists each candidate's predicted seconds, cheapest first.
func costTable(m *CostModel, t *topology, algs []*algorithm, bytes int) (names []string, costs []float64) {
	type nc struct {
		name string
		cost float64
	}
	var l []nc
	for _, a := range algs {
		if a.cost == nil {
			continue
		}
		c := a.cost(m, t, bytes)
		if math.IsNaN(c) {
			c = math.Inf(1)
		}
		l = append(l, nc{a.name, c})
	}
	slices.SortStableFunc(l, func(a, b nc) int {
		switch {
		case a.cost < b.cost:
			return -1
		case a.cost > b.cost:
			return 1
		}
		return 0
	})
	for _, e := range l {
		names = append(names, e.name)
		costs = append(costs, e.cost)
	}
	return names, costs
}
