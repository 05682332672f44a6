package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/stack"
	"github.com/opennetworks/onetdp/transport/rdmatransport"
)

// launchedEnv reports whether this process looks like one rank of a job
// started by torchrun, mpirun or onet's own variables (srun only with
// --launcher: an salloc shell carries Slurm's variables too).
func launchedEnv(lookup func(string) (string, bool)) bool {
	for _, k := range []string{"ONET_RANK", "RANK", "OMPI_COMM_WORLD_RANK"} {
		if v, ok := lookup(k); ok && v != "" {
			return true
		}
	}
	return false
}

// launchedTransports resolves --transport for launcher mode: the flag when
// given, else ONET_TRANSPORT, else tcp.
func launchedTransports(f *collBenchFlags, changed bool, lookup func(string) (string, bool)) ([]string, error) {
	names := f.transports
	if !changed {
		names = []string{"tcp"}
		if v, ok := lookup(stack.EnvTransport); ok && v != "" {
			names = []string{v}
		}
	}
	var ts []string
	for _, t := range names {
		if t == "rocev2" {
			t = "rocev2/af_xdp"
		}
		name, ok := collTransports[t]
		if !ok {
			return nil, fmt.Errorf("unknown transport %q (want rocev2/af_xdp, rocev2/udp, tcp or adaptive)", t)
		}
		ts = append(ts, name)
	}
	return ts, nil
}

// commOptionsFor maps a --transport name onto OpenCommunicator's options.
func commOptionsFor(t string, f *collBenchFlags, algo map[collective.OpKind]string, progress io.Writer) stack.CommOptions {
	o := stack.CommOptions{Rank: -1, Size: -1, Algorithm: algo, Prefix: "bench-coll/" + t,
		RoCEv2: rdmatransport.Options{MTU: rdma.MTUFromBytes(f.pathMTU)}, NoBusyPoll: !f.busyPoll}
	switch t {
	case "tcp":
		o.Transport = stack.TransportTCP
	case "adaptive":
		o.Transport, o.PortTransport = stack.TransportAdaptive, dataplane.TransportAFXDP
	case "rocev2/udp":
		o.Transport, o.PortTransport = stack.TransportRoCEv2, dataplane.TransportUDP
	default:
		o.Transport, o.PortTransport = stack.TransportRoCEv2, dataplane.TransportAFXDP
	}
	if f.debug {
		o.Collective.Debug = progress
	}
	return o
}

// runCollLaunched is launcher mode: this process is one rank of a job
// (torchrun, mpirun, srun, or ONET_RANK/ONET_SIZE), opens its communicator
// through stack.OpenCommunicator and runs the sweep with the other ranks;
// rank 0 prints the table.
func runCollLaunched(ctx context.Context, stdout, progress io.Writer, f *collBenchFlags, transportChanged bool) error {
	f.hosts = 16 // for options(); the job's size is checked once the communicator is open
	o, _, algo, err := f.options()
	if err != nil {
		return err
	}
	transports, err := launchedTransports(f, transportChanged, os.LookupEnv)
	if err != nil {
		return err
	}
	var rep collReport
	rep.Test = o.Op.String()
	for _, t := range transports {
		c, err := stack.OpenCommunicator(ctx, commOptionsFor(t, f, algo, progress))
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		to := o
		to.Transport = t
		rows, header, err := collLaunchedSweep(ctx, stdout, c, f, to)
		cerr := c.Close()
		if err != nil {
			return fmt.Errorf("%s, rank %d: %w", t, c.Rank(), err)
		}
		if cerr != nil {
			return fmt.Errorf("%s, rank %d: close: %w", t, c.Rank(), cerr)
		}
		rep.Ranks = len(header.Ranks)
		rep.Headers = append(rep.Headers, header)
		rep.Rows = append(rep.Rows, rows...)
		if c.Rank() != 0 {
			return nil // only rank 0 reports; the other ranks ran every transport with it
		}
	}
	if f.json {
		return writeJSON(stdout, rep)
	}
	if len(transports) > 1 {
		bench.WriteCollSideBySide(stdout, rep.Rows)
	}
	return nil
}

// rankRecord is one rank's banner line, exchanged by an allgather.
const rankRecord = 256

func encodeRank(r bench.CollRank) []byte {
	b, _ := json.Marshal(r)
	out := make([]byte, rankRecord)
	if len(b) > rankRecord {
		b, _ = json.Marshal(bench.CollRank{Rank: r.Rank, Pid: r.Pid})
	}
	copy(out, b)
	return out
}

// collRanks gathers every rank's banner line.
func collRanks(ctx context.Context, c *stack.Comm) ([]bench.CollRank, error) {
	host, _ := os.Hostname()
	me := encodeRank(bench.CollRank{Rank: c.Rank(), Pid: os.Getpid(), Host: host, Addr: c.Addr.String(), Transport: c.TransportName})
	all := make([]byte, rankRecord*c.Size())
	if err := c.AllGather(ctx, me, all); err != nil {
		return nil, fmt.Errorf("exchange rank descriptions: %w", err)
	}
	ranks := make([]bench.CollRank, c.Size())
	for r := range ranks {
		rec := all[r*rankRecord : (r+1)*rankRecord]
		if err := json.Unmarshal([]byte(strings.TrimRight(string(rec), "\x00")), &ranks[r]); err != nil {
			return nil, fmt.Errorf("rank %d's description: %w", r, err)
		}
	}
	return ranks, nil
}

// collLaunchedSweep runs every size on this rank; rank 0 prints the header
// and the rows (unless --json).
func collLaunchedSweep(ctx context.Context, stdout io.Writer, c *stack.Comm, f *collBenchFlags, o bench.CollOptions) ([]bench.CollResult, bench.CollHeader, error) {
	n, me := c.Size(), c.Rank()
	if o.Root < 0 || o.Root >= n {
		return nil, bench.CollHeader{}, fmt.Errorf("-r %d: want a rank of 0..%d", o.Root, n-1)
	}
	if o.Iters <= 0 {
		o.Iters = bench.DefaultCollIters
	}
	if o.Warmup == 0 {
		o.Warmup = bench.DefaultCollWarmup
	}
	ranks, err := collRanks(ctx, c)
	if err != nil {
		return nil, bench.CollHeader{}, err
	}
	header := o.HeaderFor(ranks)
	print := me == 0 && !f.json
	if print {
		bench.WriteCollHeader(stdout, header)
	}
	sizes := bench.CollSizes(o)
	b := newLaunchedBufs(o.Op, o.DType, n, me, sizes[len(sizes)-1])
	run := &launchedRun{c: c, o: o, b: b}
	for _, size := range []int64{sizes[len(sizes)-1], sizes[0]} {
		g := geometryFor(o.Op, o.DType, n, size)
		if w := min(o.Warmup, bench.CollItersFor(o, g.size())); w > 0 {
			if _, err := run.timed(ctx, g, false, w); err != nil {
				return nil, header, fmt.Errorf("warm-up at %d B: %w", size, err)
			}
		}
	}
	var rows []bench.CollResult
	for _, size := range sizes {
		g := geometryFor(o.Op, o.DType, n, size)
		row := bench.CollResult{Test: o.Op.String(), Transport: o.Transport, Ranks: n, Size: g.size(), Count: g.param,
			Type: o.DType.String(), Redop: redopColumn(o.Op, o.Reduce), Root: rootColumn(o.Op, o.Root), Iters: bench.CollItersFor(o, g.size())}
		for _, inPlace := range []bool{false, true} {
			tm, err := run.measure(ctx, g, inPlace, row.Iters)
			if err != nil {
				return rows, header, fmt.Errorf("%d B %s: %w", size, map[bool]string{false: "out of place", true: "in place"}[inPlace], err)
			}
			if inPlace {
				row.InPlace = &tm
			} else {
				row.OutOfPlace = &tm
			}
		}
		rows = append(rows, row)
		if print {
			bench.WriteCollRow(stdout, row)
		}
	}
	if print {
		bench.WriteCollFooter(stdout, rows)
		fmt.Fprintln(stdout)
	}
	return rows, header, nil
}

func redopColumn(k collective.OpKind, op collective.Op) string {
	if k == collective.OpAllReduce || k == collective.OpReduceScatter {
		return op.String()
	}
	return "none"
}

func rootColumn(k collective.OpKind, root int) int {
	if k == collective.OpBroadcast {
		return root
	}
	return -1
}

// launchedRun is one rank's side of a sweep.
type launchedRun struct {
	c   *stack.Comm
	o   bench.CollOptions
	b   *launchedBufs
	rep uint64
}

// measure times and checks one placement of one size; every rank returns
// the same combined timing.
func (r *launchedRun) measure(ctx context.Context, g geometry, inPlace bool, iters int) (bench.CollTiming, error) {
	sec, err := r.timed(ctx, g, inPlace, iters)
	if err != nil {
		return bench.CollTiming{}, err
	}
	algBW, busBW := bench.CollBandwidth(r.o.Op, g.param*int64(g.ts), g.n, sec)
	t := bench.CollTiming{TimeUs: sec * 1e6, AlgBW: algBW, BusBW: busBW, Wrong: -1}
	if r.o.Check <= 0 {
		return t, nil
	}
	var wrong int64
	for range r.o.Check {
		r.rep++
		w, err := r.check(ctx, g, inPlace, r.rep)
		if err != nil {
			return t, fmt.Errorf("check: %w", err)
		}
		if wrong += w; wrong != 0 {
			break // every rank sees the same total, so every rank stops here
		}
	}
	t.Wrong = wrong
	return t, nil
}

// timed runs one untimed operation, a barrier, then iters operations, and
// combines the ranks' seconds per operation as -a says.
func (r *launchedRun) timed(ctx context.Context, g geometry, inPlace bool, iters int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	op := r.b.op(r.c.Communicator, r.o, g, inPlace)
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
	if r.o.Blocking {
		for range iters {
			h, err := op(collective.Inline(ctx))
			if err == nil {
				err = h.Wait(ctx)
			}
			if err != nil {
				return 0, err
			}
		}
	} else {
		hs := make([]*collective.Handle, 0, iters)
		for range iters {
			h, err := op(ctx)
			if err != nil {
				return 0, err
			}
			hs = append(hs, h)
		}
		for _, h := range hs {
			if err := h.Wait(ctx); err != nil {
				return 0, err
			}
		}
	}
	sec := time.Since(t0).Seconds() / float64(max(iters, 1))
	return combineLaunched(ctx, r.c, sec, r.o.Average)
}

// combineLaunched combines every rank's seconds: the slowest (max), the
// fastest (min), the mean or rank 0's.
func combineLaunched(ctx context.Context, c *stack.Comm, sec float64, mode bench.CollTimeMode) (float64, error) {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, math.Float64bits(sec))
	var err error
	switch mode {
	case bench.CollTimeMin:
		err = c.AllReduce(ctx, nil, b, collective.Float64, collective.Min)
	case bench.CollTimeAvg:
		err = c.AllReduce(ctx, nil, b, collective.Float64, collective.Avg)
	case bench.CollTimeRank0:
		err = c.Broadcast(ctx, nil, b, 0)
	default:
		err = c.AllReduce(ctx, nil, b, collective.Float64, collective.Max)
	}
	if err != nil {
		return 0, fmt.Errorf("combine times: %w", err)
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
}
