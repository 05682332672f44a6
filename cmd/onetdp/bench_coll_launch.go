package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

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
	if procs := stack.LaunchedProcs(); f.debug {
		fmt.Fprintf(progress, "bench: GOMAXPROCS %d (launched rank; set GOMAXPROCS to choose)\n", procs)
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

// collLaunchedSweep runs every size on this rank (bench.CollectiveRank);
// rank 0 prints the header and the rows (unless --json).
func collLaunchedSweep(ctx context.Context, stdout io.Writer, c *stack.Comm, f *collBenchFlags, o bench.CollOptions) ([]bench.CollResult, bench.CollHeader, error) {
	n, me := c.Size(), c.Rank()
	if o.Root < 0 || o.Root >= n {
		return nil, bench.CollHeader{}, fmt.Errorf("-r %d: want a rank of 0..%d", o.Root, n-1)
	}
	ranks, err := collRanks(ctx, c)
	if err != nil {
		return nil, bench.CollHeader{}, err
	}
	header := o.HeaderFor(ranks)
	print := me == 0 && !f.json
	if print {
		bench.WriteCollHeader(stdout, header)
		o.OnRow = func(row bench.CollResult) { bench.WriteCollRow(stdout, row) }
	}
	rows, err := bench.CollectiveRank(ctx, c.Communicator, o)
	if err != nil {
		return rows, header, err
	}
	if print {
		bench.WriteCollFooter(stdout, rows)
		fmt.Fprintln(stdout)
	}
	return rows, header, nil
}
