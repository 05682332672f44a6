package collective_test

import (
	"testing"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

// TestBroadcastAlgorithms runs every algorithm from every root.
func TestBroadcastAlgorithms(t *testing.T) {
	runMatrix(t, collective.OpBroadcast, func(n int) []collectivetest.Case {
		var cs []collectivetest.Case
		for root := range n {
			cs = append(cs, collectivetest.Case{Op: collective.OpBroadcast, Root: root})
		}
		return cs
	})
}

// TestBroadcastSelection: the tree for small messages, scatter+allgather
// for mid sizes, the pipelined chain once it has many segments.
func TestBroadcastSelection(t *testing.T) {
	for _, c := range []struct {
		n     int
		bytes int
		want  string
	}{
		{8, 64, "binomial"}, {5, 1000, "binomial"}, {8, 64 << 20, "chain"}, {8, 512 << 10, "scatter_allgather"}, {3, 8 << 20, "chain"},
	} {
		comms := algoComms(t, c.n, collective.OpBroadcast, "auto")
		if got := comms[0].Algorithm(collective.OpBroadcast, c.bytes); got != c.want {
			t.Errorf("%d ranks, %d bytes: %s, want %s (%s)", c.n, c.bytes, got, c.want, comms[0].Plan(collective.OpBroadcast, c.bytes))
		}
	}
}
