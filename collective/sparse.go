package collective

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
)

// Sparse allgather: every rank holds (index, value) pairs of one dense
// vector of N elements (the shape of embedding and other sparse
// gradients) and every rank wants the dense sum. It runs as a short
// sequence of collectives, so it is blocking, and like every collective
// it must be called in the same order on every rank:
//
//  1. An AllGather of a 32-byte header per rank (pair count, N, element
//     type, reduction, validity, and rank 0's DenseRatio), so every rank
//     takes the same route, and a rank with bad arguments makes all of
//     them fail with ErrInvalidArgument instead of leaving them waiting.
//  2. Sparse route: an AllGather of the packed pairs, each rank's piece
//     padded to the largest pair count, then every rank adds all pairs
//     into the zeroed result in rank order (the same bytes everywhere).
//     Dense route, taken once the gathered pairs outweigh the dense vector
//     (see SparseOptions.DenseRatio): every rank scatters its own pairs
//     into the zeroed result and an AllReduce sums them.

// DefaultSparseDenseRatio is SparseOptions.DenseRatio's default.
const DefaultSparseDenseRatio = 1.0

// SparseOptions tune AllGatherSparse; the zero value takes the defaults.
// Rank 0's DenseRatio decides for every rank.
type SparseOptions struct {
	// DenseRatio sets where the dense route starts: when
	// n*maxNNZ*(4+elem)*DenseRatio > N*elem, where n*maxNNZ*(4+elem) is
	// what the sparse route gathers on every rank (maxNNZ: the largest
	// pair count of any rank) and N*elem the dense vector. At 1 the
	// sparse route runs while it moves less than one dense copy; a dense
	// ring allreduce moves about two, which leaves room for the scattered
	// adds. Larger values switch earlier. 0 means
	// DefaultSparseDenseRatio; +Inf goes dense whenever a rank has pairs.
	DenseRatio float64
	// Op is Sum (the zero value) or Avg (the sum divided by the rank
	// count, integers truncating toward zero).
	Op Op
}

// SparseResult says how AllGatherSparse ran; it is the same on every rank.
type SparseResult struct {
	// Dense is true when the dense allreduce route ran.
	Dense bool
	// NNZ is the number of pairs of all ranks together (duplicates
	// counted).
	NNZ int
}

// AllGatherSparse sums every rank's (indices[i], values[i]) pairs into
// out on every rank: out holds the dense vector, N = len(out)/dt.Size()
// elements (the same N on every rank), and is overwritten. values holds
// len(indices) elements of dt; every index must be below N. Indices may
// repeat, within a rank and across ranks: their values add. Blocking; call
// it in the same order relative to other collectives on every rank.
func (c *Communicator) AllGatherSparse(ctx context.Context, indices []uint32, values []byte, dt DType, out []byte, opts SparseOptions) (SparseResult, error) {
	local := checkSparseSum(indices, values, dt, out, opts)
	elem := max(dt.Size(), 1)
	h := sparseHeader{nnz: uint64(len(indices)), n: uint64(len(out) / elem), dt: dt, op: opts.Op, ratio: opts.DenseRatio, bad: local != nil}
	if h.ratio == 0 {
		h.ratio = DefaultSparseDenseRatio
	}
	plan, err := c.sparseAgree(ctx, h, local, true)
	if err != nil {
		return SparseResult{}, fmt.Errorf("sparse allgather on rank %d: %w", c.rank, err)
	}
	res := SparseResult{NNZ: plan.total}
	gathered := float64(c.size) * float64(plan.maxNNZ) * float64(sparseIndexSize+elem)
	res.Dense = gathered > 0 && gathered*plan.ratio > float64(len(out))
	clear(out)
	if res.Dense {
		scatterAdd(out, indices, values, dt)
		if err := c.AllReduce(ctx, nil, out, dt, opts.Op); err != nil {
			return res, fmt.Errorf("sparse allgather on rank %d, dense route: %w", c.rank, err)
		}
		return res, nil
	}
	all, err := c.sparseGather(ctx, plan, indices, values, elem)
	if err != nil {
		return res, fmt.Errorf("sparse allgather on rank %d: %w", c.rank, err)
	}
	piece := plan.maxNNZ * (sparseIndexSize + elem)
	for r, k := range plan.nnz {
		scatterAddPacked(out, all[r*piece:(r+1)*piece], plan.maxNNZ, k, dt)
	}
	if err := Finish(out, dt, opts.Op, c.size); err != nil {
		return res, fmt.Errorf("sparse allgather on rank %d: %w", c.rank, err)
	}
	return res, nil
}

// AllGatherSparsePairs gathers every rank's pairs as they are: all holds
// the indices of rank 0, then rank 1, ...; vals their values in the same
// order; counts[r] the number of pairs from rank r. values holds
// len(indices) elements of dt; the indices are not interpreted. Blocking;
// call it in the same order relative to other collectives on every rank.
func (c *Communicator) AllGatherSparsePairs(ctx context.Context, indices []uint32, values []byte, dt DType) (all []uint32, vals []byte, counts []int, err error) {
	var local error
	switch {
	case !dt.Valid():
		local = fmt.Errorf("%v: %w", dt, ErrInvalidArgument)
	case len(values) != len(indices)*dt.Size():
		local = fmt.Errorf("%d value bytes for %d indices of %v: %w", len(values), len(indices), dt, ErrInvalidArgument)
	}
	elem := max(dt.Size(), 1)
	h := sparseHeader{nnz: uint64(len(indices)), dt: dt, bad: local != nil}
	plan, err := c.sparseAgree(ctx, h, local, false)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sparse pairs allgather on rank %d: %w", c.rank, err)
	}
	packed, err := c.sparseGather(ctx, plan, indices, values, elem)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sparse pairs allgather on rank %d: %w", c.rank, err)
	}
	all = make([]uint32, 0, plan.total)
	vals = make([]byte, 0, plan.total*elem)
	piece := plan.maxNNZ * (sparseIndexSize + elem)
	for r, k := range plan.nnz {
		p := packed[r*piece : (r+1)*piece]
		for i := range k {
			all = append(all, binary.LittleEndian.Uint32(p[i*sparseIndexSize:]))
		}
		vo := plan.maxNNZ * sparseIndexSize
		vals = append(vals, p[vo:vo+k*elem]...)
	}
	return all, vals, plan.nnz, nil
}

func checkSparseSum(indices []uint32, values []byte, dt DType, out []byte, opts SparseOptions) error {
	switch {
	case !dt.Valid():
		return fmt.Errorf("%v: %w", dt, ErrInvalidArgument)
	case opts.Op != Sum && opts.Op != Avg:
		return fmt.Errorf("reduction %v (want sum or avg): %w", opts.Op, ErrInvalidArgument)
	case math.IsNaN(opts.DenseRatio) || opts.DenseRatio < 0:
		return fmt.Errorf("dense ratio %v: %w", opts.DenseRatio, ErrInvalidArgument)
	case len(out)%dt.Size() != 0:
		return fmt.Errorf("dense vector of %d bytes is not a whole number of %v: %w", len(out), dt, ErrInvalidArgument)
	case len(values) != len(indices)*dt.Size():
		return fmt.Errorf("%d value bytes for %d indices of %v: %w", len(values), len(indices), dt, ErrInvalidArgument)
	}
	n := len(out) / dt.Size()
	for i, ix := range indices {
		if int64(ix) >= int64(n) {
			return fmt.Errorf("index %d at %d is beyond the dense length %d: %w", ix, i, n, ErrInvalidArgument)
		}
	}
	return nil
}

// sparseHeaderSize is one rank's phase-1 message.
const sparseHeaderSize = 32

// sparseHeader is what each rank tells the others before the data moves.
type sparseHeader struct {
	nnz, n uint64
	ratio  float64
	dt     DType
	op     Op
	bad    bool
}

func (h sparseHeader) put(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b, h.nnz)
	le.PutUint64(b[8:], h.n)
	le.PutUint64(b[16:], math.Float64bits(h.ratio))
	b[24], b[25], b[26] = byte(h.dt), byte(h.op), 0
	if h.bad {
		b[26] = 1
	}
}

func getSparseHeader(b []byte) sparseHeader {
	le := binary.LittleEndian
	return sparseHeader{nnz: le.Uint64(b), n: le.Uint64(b[8:]), ratio: math.Float64frombits(le.Uint64(b[16:])),
		dt: DType(b[24]), op: Op(b[25]), bad: b[26] != 0}
}

// sparsePlan is what phase 1 decided, the same on every rank.
type sparsePlan struct {
	nnz    []int // pairs per rank
	total  int
	maxNNZ int
	ratio  float64 // rank 0's
}

// sparseAgree gathers every rank's header. It returns local (this rank's
// own argument error) as is; otherwise an error naming the ranks that
// failed theirs or disagree with this one (on N when sameN, on the type
// and reduction always).
func (c *Communicator) sparseAgree(ctx context.Context, h sparseHeader, local error, sameN bool) (sparsePlan, error) {
	n := c.size
	hdrs := make([]byte, n*sparseHeaderSize)
	h.put(hdrs[c.rank*sparseHeaderSize:])
	if err := c.AllGather(ctx, nil, hdrs); err != nil {
		return sparsePlan{}, err
	}
	p := sparsePlan{nnz: make([]int, n)}
	var bad, differ []int
	for r := range n {
		o := getSparseHeader(hdrs[r*sparseHeaderSize:])
		if o.bad {
			bad = append(bad, r)
		} else if o.dt != h.dt || o.op != h.op || sameN && o.n != h.n {
			differ = append(differ, r)
		}
		if o.nnz > math.MaxInt32 {
			bad = append(bad, r)
			continue
		}
		p.nnz[r] = int(o.nnz)
		p.total += int(o.nnz)
		p.maxNNZ = max(p.maxNNZ, int(o.nnz))
		if r == 0 {
			p.ratio = o.ratio
		}
	}
	switch {
	case local != nil:
		return sparsePlan{}, local
	case len(bad) > 0:
		return sparsePlan{}, fmt.Errorf("ranks %v passed invalid arguments: %w", bad, ErrInvalidArgument)
	case len(differ) > 0:
		return sparsePlan{}, fmt.Errorf("ranks %v disagree with this rank's length %d, type %v or reduction %v: %w", differ, h.n, h.dt, h.op, ErrSizeMismatch)
	}
	return p, nil
}

// sparseGather allgathers every rank's packed pairs, each piece padded to
// plan.maxNNZ pairs: indices first, then values.
func (c *Communicator) sparseGather(ctx context.Context, p sparsePlan, indices []uint32, values []byte, elem int) ([]byte, error) {
	piece := p.maxNNZ * (sparseIndexSize + elem)
	all := make([]byte, c.size*piece)
	mine := all[c.rank*piece : (c.rank+1)*piece]
	packSparse(mine, p.maxNNZ, indices, values)
	if err := c.AllGather(ctx, nil, all); err != nil {
		return nil, err
	}
	return all, nil
}
