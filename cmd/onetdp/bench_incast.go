package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/opennetworks/onetdp/bench/incastlab"
	"github.com/opennetworks/onetdp/flowctl"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/rdma"
)

type incastFlags struct {
	senders            int
	rate, buffer, size string
	kmin, kmax         string
	pmax               float64
	markerPercent      float64
	noMarker           bool
	linkMTU, pathMTU   int
	duration           time.Duration
	depth              int
	transport          string
	preset, dcqcn      string
	delayInit          string
	lineRate           string
	modes              []string
	labName            string
	busyPoll, asJSON   bool
	xdpMode            string
	delayTarget        time.Duration
	qpTimeout          uint8
}

func newBenchIncastCmd() *cobra.Command {
	var f incastFlags
	c := &cobra.Command{
		Use:   "incast",
		Short: "K senders into one receiver through a lab bottleneck, flow control off and on",
		Long: `Build a lab of --senders+1 hosts on a bridge with a TBF bottleneck (--rate,
--buffer) on the switch port into h0, attach the in-kernel ECN marker (a phantom
queue drained at --marker-rate % of the bottleneck, RED marking between --kmin
and --kmax) in front of it, and let h1..hK RDMA WRITE to h0 over RoCEv2 at once,
once per --modes entry, each on fresh engines: off (no flow control: the
engine's packet window only), dcqcn (the marker's CE marks reach the senders as
CNPs) and delay (a Swift-style controller on RTT, for paths where nothing marks).

Prints per flow: goodput, retransmissions, timeouts, sequence NAKs, CNPs received
and the controller's allowed rate (mean over the run and at its end); per run:
aggregate goodput, utilization of the bottleneck, Jain's fairness index, the
TBF's drops, the marker's CE marks and the receiver's CNPs. Needs root.

The default DCQCN parameters are the "lab" preset: the DCQCN paper's algorithm
with its timers scaled to a software path (see 'onetdp sim --dcqcn-preset').
NVIDIA's firmware defaults (--dcqcn-preset nvidia) are built for µs round trips
and barely slow down here.`,
		Example: `  sudo onetdp bench incast                          # 3 senders, 500 Mbit/s: off, dcqcn, delay
  sudo onetdp bench incast --senders 6 --rate 1gbit --duration 5s --json
  sudo onetdp bench incast --modes off,delay --delay-target 2ms
  sudo onetdp bench incast --dcqcn-preset nvidia --dcqcn "rpg_ai_rate=10" --modes dcqcn`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runIncast(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), &f)
		},
	}
	fl := c.Flags()
	fl.IntVar(&f.senders, "senders", incastlab.DefaultSenders, "number of senders (hosts h1..hK)")
	fl.StringVar(&f.rate, "rate", lab.FormatRate(incastlab.DefaultBottleneckBps), "bottleneck rate into h0 (tc units: 500mbit, 1gbit)")
	fl.StringVar(&f.buffer, "buffer", lab.FormatSize(incastlab.DefaultBufferBytes), "bottleneck queue, tail drop (k = 1024)")
	fl.StringVar(&f.kmin, "kmin", lab.FormatSize(incastlab.DefaultKminBytes), "ECN marking starts at this phantom-queue depth")
	fl.StringVar(&f.kmax, "kmax", lab.FormatSize(incastlab.DefaultKmaxBytes), "ECN marks every ECT packet from this phantom-queue depth on")
	fl.Float64Var(&f.pmax, "pmax", float64(incastlab.DefaultPmaxPPM)/1e6, "marking probability just below kmax")
	fl.Float64Var(&f.markerPercent, "marker-rate", incastlab.DefaultMarkerPercent, "phantom queue drain rate, % of the bottleneck")
	fl.BoolVar(&f.noMarker, "no-marker", false, "no ECN marker: only the TBF's drops signal congestion")
	fl.IntVar(&f.linkMTU, "mtu", incastlab.DefaultLinkMTU, "MTU of the lab's links")
	fl.IntVar(&f.pathMTU, "path-mtu", 2048, "RoCEv2 path MTU: 256, 512, 1024, 2048 or 4096")
	fl.StringVar(&f.size, "size", "64k", "RDMA WRITE size")
	fl.DurationVar(&f.duration, "duration", 3*time.Second, "length of each run")
	fl.IntVar(&f.depth, "tx-depth", 16, "outstanding WRITEs per sender")
	fl.Uint8Var(&f.qpTimeout, "qp-timeout", 14, "ACK timeout exponent: 4.096 µs × 2^n")
	fl.StringVar(&f.transport, "transport", "af_xdp", "port of every engine: af_xdp, udp or udp-gso")
	fl.StringVar(&f.preset, "dcqcn-preset", "lab", "DCQCN parameters --dcqcn applies over: "+strings.Join(flowctl.DCQCNPresets, ", "))
	fl.StringVar(&f.dcqcn, "dcqcn", "", `DCQCN parameters in NVIDIA's names, e.g. "rpg_ai_rate=10,rpg_time_reset=500"`)
	fl.StringVar(&f.lineRate, "line-rate", lab.FormatRate(uint64(incastlab.DefaultLineRate)), "each sender's NIC rate: where DCQCN starts and its cap")
	fl.DurationVar(&f.delayTarget, "delay-target", incastlab.DefaultDelayTarget, "target RTT of the delay controller")
	fl.StringVar(&f.delayInit, "delay-init-window", lab.FormatSize(incastlab.DefaultDelayInitWindow), "first window of the delay controller")
	fl.StringSliceVar(&f.modes, "modes", []string{incastlab.ModeOff, incastlab.ModeDCQCN, incastlab.ModeDelay}, "runs, in order: off, dcqcn, delay")
	fl.StringVar(&f.labName, "lab", "", "run in this existing lab (h0 receives; needs a bottleneck into h0) instead of a fresh one")
	fl.BoolVar(&f.busyPoll, "busy-poll", false, "AF_XDP receivers spin on their rings (4+ engines share the CPUs: off by default)")
	fl.StringVar(&f.xdpMode, "xdp-mode", "auto", "XDP attach mode: auto, native, generic")
	fl.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	return c
}

func (f *incastFlags) options(progress io.Writer) (incastlab.Options, error) {
	o := incastlab.Options{Senders: f.senders, LinkMTU: f.linkMTU, Modes: f.modes, NoMarker: f.noMarker, Progress: progress}
	var err error
	if o.BottleneckBps, err = lab.ParseRate(f.rate); err != nil {
		return o, fmt.Errorf("--rate: %w", err)
	}
	sizes := []struct {
		flag, val string
		dst       *uint32
	}{{"--buffer", f.buffer, &o.BufferBytes}, {"--kmin", f.kmin, &o.Marker.KminBytes}, {"--kmax", f.kmax, &o.Marker.KmaxBytes}}
	for _, s := range sizes {
		v, err := lab.ParseSize(s.val)
		if err != nil || v > 1<<31 {
			return o, fmt.Errorf("%s %q: want a size up to 2g", s.flag, s.val)
		}
		*s.dst = uint32(v)
	}
	if !(f.pmax > 0 && f.pmax <= 1) {
		return o, fmt.Errorf("--pmax %v: want 0 < pmax <= 1", f.pmax)
	}
	o.Marker.PmaxPPM = uint32(f.pmax * 1e6)
	if !(f.markerPercent > 0 && f.markerPercent <= 100) {
		return o, fmt.Errorf("--marker-rate %v: want a percentage in (0, 100]", f.markerPercent)
	}
	o.Marker.RateBps = uint64(float64(o.BottleneckBps) * f.markerPercent / 100)
	size, err := lab.ParseSize(f.size)
	if err != nil || size == 0 || size > 1<<30 {
		return o, fmt.Errorf("--size %q: want 1 B..1 GiB", f.size)
	}
	o.Incast.Size, o.Incast.Duration, o.Incast.TxDepth, o.Incast.QPTimeout = int(size), f.duration, f.depth, f.qpTimeout
	if f.duration <= 0 || f.depth < 1 {
		return o, fmt.Errorf("--duration %v and --tx-depth %d: want both positive", f.duration, f.depth)
	}
	o.Incast.MTU = rdma.MTUFromBytes(f.pathMTU)
	if o.Incast.MTU.Bytes() != f.pathMTU {
		return o, fmt.Errorf("--path-mtu %d: want 256, 512, 1024, 2048 or 4096", f.pathMTU)
	}
	lr, err := lab.ParseRate(f.lineRate)
	if err != nil {
		return o, fmt.Errorf("--line-rate: %w", err)
	}
	o.LineRate = float64(lr)
	if o.DCQCN, err = dcqcnParams(f.preset, f.dcqcn); err != nil {
		return o, err
	}
	iw, err := lab.ParseSize(f.delayInit)
	if err != nil || iw == 0 || iw > 1<<30 {
		return o, fmt.Errorf("--delay-init-window %q: want 1 B..1 GiB", f.delayInit)
	}
	if f.delayTarget <= 0 {
		return o, fmt.Errorf("--delay-target %v: want a positive duration", f.delayTarget)
	}
	o.Delay = flowctl.DelayOptions{TargetDelay: f.delayTarget, InitWindow: float64(iw)}
	for _, m := range f.modes {
		if m != incastlab.ModeOff && m != incastlab.ModeDCQCN && m != incastlab.ModeDelay {
			return o, fmt.Errorf("--modes %q: want off, dcqcn or delay", m)
		}
	}
	env := benchEnv{busyPoll: f.busyPoll, xdpMode: f.xdpMode}
	if o.Port, err = portOptions(f.transport, netip.AddrPort{}, env); err != nil {
		return o, err
	}
	return o, nil
}

func runIncast(ctx context.Context, stdout, progress io.Writer, f *incastFlags) error {
	o, err := f.options(progress)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("bench incast needs root: it creates network namespaces and attaches XDP and tc programs (try sudo)")
	}
	if f.labName != "" {
		if o.Lab, err = lab.Status(f.labName); err != nil {
			return err
		}
	} else {
		o.LabName = "incast-" + randomSuffix()
	}
	ctx, stop := signal.NotifyContext(ctxOrBackground(ctx), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := incastlab.Run(ctx, o)
	if err != nil {
		return err
	}
	if f.asJSON {
		return writeJSON(stdout, rep)
	}
	return incastlab.WriteReport(stdout, rep)
}
