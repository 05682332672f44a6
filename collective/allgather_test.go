package collective_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

// testRanks are the group sizes every algorithm is checked on.
var testRanks = []int{1, 2, 3, 4, 5, 8}

// testModel is a fixed cost model (no start-up calibration, the same
// selection on every run): a kernel TCP path.
var testModel = collective.CostModel{Alpha: 20e-6, Beta: 1e-9, Gamma: 0.5e-9}

// algoComms builds n communicators over a rendezvous in-memory group
// (sends complete only once received, which finds algorithms that rely
// on buffering) with op forced to alg ("auto": selection). Segments are
// tiny so that the segmented algorithms pipeline even small messages.
func algoComms(t *testing.T, n int, op collective.OpKind, alg string) []*collective.Communicator {
	t.Helper()
	model := testModel
	return collectivetest.Comms(t, n, collectivetest.GroupOptions{Rendezvous: true}, collective.Options{
		Algorithm: map[collective.OpKind]string{op: alg}, IgnoreEnv: true, CostModel: &model, SegmentBytes: 16,
	})
}

// algosOf is every registered algorithm of op, plus "auto".
func algosOf(op collective.OpKind) []string {
	return append(collective.AlgorithmNames(op), "auto")
}

// testCounts are element counts: 0, 1, odd, and (for every rank count
// above) not a multiple of the rank count.
var testCounts = []int{0, 1, 7, 13, 50}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runMatrix runs cases of op for every algorithm, rank count, element
// type (its size scales the buffers), count and in/out of place against
// the reference; mk lists the cases for a rank count.
func runMatrix(t *testing.T, op collective.OpKind, mk func(n int) []collectivetest.Case) {
	rng := rand.New(rand.NewPCG(uint64(op), 7))
	ctx := testCtx(t)
	for _, alg := range algosOf(op) {
		for _, n := range testRanks {
			t.Run(fmt.Sprintf("%s/%d", alg, n), func(t *testing.T) {
				comms := algoComms(t, n, op, alg)
				for _, c := range mk(n) {
					for _, dt := range collective.DTypes() {
						for _, count := range testCounts {
							for _, inPlace := range []bool{false, true} {
								in := collectivetest.Inputs(rng, c, n, count*dt.Size())
								if err := collectivetest.RunCase(ctx, comms, c, in, inPlace, count%2 == 1); err != nil {
									t.Fatalf("%v, %d elements of %v: %v", alg, count, dt, err)
								}
							}
						}
					}
				}
			})
		}
	}
}

func TestAllGatherAlgorithms(t *testing.T) {
	runMatrix(t, collective.OpAllGather, func(int) []collectivetest.Case {
		return []collectivetest.Case{{Op: collective.OpAllGather}}
	})
}

// TestAllGatherSelection checks what the cost model picks: recursive
// doubling on powers of two, Bruck for small messages elsewhere (where it
// saves steps: not on 3 ranks), the ring for large ones.
func TestAllGatherSelection(t *testing.T) {
	for _, c := range []struct {
		n     int
		bytes int
		want  string
	}{
		{8, 64, "recursive_doubling"}, {8, 64 << 20, "recursive_doubling"},
		{5, 64, "bruck"}, {5, 64 << 20, "ring"}, {6, 1000, "bruck"}, {3, 1000, "ring"},
	} {
		comms := algoComms(t, c.n, collective.OpAllGather, "auto")
		if got := comms[0].Algorithm(collective.OpAllGather, c.bytes); got != c.want {
			t.Errorf("%d ranks, %d bytes: %s, want %s (%s)", c.n, c.bytes, got, c.want, comms[0].Plan(collective.OpAllGather, c.bytes))
		}
	}
}
