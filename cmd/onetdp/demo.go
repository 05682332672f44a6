package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/dataplane"
)

func newDemoCmd() *cobra.Command {
	var env benchEnv
	var quick bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "Labs of network namespaces: AF_XDP against kernel UDP, RoCEv2, a 4-rank allreduce, incast",
		Long: `The main job on an embedded default, in labs of network namespaces on this host:

 1. two hosts joined by a veth pair, the onetdp XDP dispatcher on both ends:
    AF_XDP ports against kernel UDP ports for 64 B latency (ping-pong) and 64 B
    packet rate, and the dispatcher's per-class counters from the receiver;
 2. the software RoCEv2 engine on both transports: RDMA WRITE bandwidth and
    SEND latency as perftest reports them;
 3. four hosts on a bridge, one rank each: allreduce over RoCEv2 on AF_XDP and
    over kernel TCP, as nccl-tests reports it (checked results);
 4. incast: three hosts RDMA WRITE into the fourth through a TBF bottleneck with
    the in-kernel ECN marker in front, without flow control, with DCQCN and
    with the delay-based controller.

Everything is removed afterwards. --quick skips the incast.`,
		Example: "  sudo onetdp demo\n  sudo make demo",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd, env, quick)
		},
	}
	env.flags(c)
	c.Flags().BoolVar(&quick, "quick", false, "skip the incast experiment")
	return c
}

// demoStep is one bench the demo runs through its cobra command.
type demoStep struct {
	title string
	cmd   *cobra.Command
	args  []string
}

func runDemoSteps(cmd *cobra.Command, steps []demoStep) error {
	for _, run := range steps {
		fmt.Fprintf(cmd.OutOrStdout(), "\n== %s\n", run.title)
		run.cmd.SetArgs(run.args)
		run.cmd.SetOut(cmd.OutOrStdout())
		run.cmd.SetErr(cmd.ErrOrStderr())
		if err := run.cmd.ExecuteContext(cmd.Context()); err != nil {
			return fmt.Errorf("%s: %w", run.title, err)
		}
	}
	return nil
}

func runDemo(cmd *cobra.Command, env benchEnv, quick bool) error {
	out, progress := cmd.OutOrStdout(), cmd.ErrOrStderr()
	// MTU 3000: 64 B benches do not care; RoCEv2 gets a 2048-byte path MTU
	// (native XDP on veth takes links up to 3506).
	if !cmd.Flags().Changed("mtu") {
		env.mtu = 3000
	}
	l, teardown, err := env.lab(progress)
	if err != nil {
		return err
	}
	defer func() { teardown() }() // teardown is replaced once the 2-host steps are done
	env.labName = l.Name
	fmt.Fprintf(out, "== lab %s: %s %v <-> %s %v (veth pair, MTU %d)\n\n",
		l.Name, l.Hosts[0].Name, l.Hosts[0].Addr.Addr(), l.Hosts[1].Name, l.Hosts[1].Addr.Addr(), l.Hosts[0].MTU)

	lat, err := runLat(cmd.Context(), progress, env, bench.LatOptions{Size: 64, Iterations: 20_000})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "== 64 B one-way latency (ping-pong RTT/2)")
	bench.WriteLatTable(out, lat)

	var counters [bpf.NumClasses]bpf.ClassCounters
	var counterErr error
	var xdpReason string
	env.inspect = func(t string, _, b dataplane.Port) {
		if x, ok := b.(*dataplane.AFXDPPort); ok {
			counters, counterErr = x.Dispatcher().Counters()
			xdpReason = x.Caps().Reason
		}
	}
	pps, err := runPPS(cmd.Context(), progress, env, bench.PPSOptions{Size: 64, Count: 2_000_000, Duration: 3 * time.Second})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\n== 64 B one-way packet rate")
	bench.WritePPSTable(out, pps)

	if xdpReason != "" {
		fmt.Fprintf(out, "\n== XDP dispatcher on %s after the AF_XDP packet-rate run (%s)\n", l.Hosts[1].Name, xdpReason)
		if counterErr != nil {
			fmt.Fprintf(out, "counters unavailable: %v\n", counterErr)
		} else {
			writeCounters(out, counters)
		}
	}
	fmt.Fprintln(out, "\n== AF_XDP against kernel UDP, this run")
	writeRatios(out, lat, pps)

	// RoCEv2: the software RC engine on both transports, as perftest
	// measures it, in the same lab.
	lab2 := []string{"--lab", l.Name, "--transport", "af_xdp,udp"}
	if err := runDemoSteps(cmd, []demoStep{
		{"RoCEv2 RDMA WRITE bandwidth (ib_write_bw), 64 KiB", newBenchRDMACmd(bench.RDMAWrite, true), append([]string{"-s", "65536", "-n", "2000"}, lab2...)},
		{"RoCEv2 SEND latency (ib_send_lat), 64 B", newBenchRDMACmd(bench.RDMASend, false), append([]string{"-s", "64", "-n", "5000"}, lab2...)},
	}); err != nil {
		return err
	}
	teardown() // the next steps build their own labs
	teardown = func() {}

	steps := []demoStep{{"allreduce, 4 ranks in 4 lab hosts (nccl-tests columns; busbw = algbw x 2(n-1)/n)", newBenchCollCmd(collective.OpAllReduce),
		[]string{"--hosts", "4", "-b", "8", "-e", "16M", "-f", "8", "-n", "10", "--transport", "rocev2/af_xdp,tcp"}}}
	if !quick {
		steps = append(steps, demoStep{"incast: h1..h3 RDMA WRITE into h0 through a 500 Mbit/s TBF and the ECN marker",
			newBenchIncastCmd(), []string{"--duration", "3s"}})
	}
	return runDemoSteps(cmd, steps)
}

func writeCounters(w io.Writer, c [bpf.NumClasses]bpf.ClassCounters) {
	fmt.Fprintf(w, "%-8s %12s %14s %8s %14s %10s %11s\n", "class", "packets", "bytes", "ce", "redirect_fail", "parse_err", "fault_drop")
	for i, v := range c {
		fmt.Fprintf(w, "%-8s %12d %14d %8d %14d %10d %11d\n", bpf.Class(i), v.Packets, v.Bytes, v.CE, v.RedirectFail, v.ParseErr, v.FaultDrop)
	}
}

// writeRatios prints the AF_XDP row against every other row of the run.
func writeRatios(w io.Writer, lat []bench.LatResult, pps []bench.PPSResult) {
	var xl *bench.LatResult
	var xp *bench.PPSResult
	for i := range lat {
		if lat[i].Transport == "af_xdp" {
			xl = &lat[i]
		}
	}
	for i := range pps {
		if pps[i].Transport == "af_xdp" {
			xp = &pps[i]
		}
	}
	for _, l := range lat {
		if xl != nil && l.Transport != "af_xdp" && l.Typical > 0 {
			fmt.Fprintf(w, "64 B latency t_typical: af_xdp = %.2fx %s (target <= 0.5x kernel UDP)\n", float64(xl.Typical)/float64(l.Typical), l.Transport)
		}
	}
	for _, p := range pps {
		if xp != nil && p.Transport != "af_xdp" && p.PPS > 0 {
			target := "(target >= 4x kernel UDP)"
			if p.Transport == "udp-gso" {
				// UDP_SEGMENT/UDP_GRO move 64 B datagrams as 64 KiB
				// super-frames: a datagram rate, not a frame rate.
				target = "(datagrams, not frames: GSO/GRO coalesce them)"
			}
			fmt.Fprintf(w, "64 B packet rate:       af_xdp = %.2fx %s %s\n", xp.PPS/p.PPS, p.Transport, target)
		}
	}
}
