package collective_test

import (
	"testing"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

func TestAllToAllAlgorithms(t *testing.T) {
	runMatrix(t, collective.OpAllToAll, func(int) []collectivetest.Case {
		return []collectivetest.Case{{Op: collective.OpAllToAll}}
	})
}

// TestAllToAllSelection: all at once on small groups, pairwise beyond.
func TestAllToAllSelection(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{4, "concurrent"}, {8, "concurrent"}, {9, "pairwise"}} {
		comms := algoComms(t, c.n, collective.OpAllToAll, "auto")
		if got := comms[0].Algorithm(collective.OpAllToAll, 4096); got != c.want {
			t.Errorf("%d ranks: %s, want %s", c.n, got, c.want)
		}
	}
}
