package collective_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

// seed is the randomized tests' seed: ONET_TEST_SEED or the time, logged
// so that a failure can be replayed.
func seed(t *testing.T) uint64 {
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("ONET_TEST_SEED"); v != "" {
		s, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (ONET_TEST_SEED to replay)", s)
	return s
}

var rankCounts = []int{1, 2, 3, 4, 5, 8}

// counts per rank count: 0, 1, odd, not divisible by n, and several
// segments (the tests use 64-byte segments).
func counts(n int) []int {
	return []int{0, 1, n - 1, 2*n + 1, 37, 203}
}

// hostsFor puts ranks two by two on hosts, the last host short when n is
// odd: the hierarchical algorithm has local and inter-host levels.
func hostsFor(n int) []string {
	h := make([]string, n)
	for r := range h {
		h[r] = fmt.Sprintf("h%d", r/2)
	}
	return h
}

// matrix runs every type x reduction x count x rank count through op with
// the algorithm forced (or "" for auto selection), against the reference.
func matrix(t *testing.T, op collective.OpKind, alg string) {
	rng := rand.New(rand.NewPCG(seed(t), 1))
	for _, n := range rankCounts {
		copts := collective.Options{IgnoreEnv: true, SegmentBytes: 64}
		if alg != "" {
			copts.Algorithm = map[collective.OpKind]string{op: alg}
		}
		gopts := collectivetest.GroupOptions{Hosts: hostsFor(n), Rendezvous: n%2 == 1}
		comms := collectivetest.Comms(t, n, gopts, copts)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		i := 0
		for _, dt := range collective.DTypes() {
			for _, red := range collective.Ops() {
				for _, count := range counts(n) {
					i++
					c := collectivetest.Case{Op: op, DType: dt, Reduce: red, Root: i % n}
					in := collectivetest.Inputs(rng, c, n, count)
					if err := collectivetest.RunCase(ctx, comms, c, in, i%3 == 0, i%2 == 0); err != nil {
						cancel()
						t.Fatalf("%s on %d ranks, %d elements: %v", alg, n, count, err)
					}
				}
			}
		}
		cancel()
	}
}

func TestAllReduceAlgorithms(t *testing.T) {
	for _, alg := range append(collective.AlgorithmNames(collective.OpAllReduce), "") {
		name := alg
		if name == "" {
			name = "auto"
		}
		t.Run(name, func(t *testing.T) { matrix(t, collective.OpAllReduce, alg) })
	}
}

func TestReduceScatterAlgorithms(t *testing.T) {
	for _, alg := range append(collective.AlgorithmNames(collective.OpReduceScatter), "") {
		name := alg
		if name == "" {
			name = "auto"
		}
		t.Run(name, func(t *testing.T) { matrix(t, collective.OpReduceScatter, alg) })
	}
}

func TestReduceAlgorithms(t *testing.T) {
	for _, alg := range append(collective.AlgorithmNames(collective.OpReduce), "") {
		name := alg
		if name == "" {
			name = "auto"
		}
		t.Run(name, func(t *testing.T) { matrix(t, collective.OpReduce, alg) })
	}
}
