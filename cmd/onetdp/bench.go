package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/lab"
)

// defaultPort is onetdp's own UDP port, programmed into the XDP dispatcher.
const defaultPort = 4792

// benchEnv is what every lab-based bench command shares: the lab to run in,
// which transports to compare, and how to print.
type benchEnv struct {
	labName    string
	mtu        int
	transports []string
	busyPoll   bool
	xdpMode    string
	port       uint16
	json       bool
	// inspect, when set, sees both ports after each measurement, before
	// they close (the demo reads the dispatcher's counters there).
	inspect func(transport string, a, b dataplane.Port)
}

func (e *benchEnv) flags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&e.labName, "lab", "", "run in this existing lab (hosts h0 and h1) instead of a fresh 2-host lab")
	f.IntVar(&e.mtu, "mtu", 1500, "MTU of the fresh lab's links")
	f.StringSliceVar(&e.transports, "transport", []string{"af_xdp", "udp", "udp-gso"},
		"transports to measure, in order: af_xdp, udp (kernel sendmmsg/recvmmsg, as iperf3 and sockperf use it), udp-gso (kernel UDP with UDP_SEGMENT/UDP_GRO)")
	f.BoolVar(&e.busyPoll, "busy-poll", true, "AF_XDP receivers spin on their rings instead of parking in the netpoller")
	f.StringVar(&e.xdpMode, "xdp-mode", "auto", "XDP attach mode of the dispatcher: auto (native, else generic), native, generic")
	f.Uint16Var(&e.port, "port", defaultPort, "UDP port of the bench traffic")
	f.BoolVar(&e.json, "json", false, "print results as JSON")
}

func newBenchCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure in a lab: packets, RoCEv2 (perftest), collectives (nccl-tests), incast",
		Long: `Each bench brings up a lab of network namespaces (unless --lab names one), runs
the same measurement over every transport in --transport in one run, prints the
results in the format its users know (perftest for packets and RDMA, nccl-tests
for collectives) with the peers beside them where asked (--peers: iperf3,
sockperf, Open MPI, Gloo), and tears the lab down. Needs root.`,
	}
	c.AddCommand(newBenchPPSCmd(), newBenchLatCmd())
	c.AddCommand(newBenchRDMACmds()...)
	c.AddCommand(newBenchIncastCmd())
	c.AddCommand(newBenchCollCmds()...)
	return c
}

func newBenchPPSCmd() *cobra.Command {
	var env benchEnv
	var o bench.PPSOptions
	c := &cobra.Command{
		Use:   "pps",
		Short: "One-way packet rate for a frame size (perftest bandwidth layout)",
		Example: `  sudo onetdp bench pps                 # 64 B, AF_XDP and kernel UDP
  sudo onetdp bench pps --size 1472 --duration 5s --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := runPPS(cmd.Context(), cmd.ErrOrStderr(), env, o)
			if err != nil {
				return err
			}
			if env.json {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			bench.WritePPSTable(cmd.OutOrStdout(), rows)
			return nil
		},
	}
	env.flags(c)
	c.Flags().IntVar(&o.Size, "size", 64, "UDP payload bytes")
	c.Flags().IntVar(&o.Count, "count", 2_000_000, "most packets to send per transport")
	c.Flags().DurationVar(&o.Duration, "duration", 3*time.Second, "longest send time per transport")
	c.Flags().IntVar(&o.Batch, "batch", 64, "packets per Send call")
	return c
}

func newBenchLatCmd() *cobra.Command {
	var env benchEnv
	var o bench.LatOptions
	c := &cobra.Command{
		Use:   "lat",
		Short: "Ping-pong one-way latency (perftest latency layout)",
		Example: `  sudo onetdp bench lat                 # 64 B, 10000 iterations, AF_XDP and kernel UDP
  sudo onetdp bench lat --size 1024 --iterations 100000 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := runLat(cmd.Context(), cmd.ErrOrStderr(), env, o)
			if err != nil {
				return err
			}
			if env.json {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			bench.WriteLatTable(cmd.OutOrStdout(), rows)
			return nil
		},
	}
	env.flags(c)
	c.Flags().IntVar(&o.Size, "size", 64, "UDP payload bytes")
	c.Flags().IntVar(&o.Iterations, "iterations", 10_000, "measured round trips per transport")
	c.Flags().IntVar(&o.Warmup, "warmup", 1_000, "unmeasured round trips first")
	return c
}

func runPPS(ctx context.Context, progress io.Writer, env benchEnv, o bench.PPSOptions) ([]bench.PPSResult, error) {
	var rows []bench.PPSResult
	err := env.each(ctx, progress, func(ctx context.Context, t string, a, b dataplane.Port) error {
		fmt.Fprintf(progress, "bench pps: %s, %d B, up to %d packets or %v...\n", t, o.Size, o.Count, o.Duration)
		r, err := bench.PPS(ctx, t, a, b, b.LocalAddr(), o)
		rows = append(rows, r)
		return err
	})
	return rows, err
}

func runLat(ctx context.Context, progress io.Writer, env benchEnv, o bench.LatOptions) ([]bench.LatResult, error) {
	var rows []bench.LatResult
	err := env.each(ctx, progress, func(ctx context.Context, t string, a, b dataplane.Port) error {
		fmt.Fprintf(progress, "bench lat: %s, %d B, %d iterations...\n", t, o.Size, o.Iterations)
		r, err := bench.Latency(ctx, t, a, b, b.LocalAddr(), o)
		rows = append(rows, r)
		return err
	})
	return rows, err
}

// each runs fn once per transport with a port on h0 (a) and one on h1 (b),
// in a fresh lab unless env names one, and tears everything down after.
func (env benchEnv) each(ctx context.Context, progress io.Writer, fn func(ctx context.Context, transport string, a, b dataplane.Port) error) error {
	for _, t := range env.transports { // before building a lab for nothing
		if _, err := portOptions(t, netip.AddrPort{}, env); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(ctxOrBackground(ctx), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, teardown, err := env.lab(progress)
	if err != nil {
		return err
	}
	defer teardown()
	for _, t := range env.transports {
		if err := runOnPair(ctx, l, t, env, fn); err != nil {
			return err
		}
	}
	return nil
}

// portOptions maps a bench transport name onto dataplane.Open options.
func portOptions(name string, local netip.AddrPort, env benchEnv) (dataplane.OpenOptions, error) {
	o := dataplane.OpenOptions{Local: local, AFXDP: dataplane.AFXDPOptions{BusyPoll: env.busyPoll}}
	switch env.xdpMode {
	case "auto", "":
	case "native":
		o.AFXDP.Attach = bpf.AttachNative
	case "generic":
		o.AFXDP.Attach = bpf.AttachGeneric
	default:
		return o, fmt.Errorf("unknown --xdp-mode %q (want auto, native or generic)", env.xdpMode)
	}
	switch name {
	case "af_xdp":
		o.Transport = dataplane.TransportAFXDP
	case "udp":
		o.Transport = dataplane.TransportUDP
		o.UDP.GSO, o.UDP.GRO = dataplane.OffloadOff, dataplane.OffloadOff
	case "udp-gso":
		o.Transport = dataplane.TransportUDP
		o.UDP.GSO, o.UDP.GRO = dataplane.OffloadOn, dataplane.OffloadOn
	default:
		return o, fmt.Errorf("unknown transport %q (want af_xdp, udp or udp-gso)", name)
	}
	return o, nil
}

func runOnPair(ctx context.Context, l *lab.Lab, t string, env benchEnv, fn func(context.Context, string, dataplane.Port, dataplane.Port) error) error {
	var ports [2]dataplane.Port
	defer func() {
		for _, p := range ports {
			if p != nil {
				p.Close()
			}
		}
	}()
	for i := range ports {
		h := &l.Hosts[i]
		o, err := portOptions(t, netip.AddrPortFrom(h.Addr.Addr(), env.port), env)
		if err != nil {
			return err
		}
		// A packet bench's receiver owns its core: spin without parking.
		o.AFXDP.BusyPollBudget = -1
		err = h.Do(func() error {
			var err error
			ports[i], err = dataplane.Open(o)
			return err
		})
		if err != nil {
			return fmt.Errorf("open %s port on %s: %w", t, h.Name, err)
		}
	}
	err := fn(ctx, t, ports[0], ports[1])
	if err == nil && env.inspect != nil {
		env.inspect(t, ports[0], ports[1])
	}
	return err
}

// lab returns the lab to run in and how to tear it down: the named one
// (left standing), or a fresh 2-host lab (removed after).
func (env benchEnv) lab(progress io.Writer) (*lab.Lab, func(), error) {
	if os.Geteuid() != 0 {
		return nil, nil, errors.New("bench needs root: it creates network namespaces and attaches XDP programs (try sudo)")
	}
	if env.labName != "" {
		l, err := lab.Status(env.labName)
		if err != nil {
			return nil, nil, err
		}
		return l, func() {}, nil
	}
	name := "bench-" + randomSuffix()
	fmt.Fprintf(progress, "lab %s: 2 hosts, MTU %d...\n", name, env.mtu)
	l, err := lab.Up(lab.Options{Name: name, Hosts: 2, MTU: env.mtu})
	if err != nil {
		return nil, nil, err
	}
	return l, func() {
		if err := lab.Down(name); err != nil {
			fmt.Fprintf(progress, "lab %s: teardown: %v\n", name, err)
		}
	}, nil
}

func randomSuffix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func ctxOrBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
