package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

// CollectiveRank is Collective for one rank of a job whose other ranks
// run in other processes (a launcher started them): every rank calls it
// with the same options and gets the same rows. Times are combined across
// the ranks with collectives (o.Average), and the check computes every
// rank's input locally (the patterns are a function of rank and
// repetition), compares its own result and sums the wrong elements over
// the ranks. o.OnRow and o.Progress are called on every rank that sets
// them.
func CollectiveRank(ctx context.Context, c *collective.Communicator, o CollOptions) ([]CollResult, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no communicator", ErrCollOptions)
	}
	n := c.Size()
	if err := o.setDefaults(n); err != nil {
		return nil, err
	}
	sizes := CollSizes(o)
	bufs := newCollBuffers(n, c.Rank(), collGeometryFor(o.Op, o.DType, n, sizes[len(sizes)-1]))
	return collSweep(ctx, &rankRun{c: c, o: o, bufs: bufs}, o, n)
}

// rankRun is one CollectiveRank call's state.
type rankRun struct {
	c    *collective.Communicator
	o    CollOptions
	bufs *collBuffers
}

func (r *rankRun) timed(ctx context.Context, g collGeometry, inPlace bool, iters int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.OpTimeout)
	defer cancel()
	op := r.bufs.op(r.c, r.o, g, inPlace)
	h, err := op(collective.Inline(ctx))
	if err == nil {
		err = h.Wait(ctx)
	}
	if err == nil {
		err = r.c.Barrier(ctx)
	}
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := runOps(ctx, op, iters, r.o.Blocking); err != nil {
		return 0, err
	}
	sec := time.Since(t0).Seconds() / float64(max(iters, 1))
	return r.combine(ctx, sec)
}

// combine combines every rank's seconds: the slowest (max), the fastest
// (min), the mean or rank 0's.
func (r *rankRun) combine(ctx context.Context, sec float64) (float64, error) {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, math.Float64bits(sec))
	var err error
	switch r.o.Average {
	case CollTimeMin:
		err = r.c.AllReduce(ctx, nil, b, collective.Float64, collective.Min)
	case CollTimeAvg:
		err = r.c.AllReduce(ctx, nil, b, collective.Float64, collective.Avg)
	case CollTimeRank0:
		err = r.c.Broadcast(ctx, nil, b, 0)
	default:
		err = r.c.AllReduce(ctx, nil, b, collective.Float64, collective.Max)
	}
	if err != nil {
		return 0, fmt.Errorf("combine times: %w", err)
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
}

func (r *rankRun) check(ctx context.Context, g collGeometry, inPlace bool, rep uint64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.OpTimeout)
	defer cancel()
	me := r.c.Rank()
	r.bufs.prepareCheck(me, g, inPlace, r.o, rep)
	if err := r.c.Barrier(ctx); err != nil {
		return 0, err
	}
	h, err := r.bufs.op(r.c, r.o, g, inPlace)(ctx)
	if err == nil {
		err = h.Wait(ctx)
	}
	if err != nil {
		return 0, err
	}
	inputs := make([][]byte, g.n)
	for rank := range g.n {
		inputs[rank] = collInput(g, r.o, rank, rep)
	}
	want, err := collExpected(g, r.o, inputs)
	if err != nil {
		return 0, err
	}
	var wrong int64
	if want[me] != nil {
		_, got := r.bufs.slices(me, g, inPlace)
		wrong = countWrong(got, want[me], g.ts)
	}
	total := make([]byte, 8)
	binary.LittleEndian.PutUint64(total, uint64(wrong))
	if err := r.c.AllReduce(ctx, nil, total, collective.Int64, collective.Sum); err != nil {
		return 0, fmt.Errorf("sum wrong elements: %w", err)
	}
	return int64(binary.LittleEndian.Uint64(total)), nil
}
