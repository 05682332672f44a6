package collectivetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/internal/par"
)

// Comms builds n communicators over a fresh in-memory group (all at once:
// start-up calibrates across ranks) and closes them when t ends.
func Comms(t testing.TB, n int, gopts GroupOptions, copts collective.Options) []*collective.Communicator {
	t.Helper()
	ts := NewGroup(n, gopts)
	comms, err := NewComms(context.Background(), ts, copts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range comms {
			c.Close()
		}
	})
	return comms
}

// NewComms builds one communicator per transport concurrently.
func NewComms(ctx context.Context, ts []collective.Transport, copts collective.Options) ([]*collective.Communicator, error) {
	comms := make([]*collective.Communicator, len(ts))
	errs := Parallel(len(ts), func(r int) error {
		var err error
		comms[r], err = collective.NewCommunicator(ctx, ts[r], copts)
		return err
	})
	if err := errors.Join(errs...); err != nil {
		for _, c := range comms {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	return comms, nil
}

// Parallel runs fn(rank) for every rank at once and returns each rank's
// error.
func Parallel(n int, fn func(rank int) error) []error { return par.Each(n, fn) }

// Inputs returns every rank's input for c with count elements per rank
// (ReduceScatter and AllToAll: count per block): integers drawn from
// their full range, floating point small integers so that any reduction
// order gives the exact same sum, product, minimum and maximum.
func Inputs(rng *rand.Rand, c Case, n, count int) [][]byte {
	dt := c.DType
	if !dt.Valid() || c.Op == collective.OpAllGather || c.Op == collective.OpBroadcast || c.Op == collective.OpAllToAll {
		dt = collective.Uint8
	}
	elems := count
	if c.Op == collective.OpReduceScatter || c.Op == collective.OpAllToAll {
		elems = count * n
	}
	in := make([][]byte, n)
	for r := range in {
		in[r] = make([]byte, elems*dt.Size())
		fillExact(rng, in[r], dt, c.Reduce)
	}
	return in
}

func fillExact(rng *rand.Rand, b []byte, dt collective.DType, op collective.Op) {
	le := binary.LittleEndian
	small := func() float32 {
		if op == collective.Prod {
			return []float32{-2, -1, 1, 2}[rng.IntN(4)]
		}
		return float32(rng.IntN(17) - 8)
	}
	sz := dt.Size()
	for i := 0; i+sz <= len(b); i += sz {
		switch dt {
		case collective.Float32:
			le.PutUint32(b[i:], math.Float32bits(small()))
		case collective.Float64:
			le.PutUint64(b[i:], math.Float64bits(float64(small())))
		case collective.Float16:
			le.PutUint16(b[i:], collective.Float32ToHalf(small()))
		case collective.BFloat16:
			le.PutUint16(b[i:], collective.Float32ToBFloat16(small()))
		default:
			for j := range sz {
				b[i+j] = byte(rng.Uint32())
			}
		}
	}
}

// RunCase runs c on every communicator (all of one group, rank order)
// with the given inputs, in place or out of place, blocking or through
// the non-blocking call and Wait, and compares every rank's result with
// Reference byte for byte.
func RunCase(ctx context.Context, comms []*collective.Communicator, c Case, inputs [][]byte, inPlace, nonBlocking bool) error {
	n := len(comms)
	want, err := Reference(c, inputs)
	if err != nil {
		return err
	}
	got := make([][]byte, n)
	errs := Parallel(n, func(r int) error {
		out, err := runOne(ctx, comms[r], c, inputs[r], inPlace, nonBlocking)
		got[r] = out
		return err
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%v: %w", c, err)
	}
	for r := range n {
		if !bytes.Equal(got[r], want[r]) {
			return fmt.Errorf("%v (%d bytes in, in place %v): rank %d: %s", c, len(inputs[r]), inPlace, r, firstDiff(got[r], want[r]))
		}
	}
	return nil
}

func firstDiff(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d bytes, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			hi := min(len(got), i+8)
			return fmt.Sprintf("byte %d: got % x want % x", i, got[i:hi], want[i:hi])
		}
	}
	return "equal"
}

// runOne runs c on one rank and returns its receive buffer.
func runOne(ctx context.Context, cm *collective.Communicator, c Case, in []byte, inPlace, nonBlocking bool) ([]byte, error) {
	r, n := cm.Rank(), cm.Size()
	send := append([]byte(nil), in...)
	var recv []byte
	// Each case sets the non-blocking call; block is the blocking one.
	var start func() (*collective.Handle, error)
	var block func() error
	switch c.Op {
	case collective.OpAllReduce:
		recv = make([]byte, len(in))
		if inPlace {
			recv, send = send, nil
		}
		start = func() (*collective.Handle, error) { return cm.IAllReduce(ctx, send, recv, c.DType, c.Reduce) }
		block = func() error { return cm.AllReduce(ctx, send, recv, c.DType, c.Reduce) }
	case collective.OpReduce:
		if r == c.Root {
			recv = make([]byte, len(in))
			if inPlace {
				recv, send = send, nil
			}
		}
		start = func() (*collective.Handle, error) { return cm.IReduce(ctx, send, recv, c.DType, c.Reduce, c.Root) }
		block = func() error { return cm.Reduce(ctx, send, recv, c.DType, c.Reduce, c.Root) }
	case collective.OpReduceScatter:
		blk := len(in) / n
		recv = make([]byte, blk)
		if inPlace {
			recv = send[r*blk : (r+1)*blk]
		}
		start = func() (*collective.Handle, error) { return cm.IReduceScatter(ctx, send, recv, c.DType, c.Reduce) }
		block = func() error { return cm.ReduceScatter(ctx, send, recv, c.DType, c.Reduce) }
	case collective.OpAllGather:
		recv = make([]byte, len(in)*n)
		if inPlace {
			copy(recv[r*len(in):], in)
			send = nil
		}
		start = func() (*collective.Handle, error) { return cm.IAllGather(ctx, send, recv) }
		block = func() error { return cm.AllGather(ctx, send, recv) }
	case collective.OpBroadcast:
		recv = make([]byte, len(in))
		if inPlace {
			recv, send = send, nil
		}
		start = func() (*collective.Handle, error) { return cm.IBroadcast(ctx, send, recv, c.Root) }
		block = func() error { return cm.Broadcast(ctx, send, recv, c.Root) }
	case collective.OpAllToAll:
		recv = make([]byte, len(in))
		if inPlace {
			recv, send = send, nil
		}
		start = func() (*collective.Handle, error) { return cm.IAllToAll(ctx, send, recv) }
		block = func() error { return cm.AllToAll(ctx, send, recv) }
	case collective.OpBarrier:
		start = func() (*collective.Handle, error) { return cm.IBarrier(ctx) }
		block = func() error { return cm.Barrier(ctx) }
	default:
		return nil, fmt.Errorf("run %v: %w", c.Op, collective.ErrNotSupported)
	}
	if !nonBlocking {
		if err := block(); err != nil {
			return nil, err
		}
	} else {
		h, err := start()
		if err != nil {
			return nil, err
		}
		// Poll with Test, then Wait.
		if done, err := h.Test(); done && err != nil {
			return nil, err
		}
		if err := h.Wait(ctx); err != nil {
			return nil, err
		}
		if done, err := h.Test(); !done || err != nil {
			return nil, fmt.Errorf("rank %d: Test after Wait: done %v, %v", r, done, err)
		}
	}
	if send != nil && !inPlace && !bytes.Equal(send, in) {
		return nil, fmt.Errorf("rank %d: %v changed its send buffer", r, c.Op)
	}
	if c.Op == collective.OpReduceScatter && inPlace {
		return append([]byte(nil), recv...), nil
	}
	return recv, nil
}
