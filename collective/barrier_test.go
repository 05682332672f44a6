package collective_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

func TestBarrierAlgorithms(t *testing.T) {
	runMatrix(t, collective.OpBarrier, func(int) []collectivetest.Case {
		return []collectivetest.Case{{Op: collective.OpBarrier}}
	})
}

// TestBarrierWaitsForAll: one rank arrives late; every rank counts itself
// in before entering and checks, on leaving, that all had arrived. Three
// barriers in a row, each with its own counter, with the late rank
// changing, so a barrier that lets a rank through early (or one that
// mixes up consecutive barriers) fails.
func TestBarrierWaitsForAll(t *testing.T) {
	ctx := testCtx(t)
	for _, alg := range algosOf(collective.OpBarrier) {
		for _, n := range []int{2, 3, 5, 8} {
			comms := algoComms(t, n, collective.OpBarrier, alg)
			const rounds = 3
			var arrived [rounds]atomic.Int32
			errs := collectivetest.Parallel(n, func(r int) error {
				for i := range rounds {
					if r == (i*(n/2+1))%n {
						time.Sleep(10 * time.Millisecond)
					}
					arrived[i].Add(1)
					if err := comms[r].Barrier(ctx); err != nil {
						return err
					}
					if got := arrived[i].Load(); got != int32(n) {
						return fmt.Errorf("barrier %d: left with %d of %d ranks arrived", i, got, n)
					}
				}
				return nil
			})
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("%s, %d ranks: %v", alg, n, err)
			}
		}
	}
}

// TestBarrierTimesOutNamingAbsent: a barrier that one rank never enters
// times out on the others with ErrTimeout.
func TestBarrierTimesOutNamingAbsent(t *testing.T) {
	model := testModel
	comms := collectivetest.Comms(t, 3, collectivetest.GroupOptions{}, collective.Options{
		IgnoreEnv: true, CostModel: &model, Timeout: 100 * time.Millisecond,
	})
	errs := collectivetest.Parallel(2, func(r int) error { return comms[r].Barrier(t.Context()) })
	for r, err := range errs {
		if !errors.Is(err, collective.ErrTimeout) {
			t.Errorf("rank %d: %v, want ErrTimeout", r, err)
		}
	}
}
