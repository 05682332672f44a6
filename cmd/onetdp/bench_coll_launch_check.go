package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/collective"
)

// geometry is nccl-tests' per-size arithmetic for one rank: elements sent
// and received and the count column (as bench computes it for the ranks
// it runs in one process).
type geometry struct {
	op                collective.OpKind
	dt                collective.DType
	ts, n             int
	send, recv, param int64 // elements
}

func geometryFor(k collective.OpKind, dt collective.DType, n int, size int64) geometry {
	ts := dt.Size()
	count := size / int64(ts)
	g := geometry{op: k, dt: dt, ts: ts, n: n}
	nn := int64(n)
	switch k {
	case collective.OpAllGather:
		g.param = count / nn
		g.send, g.recv = g.param, g.param*nn
	case collective.OpReduceScatter:
		g.param = count / nn
		g.send, g.recv = g.param*nn, g.param
	case collective.OpAllToAll:
		g.param = count / nn
		g.send, g.recv = g.param*nn, g.param*nn
	default: // allreduce, broadcast
		g.param, g.send, g.recv = count, count, count
	}
	return g
}

// size is the size column: the larger buffer in bytes.
func (g geometry) size() int64 { return max(g.send, g.recv) * int64(g.ts) }

// launchedBufs are this rank's buffers, allocated at the largest size.
type launchedBufs struct {
	rank       int
	send, recv []byte
}

func newLaunchedBufs(k collective.OpKind, dt collective.DType, n, rank int, maxSize int64) *launchedBufs {
	g := geometryFor(k, dt, n, maxSize)
	return &launchedBufs{rank: rank, send: make([]byte, g.size()), recv: make([]byte, g.size())}
}

// slices are the buffers for g: separate out of place; in place
// nccl-tests' layouts (allgather sends from its block of recv,
// reducescatter receives into its block of send, the others share one).
func (b *launchedBufs) slices(g geometry, inPlace bool) (send, recv []byte) {
	sb, rb := g.send*int64(g.ts), g.recv*int64(g.ts)
	if !inPlace {
		return b.send[:sb], b.recv[:rb]
	}
	buf := b.recv
	switch g.op {
	case collective.OpAllGather:
		off := sb * int64(b.rank)
		return buf[off : off+sb], buf[:rb]
	case collective.OpReduceScatter:
		off := rb * int64(b.rank)
		return buf[:sb], buf[off : off+rb]
	}
	return buf[:rb], buf[:rb]
}

// op issues o.Op on g's buffers.
func (b *launchedBufs) op(c *collective.Communicator, o bench.CollOptions, g geometry, inPlace bool) func(context.Context) (*collective.Handle, error) {
	send, recv := b.slices(g, inPlace)
	switch o.Op {
	case collective.OpAllReduce:
		return func(ctx context.Context) (*collective.Handle, error) {
			return c.IAllReduce(ctx, send, recv, o.DType, o.Reduce)
		}
	case collective.OpAllGather:
		return func(ctx context.Context) (*collective.Handle, error) { return c.IAllGather(ctx, send, recv) }
	case collective.OpBroadcast:
		return func(ctx context.Context) (*collective.Handle, error) { return c.IBroadcast(ctx, send, recv, o.Root) }
	case collective.OpReduceScatter:
		return func(ctx context.Context) (*collective.Handle, error) {
			return c.IReduceScatter(ctx, send, recv, o.DType, o.Reduce)
		}
	case collective.OpAllToAll:
		return func(ctx context.Context) (*collective.Handle, error) { return c.IAllToAll(ctx, send, recv) }
	}
	return func(context.Context) (*collective.Handle, error) {
		return nil, fmt.Errorf("operation %v: %w", o.Op, collective.ErrNotSupported)
	}
}

// launchedInput is rank's input of elements for the check's repetition
// rep: small integers (1..5; 1..2 for prod) that every type holds exactly
// and whose sums and products over up to 16 ranks are exact in any order.
// Every rank can compute every other rank's input, so each checks its own
// result locally.
func launchedInput(dt collective.DType, op collective.Op, rank int, rep uint64, elems int64) []byte {
	b := make([]byte, elems*int64(dt.Size()))
	mod := int64(5)
	if op == collective.Prod {
		mod = 2
	}
	for i := range elems {
		putSmall(b, dt, i, 1+(int64(rank)*7+i*3+int64(rep))%mod)
	}
	return b
}

// putSmall stores the small integer v as element i of type dt.
func putSmall(b []byte, dt collective.DType, i, v int64) {
	switch dt {
	case collective.Float32:
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(v)))
	case collective.Float64:
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(float64(v)))
	case collective.Float16:
		binary.LittleEndian.PutUint16(b[2*i:], collective.Float32ToHalf(float32(v)))
	case collective.BFloat16:
		binary.LittleEndian.PutUint16(b[2*i:], collective.Float32ToBFloat16(float32(v)))
	case collective.Int8, collective.Uint8:
		b[i] = byte(v)
	case collective.Int32:
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	case collective.Int64:
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
}

// launchedExpected is this rank's expected receive buffer for g.
func launchedExpected(g geometry, o bench.CollOptions, rank int, rep uint64) ([]byte, error) {
	in := func(r int) []byte { return launchedInput(g.dt, o.Reduce, r, rep, g.send) }
	es := int64(g.ts)
	switch g.op {
	case collective.OpAllReduce, collective.OpReduceScatter:
		acc := in(0)
		for r := 1; r < g.n; r++ {
			if err := collective.ReduceInto(acc, in(r), g.dt, o.Reduce); err != nil {
				return nil, err
			}
		}
		if err := collective.Finish(acc, g.dt, o.Reduce, g.n); err != nil {
			return nil, err
		}
		if g.op == collective.OpReduceScatter {
			return acc[int64(rank)*g.recv*es : int64(rank+1)*g.recv*es], nil
		}
		return acc, nil
	case collective.OpBroadcast:
		return in(o.Root), nil
	case collective.OpAllGather:
		var out []byte
		for r := range g.n {
			out = append(out, in(r)...)
		}
		return out, nil
	case collective.OpAllToAll:
		blk := g.param * es
		var out []byte
		for r := range g.n {
			out = append(out, in(r)[int64(rank)*blk:int64(rank+1)*blk]...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("check %v: %w", g.op, collective.ErrNotSupported)
}

// check fills the input for repetition rep, runs the operation once and
// returns the number of wrong elements summed over every rank.
func (r *launchedRun) check(ctx context.Context, g geometry, inPlace bool, rep uint64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	me := r.c.Rank()
	send, recv := r.b.slices(g, inPlace)
	for i := range recv {
		recv[i] = 0xA5 // poison: an operation that writes nothing fails
	}
	copy(send, launchedInput(g.dt, r.o.Reduce, me, rep, g.send))
	if err := r.c.Barrier(ctx); err != nil {
		return 0, err
	}
	h, err := r.b.op(r.c.Communicator, r.o, g, inPlace)(ctx)
	if err == nil {
		err = h.Wait(ctx)
	}
	if err != nil {
		return 0, err
	}
	want, err := launchedExpected(g, r.o, me, rep)
	if err != nil {
		return 0, err
	}
	var wrong int64
	for i := 0; i+g.ts <= len(want) && i+g.ts <= len(recv); i += g.ts {
		if !bytes.Equal(recv[i:i+g.ts], want[i:i+g.ts]) {
			wrong++
		}
	}
	if len(recv) != len(want) {
		wrong += int64(max(len(recv), len(want))-min(len(recv), len(want))) / int64(g.ts)
	}
	total := make([]byte, 8)
	binary.LittleEndian.PutUint64(total, uint64(wrong))
	if err := r.c.AllReduce(ctx, nil, total, collective.Int64, collective.Sum); err != nil {
		return 0, fmt.Errorf("sum wrong elements: %w", err)
	}
	return int64(binary.LittleEndian.Uint64(total)), nil
}
