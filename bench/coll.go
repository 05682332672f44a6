package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

// Defaults of CollOptions, nccl-tests' where it has one.
const (
	DefaultCollIters    = 20
	DefaultCollWarmup   = 5
	DefaultCollMinIters = 2
)

// CollTimeMode says how the ranks' times per operation combine into the
// reported one (nccl-tests' -a flag). The zero value is the maximum.
type CollTimeMode int

// The modes; nccl-tests numbers them 0 rank 0, 1 average, 2 min, 3 max
// (CollTimeModeNCCL converts).
const (
	CollTimeMax CollTimeMode = iota
	CollTimeAvg
	CollTimeMin
	CollTimeRank0
)

// CollTimeModeNCCL converts nccl-tests' -a number.
func CollTimeModeNCCL(a int) (CollTimeMode, error) {
	switch a {
	case 0:
		return CollTimeRank0, nil
	case 1:
		return CollTimeAvg, nil
	case 2:
		return CollTimeMin, nil
	case 3:
		return CollTimeMax, nil
	}
	return 0, fmt.Errorf("%w: average %d (want 0 rank 0, 1 average, 2 min, 3 max)", ErrCollOptions, a)
}

// CollOptions configure Collective. Owned by the caller; Collective only
// reads it.
type CollOptions struct {
	// Op is the collective: OpAllReduce, OpAllGather, OpBroadcast,
	// OpReduceScatter, OpAllToAll or OpReduce.
	Op collective.OpKind
	// MinBytes and MaxBytes bound the sizes (nccl-tests -b and -e; the
	// size column: the larger of the send and receive buffer). MinBytes 0
	// means 8; MaxBytes 0 means MinBytes.
	MinBytes, MaxBytes int64
	// StepFactor > 1 multiplies the size from one row to the next (-f);
	// otherwise StepBytes is added (-i, default 1 MiB).
	StepFactor int64
	StepBytes  int64
	// Iters is the timed iterations per size and placement (-n, default
	// 20); Warmup the untimed ones at the largest and the smallest size
	// before the sweep (-w, default 5; negative: none).
	Iters, Warmup int
	// IterBytes, when > 0, bounds a size's timed iterations to
	// IterBytes/size (at least MinIters, default 2), so that a sweep up to
	// 64 MiB on a software stack ends in minutes. 0: always Iters.
	IterBytes int64
	MinIters  int
	// DType, Reduce and Root: -d, -o and -r. DType also sets the element
	// count of the data-movement collectives, as in nccl-tests.
	DType  collective.DType
	Reduce collective.Op
	Root   int
	// Check runs the operation this many times after the timing with
	// freshly patterned inputs and counts the elements that differ from
	// the expected result (-c; 0: no check, #wrong reads N/A).
	Check int
	// Blocking waits for every operation before issuing the next (-z 1);
	// default is nccl-tests' -z 0: issue all Iters, then wait.
	Blocking bool
	// Average picks how the ranks' times combine: the slowest rank by
	// default (nccl-tests averages them unless -a says otherwise).
	Average CollTimeMode
	// OpTimeout bounds each timed batch and each check (default 2 min).
	OpTimeout time.Duration
	// Transport names the rows (Result.Transport).
	Transport string
	// Progress, when set, receives one line per size.
	Progress io.Writer
	// OnRow, when set, sees every row as soon as it is measured (from the
	// calling goroutine).
	OnRow func(CollResult)
}

// CollTiming is one placement's measurement of one size.
type CollTiming struct {
	// TimeUs is the time per operation in microseconds (the ranks' times
	// combined as CollOptions.Average says).
	TimeUs float64 `json:"time_us"`
	// AlgBW and BusBW are GB/s (10^9 B/s) as nccl-tests computes them.
	AlgBW float64 `json:"algbw_gbs"`
	BusBW float64 `json:"busbw_gbs"`
	// Wrong counts the elements that differed from the expected result
	// over every rank; -1 when not checked.
	Wrong int64 `json:"wrong"`
}

// CollResult is one row of the nccl-tests table.
type CollResult struct {
	// Test is the operation ("allreduce", ...); Transport what carried it
	// ("rocev2/af_xdp", "tcp", "openmpi-tcp", "gloo"); Peer marks rows
	// measured by another library.
	Test      string `json:"test"`
	Transport string `json:"transport"`
	Peer      bool   `json:"peer,omitempty"`
	Ranks     int    `json:"ranks"`
	// Size is nccl-tests' size column (bytes), Count its count column
	// (elements per rank's parameter).
	Size  int64  `json:"size"`
	Count int64  `json:"count"`
	Type  string `json:"type"`
	Redop string `json:"redop"`
	Root  int    `json:"root"`
	// Iters is the timed iterations this size ran.
	Iters int `json:"iters"`
	// OutOfPlace and InPlace are nil where not measured (a peer that only
	// has one of them).
	OutOfPlace *CollTiming `json:"out_of_place,omitempty"`
	InPlace    *CollTiming `json:"in_place,omitempty"`
	// Algorithm is the algorithm the communicator chose or was forced to,
	// when known.
	Algorithm string `json:"algorithm,omitempty"`
}

// ErrCollOptions: CollOptions or the communicators do not describe a run.
var ErrCollOptions = errors.New("bench collective: invalid options")

func (o *CollOptions) setDefaults(n int) error {
	if o.MinBytes <= 0 {
		o.MinBytes = 8
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = o.MinBytes
	}
	if o.StepFactor <= 1 && o.StepBytes <= 0 {
		o.StepBytes = 1 << 20
	}
	if o.Iters <= 0 {
		o.Iters = DefaultCollIters
	}
	if o.Warmup == 0 {
		o.Warmup = DefaultCollWarmup
	}
	if o.MinIters <= 0 {
		o.MinIters = DefaultCollMinIters
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 2 * time.Minute
	}
	switch {
	case !collOpSupported(o.Op):
		return fmt.Errorf("%w: operation %v (want allreduce, allgather, broadcast, reducescatter, alltoall or reduce)", ErrCollOptions, o.Op)
	case !o.DType.Valid():
		return fmt.Errorf("%w: type %v", ErrCollOptions, o.DType)
	case !o.Reduce.Valid():
		return fmt.Errorf("%w: reduction %v", ErrCollOptions, o.Reduce)
	case o.MinBytes > o.MaxBytes:
		return fmt.Errorf("%w: minbytes %d > maxbytes %d", ErrCollOptions, o.MinBytes, o.MaxBytes)
	case o.MaxBytes > 1<<34:
		return fmt.Errorf("%w: maxbytes %d above 16 GiB", ErrCollOptions, o.MaxBytes)
	case o.Root < 0 || o.Root >= n:
		return fmt.Errorf("%w: root %d of %d ranks", ErrCollOptions, o.Root, n)
	case o.Check < 0:
		return fmt.Errorf("%w: check %d", ErrCollOptions, o.Check)
	case o.Average < CollTimeMax || o.Average > CollTimeRank0:
		return fmt.Errorf("%w: average mode %d", ErrCollOptions, o.Average)
	}
	return nil
}

func collOpSupported(k collective.OpKind) bool {
	switch k {
	case collective.OpAllReduce, collective.OpAllGather, collective.OpBroadcast,
		collective.OpReduceScatter, collective.OpAllToAll, collective.OpReduce:
		return true
	}
	return false
}

// CollSizes lists the sizes nccl-tests visits from o.MinBytes to
// o.MaxBytes (by StepFactor when > 1, else by StepBytes).
func CollSizes(o CollOptions) []int64 {
	if o.MinBytes <= 0 {
		o.MinBytes = 8
	}
	if o.MaxBytes < o.MinBytes {
		o.MaxBytes = o.MinBytes
	}
	if o.StepFactor <= 1 && o.StepBytes <= 0 {
		o.StepBytes = 1 << 20
	}
	var s []int64
	for size := o.MinBytes; size <= o.MaxBytes && len(s) < 1<<16; {
		s = append(s, size)
		if o.StepFactor > 1 {
			size *= o.StepFactor
		} else {
			size += o.StepBytes
		}
	}
	return s
}

// Collective runs o.Op over comms (one communicator per rank, all of one
// group, rank order) for every size: warm-up, then per size out of place
// and in place, each an untimed operation, Iters timed ones issued by
// every rank at once, and the data check. It returns one row per size.
// Every communicator must be used by nothing else meanwhile.
func Collective(ctx context.Context, comms []*collective.Communicator, o CollOptions) ([]CollResult, error) {
	n := len(comms)
	if n == 0 {
		return nil, fmt.Errorf("%w: no communicators", ErrCollOptions)
	}
	for r, c := range comms {
		if c == nil || c.Rank() != r || c.Size() != n {
			return nil, fmt.Errorf("%w: communicator %d is not rank %d of %d", ErrCollOptions, r, r, n)
		}
	}
	if err := o.setDefaults(n); err != nil {
		return nil, err
	}
	sizes := CollSizes(o)
	bufs := newCollBuffers(n, -1, collGeometryFor(o.Op, o.DType, n, sizes[len(sizes)-1]))
	return collSweep(ctx, &collRun{comms: comms, o: o, n: n, bufs: bufs}, o, n)
}

// collRunner runs a sweep's operations: every rank of a group in this
// process (collRun) or this process's rank of a job (rankRun).
type collRunner interface {
	// timed runs one untimed operation, lines the ranks up, runs iters
	// operations and returns the seconds per operation, the ranks
	// combined as CollOptions.Average says (every rank gets the same).
	timed(ctx context.Context, g collGeometry, inPlace bool, iters int) (float64, error)
	// check runs the operation once on the pattern of repetition rep and
	// returns the wrong elements over every rank (every rank the same).
	check(ctx context.Context, g collGeometry, inPlace bool, rep uint64) (int64, error)
}

// collSweep is nccl-tests' sweep over n ranks: warm-up at the largest and
// the smallest size, then per size out of place and in place, timed and
// checked; one row per size.
func collSweep(ctx context.Context, run collRunner, o CollOptions, n int) ([]CollResult, error) {
	sizes := CollSizes(o)
	// nccl-tests warms up at the largest and the smallest size first.
	for _, size := range []int64{sizes[len(sizes)-1], sizes[0]} {
		g := collGeometryFor(o.Op, o.DType, n, size)
		w := o.Warmup
		if o.IterBytes > 0 {
			w = min(w, CollItersFor(o, g.size()))
		}
		if w > 0 {
			if _, err := run.timed(ctx, g, false, w); err != nil {
				return nil, fmt.Errorf("bench %v: warm-up at %d B: %w", o.Op, size, err)
			}
		}
	}
	var rows []CollResult
	var rep uint64 // check repetitions so far: seeds the patterns
	for _, size := range sizes {
		g := collGeometryFor(o.Op, o.DType, n, size)
		row := CollResult{Test: o.Op.String(), Transport: o.Transport, Ranks: n, Size: g.size(), Count: g.param,
			Type: o.DType.String(), Redop: collRedopName(o.Op, o.Reduce), Root: collRootColumn(o.Op, o.Root), Iters: CollItersFor(o, g.size())}
		for _, inPlace := range []bool{false, true} {
			t, err := collMeasure(ctx, run, o, g, inPlace, row.Iters, &rep)
			if err != nil {
				return rows, fmt.Errorf("bench %v: %d B %s: %w", o.Op, size, placementName(inPlace), err)
			}
			if inPlace {
				row.InPlace = &t
			} else {
				row.OutOfPlace = &t
			}
		}
		rows = append(rows, row)
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "bench %v %s: %d B: %.2f us out of place, %.2f us in place (%d iterations)\n",
				o.Op, o.Transport, row.Size, row.OutOfPlace.TimeUs, row.InPlace.TimeUs, row.Iters)
		}
		if o.OnRow != nil {
			o.OnRow(row)
		}
	}
	return rows, nil
}

func placementName(inPlace bool) string {
	if inPlace {
		return "in place"
	}
	return "out of place"
}

// collRedopName is nccl-tests' redop column: "none" for the operations
// that do not reduce.
func collRedopName(k collective.OpKind, op collective.Op) string {
	switch k {
	case collective.OpAllReduce, collective.OpReduceScatter, collective.OpReduce:
		return op.String()
	}
	return "none"
}

// collRootColumn is nccl-tests' root column: -1 for unrooted operations.
func collRootColumn(k collective.OpKind, root int) int {
	if k == collective.OpBroadcast || k == collective.OpReduce {
		return root
	}
	return -1
}

// CollItersFor is the timed iterations Collective runs at size bytes:
// Iters, bounded by IterBytes/size (at least MinIters) when IterBytes is
// set. Peers measured next to Collective use it to run the same counts.
func CollItersFor(o CollOptions, size int64) int {
	it := o.Iters
	if it <= 0 {
		it = DefaultCollIters
	}
	minIt := o.MinIters
	if minIt <= 0 {
		minIt = DefaultCollMinIters
	}
	if o.IterBytes > 0 && size > 0 {
		it = min(it, max(minIt, int(min(o.IterBytes/size, 1<<30))))
	}
	return it
}

// collMeasure times one placement of one size and checks it.
func collMeasure(ctx context.Context, r collRunner, o CollOptions, g collGeometry, inPlace bool, iters int, rep *uint64) (CollTiming, error) {
	sec, err := r.timed(ctx, g, inPlace, iters)
	if err != nil {
		return CollTiming{}, err
	}
	algBW, busBW := CollBandwidth(o.Op, g.param*int64(g.ts), g.n, sec)
	t := CollTiming{TimeUs: sec * 1e6, AlgBW: algBW, BusBW: busBW, Wrong: -1}
	if o.Check > 0 {
		t.Wrong = 0
		for range o.Check {
			*rep++
			wrong, err := r.check(ctx, g, inPlace, *rep)
			if err != nil {
				return t, fmt.Errorf("check: %w", err)
			}
			t.Wrong += wrong
			if wrong != 0 {
				break
			}
		}
	}
	return t, nil
}
