package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/internal/par"
)

// collGeometry is nccl-tests' per-size arithmetic (getCollByteCount): the
// elements each rank sends and receives, and the parameter count the
// count column shows, for a size of bytes.
type collGeometry struct {
	op                    collective.OpKind
	ts                    int   // type size
	n                     int   // ranks
	send, recv, param     int64 // elements
	sendInPlace, recvInPl int64 // in-place offsets per rank, elements
}

func collGeometryFor(k collective.OpKind, dt collective.DType, n int, size int64) collGeometry {
	ts := dt.Size()
	count := size / int64(ts)
	g := collGeometry{op: k, ts: ts, n: n}
	nn := int64(n)
	switch k {
	case collective.OpAllGather:
		g.param = count / nn
		g.send, g.recv = g.param, g.param*nn
		g.sendInPlace = g.param
	case collective.OpReduceScatter:
		g.param = count / nn
		g.send, g.recv = g.param*nn, g.param
		g.recvInPl = g.param
	case collective.OpAllToAll:
		g.param = count / nn
		g.send, g.recv = g.param*nn, g.param*nn
	default: // allreduce, broadcast, reduce
		g.param, g.send, g.recv = count, count, count
	}
	return g
}

// size is the size column: the larger buffer in bytes.
func (g collGeometry) size() int64 { return max(g.send, g.recv) * int64(g.ts) }

// collBuffers are the ranks' send and receive buffers, allocated once at
// the largest size (nccl-tests does the same) and sliced per size.
type collBuffers struct {
	send, recv [][]byte
}

// newCollBuffers allocates the buffers of every rank of n, or of rank only
// when only >= 0 (the others stay nil), for geometry g.
func newCollBuffers(n, only int, g collGeometry) *collBuffers {
	b := &collBuffers{send: make([][]byte, n), recv: make([][]byte, n)}
	bytes := g.size()
	for r := range n {
		if only < 0 || r == only {
			b.send[r] = make([]byte, bytes)
			b.recv[r] = make([]byte, bytes)
		}
	}
	return b
}

// slices returns rank's send and receive buffers for g: separate ones out
// of place; in place the layouts nccl-tests uses (allgather sends from its
// block of the receive buffer, reducescatter receives into its block of
// the send buffer, the others share one buffer).
func (b *collBuffers) slices(rank int, g collGeometry, inPlace bool) (send, recv []byte) {
	sb, rb := g.send*int64(g.ts), g.recv*int64(g.ts)
	if !inPlace {
		return b.send[rank][:sb], b.recv[rank][:rb]
	}
	buf := b.recv[rank]
	switch g.op {
	case collective.OpAllGather:
		recv = buf[:rb]
		off := g.sendInPlace * int64(g.ts) * int64(rank)
		return recv[off : off+sb], recv
	case collective.OpReduceScatter:
		send = buf[:sb]
		off := g.recvInPl * int64(g.ts) * int64(rank)
		return send, send[off : off+rb]
	}
	return buf[:rb], buf[:rb]
}

// op returns a function that issues o.Op for rank on g's buffers.
func (b *collBuffers) op(c *collective.Communicator, o CollOptions, g collGeometry, inPlace bool) func(context.Context) (*collective.Handle, error) {
	send, recv := b.slices(c.Rank(), g, inPlace)
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
	case collective.OpReduce:
		if c.Rank() != o.Root {
			recv = nil
		}
		return func(ctx context.Context) (*collective.Handle, error) {
			return c.IReduce(ctx, send, recv, o.DType, o.Reduce, o.Root)
		}
	}
	return func(context.Context) (*collective.Handle, error) {
		return nil, fmt.Errorf("%w: operation %v", ErrCollOptions, o.Op)
	}
}

// check fills every rank's input with a pattern seeded by rep, runs the
// operation once on every rank, and counts the elements (over all ranks)
// that differ from the expected result.
func (r *collRun) check(ctx context.Context, g collGeometry, inPlace bool, rep uint64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.OpTimeout)
	defer cancel()
	inputs := make([][]byte, r.n)
	for rank := range r.n {
		inputs[rank] = r.bufs.prepareCheck(rank, g, inPlace, r.o, rep)
	}
	errs := par.Start(r.n, func(rank int) error {
		h, err := r.bufs.op(r.comms[rank], r.o, g, inPlace)(ctx)
		if err == nil {
			err = h.Wait(ctx)
		}
		if err != nil {
			cancel()
		}
		return err
	})
	if err := joinRankErrors(<-errs); err != nil {
		return 0, err
	}
	want, err := collExpected(g, r.o, inputs)
	if err != nil {
		return 0, err
	}
	var wrong int64
	for rank := range r.n {
		if want[rank] == nil {
			continue
		}
		_, got := r.bufs.slices(rank, g, inPlace)
		wrong += countWrong(got, want[rank], g.ts)
	}
	return wrong, nil
}

// prepareCheck writes rank's input for repetition rep into its buffers
// for g, poisons what is output only (so that an operation that writes
// nothing cannot pass), and returns a copy of the input.
func (b *collBuffers) prepareCheck(rank int, g collGeometry, inPlace bool, o CollOptions, rep uint64) []byte {
	send, recv := b.slices(rank, g, inPlace)
	if !inPlace {
		fillCollPoison(recv)
	}
	fillCollPattern(send, o.DType, o.Reduce, rank, rep, collPatternKind(o.Op))
	if inPlace && g.op == collective.OpAllGather {
		// Every other block of the shared buffer is output.
		bs := len(send)
		for blk := range g.n {
			if blk != rank {
				fillCollPoison(recv[blk*bs : (blk+1)*bs])
			}
		}
	}
	return append([]byte(nil), send...)
}

// collInput is rank's input for repetition rep as prepareCheck writes it,
// computed without buffers: every rank of a job can know every other's.
func collInput(g collGeometry, o CollOptions, rank int, rep uint64) []byte {
	b := make([]byte, g.send*int64(g.ts))
	fillCollPattern(b, o.DType, o.Reduce, rank, rep, collPatternKind(o.Op))
	return b
}

// collExpected computes every rank's expected receive buffer (nil where
// the operation leaves none) from every rank's input, reducing in rank
// order with the collective package's reductions.
func collExpected(g collGeometry, o CollOptions, inputs [][]byte) ([][]byte, error) {
	n := len(inputs)
	want := make([][]byte, n)
	switch g.op {
	case collective.OpAllReduce, collective.OpReduce, collective.OpReduceScatter:
		acc := append([]byte(nil), inputs[0]...)
		for r := 1; r < n; r++ {
			if err := collective.ReduceInto(acc, inputs[r], o.DType, o.Reduce); err != nil {
				return nil, fmt.Errorf("expected result: %w", err)
			}
		}
		if err := collective.Finish(acc, o.DType, o.Reduce, n); err != nil {
			return nil, fmt.Errorf("expected result: %w", err)
		}
		blk := int(g.recv) * g.ts
		for r := range want {
			switch g.op {
			case collective.OpAllReduce:
				want[r] = acc
			case collective.OpReduce:
				if r == o.Root {
					want[r] = acc
				}
			default:
				want[r] = acc[r*blk : (r+1)*blk]
			}
		}
	case collective.OpAllGather:
		var all []byte
		for _, in := range inputs {
			all = append(all, in...)
		}
		for r := range want {
			want[r] = all
		}
	case collective.OpBroadcast:
		for r := range want {
			want[r] = inputs[o.Root]
		}
	case collective.OpAllToAll:
		blk := int(g.param) * g.ts
		for r := range want {
			want[r] = make([]byte, 0, n*blk)
			for s := range n {
				want[r] = append(want[r], inputs[s][r*blk:(r+1)*blk]...)
			}
		}
	}
	return want, nil
}

// countWrong counts the elements of ts bytes that differ.
func countWrong(got, want []byte, ts int) int64 {
	if len(got) != len(want) {
		return int64(max(len(got), len(want)) / ts)
	}
	var wrong int64
	// Compare big chunks first: the common case is all equal.
	const chunk = 4096
	for off := 0; off < len(got); off += chunk {
		end := min(off+chunk, len(got))
		if bytes.Equal(got[off:end], want[off:end]) {
			continue
		}
		for i := off; i+ts <= end; i += ts {
			if !bytes.Equal(got[i:i+ts], want[i:i+ts]) {
				wrong++
			}
		}
	}
	return wrong
}

type collPattern int

const (
	patternReduce collPattern = iota // values any reduction order gets exactly
	patternBytes                     // arbitrary bytes: data movement only
)

func collPatternKind(k collective.OpKind) collPattern {
	switch k {
	case collective.OpAllReduce, collective.OpReduceScatter, collective.OpReduce:
		return patternReduce
	}
	return patternBytes
}

// mix64 is SplitMix64's finalizer: a well-spread function of its input.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// fillCollPattern writes rank's input for repetition rep: a function of
// (rep, rank, element index) so that a misplaced block or element shows.
// For reductions over floating-point types the values are small integers
// (±1, ±2 for products) so that every reduction order gives exactly the
// same result; integers use their full range (sums and products wrap, in
// any order the same).
func fillCollPattern(b []byte, dt collective.DType, op collective.Op, rank int, rep uint64, kind collPattern) {
	seed := mix64(rep*0x9e3779b97f4a7c15 + uint64(rank+1)*0xd1b54a32d192ed03)
	if kind == patternBytes {
		var w [8]byte
		for i := 0; i < len(b); i += 8 {
			binary.LittleEndian.PutUint64(w[:], mix64(seed+uint64(i)))
			copy(b[i:], w[:])
		}
		return
	}
	le := binary.LittleEndian
	ts := dt.Size()
	small := func(h uint64) float32 {
		if op == collective.Prod {
			return [4]float32{-2, -1, 1, 2}[h&3]
		}
		return float32(int(h%17) - 8)
	}
	for i, e := 0, uint64(0); i+ts <= len(b); i, e = i+ts, e+1 {
		h := mix64(seed + e)
		switch dt {
		case collective.Float32:
			le.PutUint32(b[i:], math.Float32bits(small(h)))
		case collective.Float64:
			le.PutUint64(b[i:], math.Float64bits(float64(small(h))))
		case collective.Float16:
			le.PutUint16(b[i:], collective.Float32ToHalf(small(h)))
		case collective.BFloat16:
			le.PutUint16(b[i:], collective.Float32ToBFloat16(small(h)))
		default:
			for j := range ts {
				b[i+j] = byte(h >> (8 * j))
			}
		}
	}
}

// fillCollPoison fills an output buffer with a byte no pattern makes in
// every position.
func fillCollPoison(b []byte) {
	for i := range b {
		b[i] = 0xa5
	}
}
