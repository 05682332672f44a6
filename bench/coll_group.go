package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/internal/par"
)

// collRun is one Collective call's state.
type collRun struct {
	comms []*collective.Communicator
	o     CollOptions
	n     int
	bufs  *collBuffers
}

// timed runs one untimed operation, lines the ranks up, runs iters
// operations on every rank at once and returns the seconds per operation,
// the ranks combined as o.Average says.
func (r *collRun) timed(ctx context.Context, g collGeometry, inPlace bool, iters int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.OpTimeout)
	defer cancel()
	// One rank's failure would leave the others waiting for it until the
	// timeout: abandon the batch at once instead.
	fail := func(err error) error {
		if err != nil {
			cancel()
		}
		return err
	}
	secs := make([]float64, r.n)
	var ready sync.WaitGroup
	ready.Add(r.n)
	start := make(chan struct{})
	errs := par.Start(r.n, func(rank int) error {
		op := r.bufs.op(r.comms[rank], r.o, g, inPlace)
		h, err := op(ctx)
		if err == nil {
			err = h.Wait(ctx)
		}
		ready.Done()
		if err != nil {
			return fail(err)
		}
		select {
		case <-start:
		case <-ctx.Done():
			return ctx.Err()
		}
		t0 := time.Now()
		if err := runOps(ctx, op, iters, r.o.Blocking); err != nil {
			return fail(err)
		}
		secs[rank] = time.Since(t0).Seconds() / float64(max(iters, 1))
		return nil
	})
	// A rank that failed before the barrier released the others through
	// ready; close start once every rank is there so none waits forever.
	ready.Wait()
	close(start)
	if err := joinRankErrors(<-errs); err != nil {
		return 0, err
	}
	return combineTimes(secs, r.o.Average), nil
}

// runOps runs iters operations: blocking, one after the other as the
// blocking calls do (on an idle communicator the call runs on this
// goroutine, inside Wait), or all issued at once and then waited for.
func runOps(ctx context.Context, op func(context.Context) (*collective.Handle, error), iters int, blocking bool) error {
	if blocking {
		for range iters {
			h, err := op(collective.Inline(ctx))
			if err == nil {
				err = h.Wait(ctx)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	hs := make([]*collective.Handle, 0, iters)
	for range iters {
		h, err := op(ctx)
		if err != nil {
			return err
		}
		hs = append(hs, h)
	}
	for _, h := range hs {
		if err := h.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

func joinRankErrors(errs []error) error {
	var all []error
	for rank, err := range errs {
		if err != nil {
			all = append(all, fmt.Errorf("rank %d: %w", rank, err))
		}
	}
	return errors.Join(all...)
}

func combineTimes(secs []float64, mode CollTimeMode) float64 {
	if len(secs) == 0 {
		return 0
	}
	out := secs[0]
	switch mode {
	case CollTimeRank0:
	case CollTimeAvg:
		sum := 0.0
		for _, s := range secs {
			sum += s
		}
		out = sum / float64(len(secs))
	case CollTimeMin:
		for _, s := range secs {
			out = min(out, s)
		}
	default:
		for _, s := range secs {
			out = max(out, s)
		}
	}
	return out
}
