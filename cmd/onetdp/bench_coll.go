package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/bench/collpeers"
	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/internal/par"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/stack"
	"github.com/opennetworks/onetdp/transport/rdmatransport"
	"github.com/opennetworks/onetdp/transport/tcp"
)

// collBenchFlags are nccl-tests' flags plus the lab, transport and peer
// choices.
type collBenchFlags struct {
	o          bench.CollOptions
	minBytes   string
	maxBytes   string
	stepBytes  string
	iterBytes  string
	dtype      string
	redop      string
	check      int
	blocking   int
	average    int
	hosts      int
	transports []string
	algo       string
	peers      bool
	json       bool
	labName    string
	linkMTU    int
	pathMTU    int
	busyPoll   bool
	debug      bool
	launcher   bool
	procs      bool
	repeat     int
	procArgs   []string // the flags every --procs rank repeats
}

// collTransports are the --transport names, all built by
// stack.OpenTransport: the software RoCEv2 engine over AF_XDP or over
// kernel UDP, kernel TCP, and adaptive (RoCEv2 on AF_XDP for small
// messages, TCP for large ones).
var collTransports = map[string]string{
	"rocev2/af_xdp": "rocev2/af_xdp", "af_xdp": "rocev2/af_xdp",
	"rocev2/udp": "rocev2/udp", "udp": "rocev2/udp",
	"tcp": "tcp", "adaptive": "adaptive",
}

// newBenchCollCmds returns allreduce, allgather, broadcast, reducescatter
// and alltoall.
func newBenchCollCmds() []*cobra.Command {
	var cmds []*cobra.Command
	for _, k := range []collective.OpKind{collective.OpAllReduce, collective.OpAllGather, collective.OpBroadcast,
		collective.OpReduceScatter, collective.OpAllToAll} {
		cmds = append(cmds, newBenchCollCmd(k))
	}
	return cmds
}

func newBenchCollCmd(k collective.OpKind) *cobra.Command {
	f := &collBenchFlags{o: bench.CollOptions{Op: k}}
	name := k.String()
	peers, peersFlag := "", ""
	if collpeers.Supported(k) {
		peersFlag = " --peers"
		peers = `

--peers then runs Open MPI (btl tcp; mpirun from h0 reaches the other hosts
through an rsh agent that enters their namespaces) and Gloo (torch.distributed
under /usr/bin/python3, or $ONET_GLOO_PYTHON) on the same hosts over the same
sizes (float, sum, root 0), prints their tables after ours, a side-by-side
view and the ratios against the targets: busbw >= 1.5x the best peer at 1..64 MiB, time at 8 B <= 0.5x Open MPI.`
	}
	c := &cobra.Command{
		Use:   name,
		Short: fmt.Sprintf("%s across lab hosts, one rank per host, as nccl-tests' %s_perf reports it", name, ncclTestName(k)),
		Long: fmt.Sprintf(`Brings up a lab of --hosts hosts (unless --lab names one), opens one rank per
host over every --transport in turn (all ranks live in this process, each
rank's sockets in its host's namespace; with --procs each rank is a process
of its own, as a launcher starts them), and runs %s from -b to -e bytes,
out of place and in place, as nccl-tests does: warm-up at the largest and the
smallest size, per size one untimed call and -n timed calls issued at once,
the slowest rank's time per call, algbw and busbw (GB/s), and with -c the
number of wrong elements of a checked call. Sizes above --iter-bytes/-n run
fewer iterations so that a sweep to 64 MiB ends in minutes. --repeat N runs
the whole sweep (every transport, and the peers) N times in turn and prints
each row's median time, with the range of the rounds' ratios: on a shared
machine one sweep's figures drift with the load of the moment.

Under a launcher (torchrun, mpirun; srun with --launcher) each process is one
rank: it opens its communicator from RANK/WORLD_SIZE (or OMPI_COMM_WORLD_*,
SLURM_*, ONET_*) and MASTER_ADDR/MASTER_PORT, as libonet does, and rank 0
prints the table.%s`, name, peers),
		Example: fmt.Sprintf(`  sudo onetdp bench %[1]s -b 8 -e 64M -f 2
  sudo onetdp bench %[1]s --hosts 4 --transport af_xdp,tcp -d bfloat16 -o max
  sudo onetdp bench %[1]s -b 1M -e 16M --algo %[1]s=ring --json
  sudo onetdp bench %[1]s --hosts 2 --transport tcp --procs   # one process per rank
  sudo onetdp bench %[1]s --hosts 2 --transport tcp --procs%[2]s --repeat 5   # medians of 5 alternating rounds
  # one rank per process, started by a launcher (rank 0 prints the table):
  torchrun --nnodes 2 --nproc-per-node 1 --master-addr 10.0.0.1 --no-python onetdp bench %[1]s -e 16M
  mpirun -n 4 -x MASTER_ADDR=10.0.0.1 onetdp bench %[1]s --transport tcp`, name, peersFlag),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.launcher || launchedEnv(os.LookupEnv) {
				ctx, stop := signal.NotifyContext(ctxOrBackground(cmd.Context()), os.Interrupt, syscall.SIGTERM)
				defer stop()
				return runCollLaunched(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), f, cmd.Flags().Changed("transport"))
			}
			f.procArgs = procsArgs(cmd.Flags())
			return runCollBench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fs := c.Flags()
	fs.SortFlags = false
	fs.StringVarP(&f.minBytes, "minbytes", "b", "8", "smallest size in bytes (K, M, G suffixes)")
	fs.StringVarP(&f.maxBytes, "maxbytes", "e", "64M", "largest size in bytes (K, M, G suffixes)")
	fs.Int64VarP(&f.o.StepFactor, "stepfactor", "f", 2, "multiply the size by this from row to row (1: add --stepbytes)")
	fs.StringVarP(&f.stepBytes, "stepbytes", "i", "1M", "add this to the size from row to row when --stepfactor is 1")
	fs.IntVarP(&f.o.Iters, "iters", "n", bench.DefaultCollIters, "timed iterations per size and placement")
	fs.IntVarP(&f.o.Warmup, "warmup_iters", "w", bench.DefaultCollWarmup, "warm-up iterations at the largest and the smallest size")
	fs.StringVarP(&f.dtype, "datatype", "d", "float", "element type: float, double, half, bfloat16, int8, uint8, int32, int64")
	fs.StringVarP(&f.redop, "op", "o", "sum", "reduction: sum, prod, min, max, avg")
	fs.IntVarP(&f.o.Root, "root", "r", 0, "root rank (broadcast)")
	fs.IntVarP(&f.check, "check", "c", 1, "checked calls per size and placement (0: no check, #wrong reads N/A)")
	fs.IntVarP(&f.blocking, "blocking", "z", 0, "1: wait for each call before issuing the next")
	fs.IntVarP(&f.average, "average", "a", 3, "combine the ranks' times: 0 rank 0, 1 average, 2 min, 3 max")
	fs.StringVar(&f.iterBytes, "iter-bytes", "256M", "bound the timed iterations of a size to this many bytes (at least 2); 0: always -n")
	fs.IntVar(&f.hosts, "hosts", 4, "lab hosts, one rank on each (2..16)")
	fs.StringSliceVar(&f.transports, "transport", []string{"rocev2/af_xdp", "tcp"},
		"transports to measure, in order: rocev2/af_xdp (software RoCEv2 over AF_XDP), rocev2/udp (over kernel UDP), tcp (kernel TCP), adaptive (rocev2/af_xdp below the measured crossover size, tcp above)")
	fs.StringVar(&f.algo, "algo", "", "force algorithms, ONET_ALGO syntax: allreduce=ring,allgather=bruck")
	fs.BoolVar(&f.debug, "debug", false, "print the communicator's calibration and algorithm choices on stderr")
	if collpeers.Supported(k) {
		fs.BoolVar(&f.peers, "peers", false, "also run Open MPI (btl tcp) and Gloo on the same hosts and sizes, and print the ratios")
	}
	fs.BoolVar(&f.procs, "procs", false, "run each rank as its own process, one per lab host, as a launcher would (this program with --launcher in the "+
		"host's namespace; one Go thread each), the way the peers run; rows are named <transport>"+procsSuffix)
	fs.IntVar(&f.repeat, "repeat", 1, "run every transport (and peer) this many rounds, alternating, and report each row's median: "+
		"one sweep's figures drift with the machine's load, and its ratios with them")
	fs.BoolVar(&f.json, "json", false, "print rows (and ratios) as JSON")
	fs.BoolVar(&f.launcher, "launcher", false, "be one rank of a job a launcher started (automatic when RANK, OMPI_COMM_WORLD_RANK or ONET_RANK is set; "+
		"with srun, say it): rank, size and MASTER_ADDR/MASTER_PORT from the environment, one --transport at a time (default tcp or ONET_TRANSPORT), one Go thread unless GOMAXPROCS is set, rank 0 prints")
	fs.StringVar(&f.labName, "lab", "", "run in this existing lab (its first --hosts hosts) instead of a fresh one")
	fs.IntVar(&f.linkMTU, "link-mtu", 3000, "MTU of the fresh lab's links")
	fs.IntVar(&f.pathMTU, "path-mtu", 2048, "RoCE path MTU of the rocev2 transports: 256..4096 (2048 needs --link-mtu >= 2100)")
	fs.BoolVar(&f.busyPoll, "busy-poll", true, "rocev2 over AF_XDP: a receiver spins on its rings before it parks where it is its process's only one (launched ranks; not the ranks of one process here); --busy-poll=false parks it at once")
	return c
}

// ncclTestName is nccl-tests' binary stem: all_reduce, all_gather, ...
func ncclTestName(k collective.OpKind) string {
	switch k {
	case collective.OpAllReduce:
		return "all_reduce"
	case collective.OpAllGather:
		return "all_gather"
	case collective.OpReduceScatter:
		return "reduce_scatter"
	case collective.OpAllToAll:
		return "alltoall"
	}
	return k.String()
}

// parseNCCLSize reads nccl-tests' sizes: a number with an optional K, M
// or G (powers of 1024).
func parseNCCLSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*float64(mult) > 1<<40 {
		return 0, fmt.Errorf("size %q: want bytes with an optional K, M or G", s)
	}
	return int64(v * float64(mult)), nil
}

// options resolves the flags into bench options and the transports.
func (f *collBenchFlags) options() (bench.CollOptions, []string, map[collective.OpKind]string, error) {
	o := f.o
	var err error
	if o.MinBytes, err = parseNCCLSize(f.minBytes); err != nil {
		return o, nil, nil, fmt.Errorf("-b: %w", err)
	}
	if o.MaxBytes, err = parseNCCLSize(f.maxBytes); err != nil {
		return o, nil, nil, fmt.Errorf("-e: %w", err)
	}
	if o.StepBytes, err = parseNCCLSize(f.stepBytes); err != nil {
		return o, nil, nil, fmt.Errorf("-i: %w", err)
	}
	if o.IterBytes, err = parseNCCLSize(f.iterBytes); err != nil {
		return o, nil, nil, fmt.Errorf("--iter-bytes: %w", err)
	}
	if o.MinBytes > o.MaxBytes {
		return o, nil, nil, fmt.Errorf("invalid sizes for 'minbytes' and 'maxbytes': %d > %d", o.MinBytes, o.MaxBytes)
	}
	if o.DType, err = collective.ParseDType(f.dtype); err != nil {
		return o, nil, nil, fmt.Errorf("-d: %w", err)
	}
	if o.Reduce, err = collective.ParseOp(f.redop); err != nil {
		return o, nil, nil, fmt.Errorf("-o: %w", err)
	}
	if o.Average, err = bench.CollTimeModeNCCL(f.average); err != nil {
		return o, nil, nil, fmt.Errorf("-a: %w", err)
	}
	if f.check < 0 || f.blocking < 0 || f.blocking > 1 || o.Iters < 1 || o.StepFactor < 1 {
		return o, nil, nil, fmt.Errorf("-c %d -z %d -n %d -f %d: want -c >= 0, -z 0 or 1, -n >= 1, -f >= 1", f.check, f.blocking, o.Iters, o.StepFactor)
	}
	o.Check, o.Blocking = f.check, f.blocking == 1
	if f.repeat < 1 || f.repeat > 100 {
		return o, nil, nil, fmt.Errorf("--repeat %d: want 1..100", f.repeat)
	}
	if f.hosts < 1 || f.hosts > 16 {
		return o, nil, nil, fmt.Errorf("--hosts %d: want 1..16", f.hosts)
	}
	if o.Root < 0 || o.Root >= f.hosts {
		return o, nil, nil, fmt.Errorf("-r %d: want a rank of 0..%d", o.Root, f.hosts-1)
	}
	if rdma.MTUFromBytes(f.pathMTU).Bytes() != f.pathMTU {
		return o, nil, nil, fmt.Errorf("--path-mtu %d: want 256, 512, 1024, 2048 or 4096", f.pathMTU)
	}
	var ts []string
	for _, t := range f.transports {
		name, ok := collTransports[t]
		if !ok {
			return o, nil, nil, fmt.Errorf("unknown transport %q (want rocev2/af_xdp, rocev2/udp, tcp or adaptive)", t)
		}
		ts = append(ts, name)
	}
	var algo map[collective.OpKind]string
	if f.algo != "" {
		if algo, err = collective.ParseAlgorithms(f.algo); err != nil {
			return o, nil, nil, fmt.Errorf("--algo: %w", err)
		}
	}
	return o, ts, algo, nil
}

// collReport is --json's document.
type collReport struct {
	Test  string `json:"test"`
	Ranks int    `json:"ranks"`
	// Rows are ours (every transport) then the peers'.
	Rows   []bench.CollResult `json:"rows"`
	Ratios []bench.CollRatio  `json:"ratios,omitempty"`
	// Headers are our runs' banners, one per transport.
	Headers []bench.CollHeader `json:"headers"`
	Notes   []string           `json:"notes,omitempty"`
	// Rounds is --repeat: with more than one, Rows are the medians of
	// RoundRows, every round's rows (ours and the peers', alternating).
	Rounds    int                  `json:"rounds"`
	RoundRows [][]bench.CollResult `json:"round_rows,omitempty"`
}

func runCollBench(ctx context.Context, stdout, progress io.Writer, f *collBenchFlags) error {
	o, transports, algo, err := f.options()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctxOrBackground(ctx), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, teardown, err := collLab(progress, f)
	if err != nil {
		return err
	}
	defer teardown()
	if len(l.Hosts) < f.hosts {
		return fmt.Errorf("lab %s has %d hosts, want at least %d", l.Name, len(l.Hosts), f.hosts)
	}
	hosts := make([]*lab.Host, f.hosts)
	for i := range hosts {
		hosts[i] = &l.Hosts[i]
	}
	r := collRounds{ctx: ctx, stdout: stdout, progress: progress, f: f, o: o, transports: transports, algo: algo, lab: l, hosts: hosts}
	return r.run()
}

// collLab returns the lab to run in: the named one, or a fresh one of
// --hosts hosts removed after.
func collLab(progress io.Writer, f *collBenchFlags) (*lab.Lab, func(), error) {
	if os.Geteuid() != 0 {
		return nil, nil, errors.New("bench needs root: it creates network namespaces and attaches XDP programs (try sudo)")
	}
	if f.labName != "" {
		l, err := lab.Status(f.labName)
		if err != nil {
			return nil, nil, err
		}
		return l, func() {}, nil
	}
	name := "coll-" + randomSuffix()
	hosts := max(f.hosts, 2)
	fmt.Fprintf(progress, "lab %s: %d hosts, MTU %d...\n", name, hosts, f.linkMTU)
	l, err := lab.Up(lab.Options{Name: name, Hosts: hosts, MTU: f.linkMTU})
	if err != nil {
		return nil, nil, err
	}
	return l, func() {
		if err := lab.Down(name); err != nil {
			fmt.Fprintf(progress, "lab %s: teardown: %v\n", name, err)
		}
	}, nil
}

// runCollOnTransport opens one rank per host over transport t, builds the
// communicators and runs the bench; the header goes out once the ranks are
// up, every row as soon as it is measured.
func runCollOnTransport(ctx context.Context, progress io.Writer, hosts []*lab.Host, t string, f *collBenchFlags,
	algo map[collective.OpKind]string, o bench.CollOptions, onHeader func(bench.CollHeader), onRow func(bench.CollResult)) (bench.CollHeader, error) {
	n := len(hosts)
	fmt.Fprintf(progress, "bench %v: %s, %d ranks, opening transports...\n", o.Op, t, n)
	ts, err := openCollTransports(ctx, hosts, t, f.pathMTU, f.busyPoll)
	if err != nil {
		return bench.CollHeader{}, err
	}
	copts := collective.Options{Algorithm: algo}
	if f.debug {
		copts.Debug = progress
	}
	comms := make([]*collective.Communicator, n)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	errs := par.Each(n, func(r int) error {
		var err error
		comms[r], err = collective.NewCommunicator(cctx, ts[r], copts)
		return err
	})
	cancel()
	defer func() {
		for r, c := range comms {
			if c != nil {
				c.Close() // closes the transport
			} else {
				ts[r].Close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return bench.CollHeader{}, fmt.Errorf("communicators: %w", err)
	}
	ranks := make([]bench.CollRank, n)
	for r, h := range hosts {
		name := t
		if d, ok := ts[r].(collective.Describer); ok {
			name = d.Info().Name
		}
		ranks[r] = bench.CollRank{Rank: r, Pid: os.Getpid(), Host: h.Name, Addr: h.Addr.Addr().String(), Transport: name}
	}
	header := o.HeaderFor(ranks)
	onHeader(header)
	o.OnRow = onRow
	_, err = bench.Collective(ctx, comms, o)
	return header, err
}

// openCollTransports opens rank r's transport inside hosts[r]'s namespace,
// every rank at once (each waits for the others to connect).
func openCollTransports(ctx context.Context, hosts []*lab.Host, t string, pathMTU int, busyPoll bool) ([]collective.Transport, error) {
	n := len(hosts)
	store := collective.NewMemStore()
	ts := make([]collective.Transport, n)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	errs := par.Each(n, func(r int) error {
		h := hosts[r]
		addr := h.Addr.Addr()
		kind, port := stack.TransportRoCEv2, dataplane.TransportAFXDP
		switch t {
		case "tcp":
			kind = stack.TransportTCP
		case "adaptive":
			kind = stack.TransportAdaptive
		case "rocev2/udp":
			port = dataplane.TransportUDP
		}
		err := h.Do(func() error {
			var err error
			ts[r], err = stack.OpenTransport(ctx, stack.TransportOptions{Kind: kind, Store: store,
				Rank: r, Size: n, Prefix: "bench-coll/" + t,
				RDMA: stack.RDMAOptions{Addr: addr, Transport: port}, NoBusyPoll: !busyPoll,
				RoCEv2: rdmatransport.Options{MTU: rdma.MTUFromBytes(pathMTU)},
				TCP:    tcp.Options{Timeout: time.Minute}})
			return err
		})
		if err != nil {
			cancel() // the others would wait for this rank
			return fmt.Errorf("rank %d on %s: %w", r, h.Name, err)
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		for _, tr := range ts {
			if tr != nil {
				tr.Close()
			}
		}
		return nil, err
	}
	return ts, nil
}

// runCollPeers runs Open MPI and Gloo on the first n hosts; a peer that
// cannot run becomes a note.
func runCollPeers(ctx context.Context, progress io.Writer, l *lab.Lab, n int, o bench.CollOptions) ([][]bench.CollResult, []string) {
	var out [][]bench.CollResult
	var notes []string
	po := o
	po.DType, po.Reduce, po.Root = collective.Float32, collective.Sum, 0
	if o.DType != collective.Float32 || o.Reduce != collective.Sum || o.Root != 0 {
		notes = append(notes, "the peers run float, sum, root 0 whatever -d, -o and -r say")
	}
	for _, p := range []struct {
		name string
		run  func(context.Context, collpeers.Options) ([]bench.CollResult, error)
	}{{collpeers.MPIName, collpeers.RunMPI}, {collpeers.GlooName, collpeers.RunGloo}} {
		rows, err := p.run(ctx, collpeers.Options{Coll: po, Lab: l, Ranks: n, Progress: progress})
		if err != nil {
			note := fmt.Sprintf("%s rows skipped: %v", p.name, err)
			fmt.Fprintf(progress, "peers: %s\n", note)
			notes = append(notes, note)
			continue
		}
		out = append(out, rows)
	}
	return out, notes
}
