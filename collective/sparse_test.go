package collective_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

// sparseInput is one rank's pairs.
type sparseInput struct {
	idx  []uint32
	vals []byte
}

// sparseInputs draws nnz pairs per rank (nnz[r]) over a vector of n
// elements, with repeated indices, and exact values (collectivetest.Inputs:
// small integers for floats) so that any summation order is exact.
func sparseInputs(rng *rand.Rand, dt collective.DType, n int, nnz []int) []sparseInput {
	in := make([]sparseInput, len(nnz))
	vals := collectivetest.Inputs(rng, collectivetest.Case{Op: collective.OpAllReduce, DType: dt, Reduce: collective.Sum}, len(nnz), slices.Max(nnz))
	for r, k := range nnz {
		in[r].idx = make([]uint32, k)
		for i := range in[r].idx {
			in[r].idx[i] = uint32(rng.IntN(n))
		}
		in[r].vals = vals[r][:k*dt.Size()]
	}
	return in
}

// sparseReference adds every pair into a zero vector in rank order, one
// element at a time with collective.ReduceInto, then finishes Avg.
func sparseReference(in []sparseInput, dt collective.DType, op collective.Op, n int) []byte {
	e := dt.Size()
	out := make([]byte, n*e)
	for _, r := range in {
		for i, ix := range r.idx {
			if err := collective.ReduceInto(out[int(ix)*e:(int(ix)+1)*e], r.vals[i*e:(i+1)*e], dt, collective.Sum); err != nil {
				panic(err)
			}
		}
	}
	if err := collective.Finish(out, dt, op, len(in)); err != nil {
		panic(err)
	}
	return out
}

// TestAllGatherSparse: every type, rank count and dense length (0, 1, odd,
// not a multiple of the rank count), with pair counts from none to more
// than the length, uneven across ranks, for Sum and Avg, forced sparse
// (ratio tiny), forced dense (+Inf) and the default switch; every rank
// must hold the reference's bytes and agree on the route, which must be
// the one the documented rule gives.
func TestAllGatherSparse(t *testing.T) {
	ctx := testCtx(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range testRanks {
		comms := algoComms(t, n, collective.OpAllGather, "auto")
		for _, dt := range collective.DTypes() {
			for _, N := range []int{0, 1, 7, 33, 200} {
				for _, ratio := range []float64{0, 1e-9, math.Inf(1)} {
					op := collective.Sum
					if rng.IntN(3) == 0 {
						op = collective.Avg
					}
					nnz := make([]int, n)
					for r := range nnz {
						if N > 0 {
							nnz[r] = rng.IntN([]int{1, 4, N/4 + 1, 2 * N}[rng.IntN(4)] + 1)
						}
					}
					in := sparseInputs(rng, dt, max(N, 1), nnz)
					want := sparseReference(in, dt, op, N)
					gathered := float64(n * slices.Max(nnz) * (4 + dt.Size()))
					eff := ratio
					if eff == 0 {
						eff = collective.DefaultSparseDenseRatio
					}
					wantDense := gathered > 0 && gathered*eff > float64(N*dt.Size())
					got := make([][]byte, n)
					res := make([]collective.SparseResult, n)
					errs := collectivetest.Parallel(n, func(r int) error {
						got[r] = make([]byte, N*dt.Size())
						for i := range got[r] {
							got[r][i] = 0xa5 // overwritten
						}
						var err error
						res[r], err = comms[r].AllGatherSparse(ctx, in[r].idx, in[r].vals, dt, got[r], collective.SparseOptions{DenseRatio: ratio, Op: op})
						return err
					})
					what := fmt.Sprintf("%d ranks, %v %v, N=%d, nnz %v, ratio %g", n, dt, op, N, nnz, ratio)
					if err := errors.Join(errs...); err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					for r := range n {
						if !bytes.Equal(got[r], want) {
							t.Fatalf("%s: rank %d (dense %v): got % x, want % x", what, r, res[r].Dense, got[r], want)
						}
						if res[r].Dense != wantDense || res[r].NNZ != sumInts(nnz) {
							t.Fatalf("%s: rank %d: %+v, want dense %v nnz %d", what, r, res[r], wantDense, sumInts(nnz))
						}
					}
				}
			}
		}
	}
}

func sumInts(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s
}

// TestAllGatherSparseErrors: one rank's bad argument fails every rank
// (no rank is left waiting), with ErrInvalidArgument; a rank with another
// dense length makes the others fail with ErrSizeMismatch.
func TestAllGatherSparseErrors(t *testing.T) {
	ctx := testCtx(t)
	const n = 3
	comms := algoComms(t, n, collective.OpAllGather, "auto")
	good := []uint32{1, 2}
	vals := make([]byte, 8)
	cases := []struct {
		name  string
		call  func(r int) error
		wants []error
	}{
		{"index beyond N on rank 1", func(r int) error {
			idx := good
			if r == 1 {
				idx = []uint32{1, 10}
			}
			_, err := comms[r].AllGatherSparse(ctx, idx, vals, collective.Int32, make([]byte, 40), collective.SparseOptions{})
			return err
		}, []error{collective.ErrInvalidArgument, collective.ErrInvalidArgument, collective.ErrInvalidArgument}},
		{"values of the wrong length on rank 2", func(r int) error {
			v := vals
			if r == 2 {
				v = vals[:7]
			}
			_, err := comms[r].AllGatherSparse(ctx, good, v, collective.Int32, make([]byte, 40), collective.SparseOptions{})
			return err
		}, []error{collective.ErrInvalidArgument, collective.ErrInvalidArgument, collective.ErrInvalidArgument}},
		{"another N on rank 0", func(r int) error {
			out := make([]byte, 40)
			if r == 0 {
				out = make([]byte, 44)
			}
			_, err := comms[r].AllGatherSparse(ctx, good, vals, collective.Int32, out, collective.SparseOptions{})
			return err
		}, []error{collective.ErrSizeMismatch, collective.ErrSizeMismatch, collective.ErrSizeMismatch}},
		{"max on every rank", func(r int) error {
			_, err := comms[r].AllGatherSparse(ctx, good, vals, collective.Int32, make([]byte, 40), collective.SparseOptions{Op: collective.Max})
			return err
		}, []error{collective.ErrInvalidArgument, collective.ErrInvalidArgument, collective.ErrInvalidArgument}},
	}
	for _, c := range cases {
		errs := collectivetest.Parallel(n, c.call)
		for r, err := range errs {
			if !errors.Is(err, c.wants[r]) {
				t.Errorf("%s: rank %d: %v, want %v", c.name, r, err, c.wants[r])
			}
		}
	}
	// The communicator still works afterwards.
	errs := collectivetest.Parallel(n, func(r int) error {
		out := make([]byte, 40)
		_, err := comms[r].AllGatherSparse(ctx, good, vals, collective.Int32, out, collective.SparseOptions{})
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// TestAllGatherSparsePairs: the concatenation, in rank order.
func TestAllGatherSparsePairs(t *testing.T) {
	ctx := testCtx(t)
	rng := rand.New(rand.NewPCG(8, 9))
	for _, n := range testRanks {
		comms := algoComms(t, n, collective.OpAllGather, "auto")
		for _, dt := range collective.DTypes() {
			nnz := make([]int, n)
			for r := range nnz {
				nnz[r] = rng.IntN(6)
			}
			in := sparseInputs(rng, dt, 1<<30, nnz)
			var wantIdx []uint32
			var wantVals []byte
			for _, r := range in {
				wantIdx = append(wantIdx, r.idx...)
				wantVals = append(wantVals, r.vals...)
			}
			type result struct {
				idx    []uint32
				vals   []byte
				counts []int
			}
			got := make([]result, n)
			errs := collectivetest.Parallel(n, func(r int) error {
				var err error
				got[r].idx, got[r].vals, got[r].counts, err = comms[r].AllGatherSparsePairs(ctx, in[r].idx, in[r].vals, dt)
				return err
			})
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("%d ranks %v: %v", n, dt, err)
			}
			for r := range n {
				if !slices.Equal(got[r].idx, wantIdx) || !bytes.Equal(got[r].vals, wantVals) || !slices.Equal(got[r].counts, nnz) {
					t.Fatalf("%d ranks %v: rank %d got %v % x %v, want %v % x %v", n, dt, r, got[r].idx, got[r].vals, got[r].counts, wantIdx, wantVals, nnz)
				}
			}
		}
	}
}
