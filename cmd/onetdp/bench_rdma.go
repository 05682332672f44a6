package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/cm"
	"github.com/opennetworks/onetdp/rdma/rocev2"
	"github.com/opennetworks/onetdp/stack"
)

// perftestPort is perftest's default TCP port for the endpoint exchange.
const perftestPort = 18515

// rdmaBenchFlags are the perftest-like flags of the six RDMA benches.
type rdmaBenchFlags struct {
	env      benchEnv
	o        bench.RDMAOptions
	size     int
	all      bool
	duration secondsValue
	mtu      int
	peers    bool
	peerTime secondsValue
}

// newBenchRDMACmds returns write_bw, send_bw, read_bw, write_lat, send_lat
// and read_lat.
func newBenchRDMACmds() []*cobra.Command {
	var cmds []*cobra.Command
	for _, bw := range []bool{true, false} {
		for _, op := range []bench.RDMAOp{bench.RDMAWrite, bench.RDMASend, bench.RDMARead} {
			cmds = append(cmds, newBenchRDMACmd(op, bw))
		}
	}
	return cmds
}

func rdmaTestName(op bench.RDMAOp, bw bool) string {
	if bw {
		return op.String() + "_bw"
	}
	return op.String() + "_lat"
}

func newBenchRDMACmd(op bench.RDMAOp, bw bool) *cobra.Command {
	f := &rdmaBenchFlags{o: bench.RDMAOptions{Op: op}, peerTime: secondsValue(3 * time.Second)}
	name := rdmaTestName(op, bw)
	perftool := "ib_" + name
	c := &cobra.Command{
		Use:   name,
		Short: fmt.Sprintf("RDMA %s over the software RoCEv2 engine, as %s measures it", map[bool]string{true: "bandwidth", false: "latency"}[bw], perftool),
		Long: fmt.Sprintf(`Runs %s's measurement between hosts h0 (client) and h1 (server) of a 2-host
lab (a fresh one unless --lab names one), once per --transport, over the
software RoCEv2 engine: the two sides exchange QPN, PSN, GID and buffer keys
over TCP (h1 listens on its lab address, port %d, h0 dials) and print
perftest's address lines and report. Every size ends with a data check of the
last transfer; wrong bytes fail the run.%s`, perftool, perftestPort, peersHelp(op, bw)),
		Example: rdmaExamples(name, op, bw),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRDMABench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f, bw)
		},
	}
	f.flags(c, bw)
	return c
}

func peersHelp(op bench.RDMAOp, bw bool) string {
	switch {
	case bw && op == bench.RDMAWrite:
		return "\n\n--peers adds iperf3 UDP (1472 B datagrams, -b 0) and TCP rows measured on\nthe same lab link, with the goodput ratios."
	case !bw && op == bench.RDMASend:
		return "\n\n--peers adds a sockperf UDP ping-pong row (64 B) measured on the same lab\nlink, with the latency ratio."
	}
	return ""
}

func rdmaExamples(name string, op bench.RDMAOp, bw bool) string {
	ex := fmt.Sprintf("  sudo onetdp bench %s                      # AF_XDP and kernel UDP rows\n", name)
	if bw {
		ex += fmt.Sprintf("  sudo onetdp bench %s -s 4096 -n 20000 -t 256\n", name)
		ex += fmt.Sprintf("  sudo onetdp bench %s -a -D 1 --transport af_xdp --json", name)
	} else {
		ex += fmt.Sprintf("  sudo onetdp bench %s -s 64 -n 10000\n", name)
		ex += fmt.Sprintf("  sudo onetdp bench %s -a --transport udp --json", name)
	}
	if bw && op == bench.RDMAWrite || !bw && op == bench.RDMASend {
		ex += fmt.Sprintf("\n  sudo onetdp bench %s --peers                 # plus the peers and the ratios", name)
	}
	return ex
}

func (f *rdmaBenchFlags) flags(c *cobra.Command, bw bool) {
	// The lab and transport flags of every bench, except its --mtu (here
	// the RoCE path MTU, as perftest's -m) and --port (RoCEv2 is UDP 4791).
	var shared pflag.FlagSet
	shared.SortFlags = false
	c.Flags().SortFlags = false
	scratch := &cobra.Command{}
	f.env.flags(scratch)
	scratch.Flags().VisitAll(func(fl *pflag.Flag) {
		switch fl.Name {
		case "mtu", "port":
			return
		case "transport":
			if sv, ok := fl.Value.(pflag.SliceValue); ok {
				_ = sv.Replace([]string{"af_xdp", "udp"}) // Set would make a later --transport append
			}
			fl.DefValue = "[af_xdp,udp]"
			fl.Usage = "transports under the RoCEv2 engine, in order: af_xdp, udp (kernel UDP sockets), udp-gso"
		case "busy-poll":
			// Two engines' receivers spinning on two cores starve each
			// other: send_lat measured ~20 ms t_typical over AF_XDP with
			// spinning, ~0.1 ms without. Off unless asked for.
			_ = fl.Value.Set("false")
			fl.DefValue = "false"
			fl.Usage = "AF_XDP receivers of the engines spin on their rings (on few cores both engines then starve each other)"
		}
		shared.AddFlag(fl)
	})
	fs := c.Flags()
	defSize, defIters := 65536, 5000
	if !bw {
		defSize, defIters = 2, 1000
	}
	fs.IntVarP(&f.size, "size", "s", defSize, "message size in bytes")
	fs.IntVarP(&f.o.Iterations, "iters", "n", defIters, "messages per size (latency: measured round trips)")
	fs.VarP(&f.duration, "duration", "D", "run each size this long instead of --iters (seconds, or a Go duration: 5, 500ms)")
	fs.BoolVarP(&f.all, "all", "a", false, "sweep sizes 2 B..8 MiB by powers of two (each size at most 512 MiB of traffic unless -D)")
	if bw {
		fs.IntVarP(&f.o.TxDepth, "tx-depth", "t", 128, "outstanding send-queue requests")
		fs.IntVarP(&f.o.CQMod, "cq-mod", "Q", 100, "signal one request in this many")
		fs.IntVarP(&f.o.RxDepth, "rx-depth", "r", 512, "RECVs the send_bw receiver keeps posted")
	} else {
		fs.IntVar(&f.o.Warmup, "warmup", 100, "unmeasured round trips first")
	}
	fs.IntVarP(&f.mtu, "mtu", "m", 2048, "RoCE path MTU: 256, 512, 1024, 2048 or 4096 (a lab link carries 1024 at --link-mtu 1500, 2048 up to 3506, the most native XDP on veth allows)")
	fs.Var(newUint8Flag(&f.o.QPTimeout, 14), "qp-timeout", "QP ACK timeout exponent: 4.096 µs × 2^n before a resend (perftest -u)")
	fs.BoolVar(&f.o.BusyPoll, "cq-spin", false, "spin on the completion queue (and, for write_lat, on memory) instead of blocking")
	fs.Var(newDurationAlias(&f.o.Timeout, 10*time.Second), "timeout", "fail when nothing completes for this long")
	fs.IntVar(&f.env.mtu, "link-mtu", 3000, "MTU of the fresh lab's links")
	if bw && f.o.Op == bench.RDMAWrite || !bw && f.o.Op == bench.RDMASend {
		fs.BoolVar(&f.peers, "peers", false, "also measure the peers on the same link: "+map[bool]string{true: "iperf3 UDP 1472 B and TCP", false: "sockperf UDP ping-pong 64 B"}[bw])
		fs.Var(&f.peerTime, "peer-time", "length of each peer run (seconds, or a Go duration)")
	}
	fs.AddFlagSet(&shared)
}

// secondsValue is a duration flag that also takes plain seconds, as
// perftest's -D does.
type secondsValue time.Duration

func (s *secondsValue) String() string { return time.Duration(*s).String() }
func (s *secondsValue) Type() string   { return "seconds" }
func (s *secondsValue) Set(v string) error {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n < 0 || n > 86400 {
			return fmt.Errorf("%s seconds out of range 0..86400", v)
		}
		*s = secondsValue(n * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("%q is neither seconds nor a duration", v)
	}
	*s = secondsValue(d)
	return nil
}

// durationAlias is a secondsValue bound to a time.Duration field.
type durationAlias struct{ d *time.Duration }

func newDurationAlias(d *time.Duration, def time.Duration) durationAlias {
	*d = def
	return durationAlias{d}
}
func (a durationAlias) String() string {
	if a.d == nil {
		return "0s"
	}
	return a.d.String()
}
func (a durationAlias) Type() string { return "seconds" }
func (a durationAlias) Set(v string) error {
	var s secondsValue
	if err := s.Set(v); err != nil {
		return err
	}
	*a.d = time.Duration(s)
	return nil
}

// uint8Flag is a uint8 flag bound to a field, with a default.
type uint8Flag struct{ v *uint8 }

func newUint8Flag(v *uint8, def uint8) uint8Flag { *v = def; return uint8Flag{v} }
func (u uint8Flag) String() string {
	if u.v == nil {
		return "0"
	}
	return strconv.Itoa(int(*u.v))
}
func (u uint8Flag) Type() string { return "uint8" }
func (u uint8Flag) Set(s string) error {
	n, err := strconv.ParseUint(s, 0, 8)
	if err != nil {
		return fmt.Errorf("%q: want 0..31", s)
	}
	if n > 31 {
		return fmt.Errorf("%d: want 0..31", n)
	}
	*u.v = uint8(n)
	return nil
}

// rdmaRows is one bench's result: our rows (one per transport and size)
// and the peers'.
type rdmaRows struct {
	bw   []bench.RDMABWResult
	lat  []bench.RDMALatResult
	text bytes.Buffer // perftest's per-transport reports
}

func runRDMABench(ctx context.Context, stdout, progress io.Writer, f *rdmaBenchFlags, bw bool) error {
	o := f.o
	name := rdmaTestName(o.Op, bw)
	mtu := rdma.MTUFromBytes(f.mtu)
	if mtu.Bytes() != f.mtu {
		return fmt.Errorf("--mtu %d: want 256, 512, 1024, 2048 or 4096", f.mtu)
	}
	o.MTU = mtu
	o.Duration = time.Duration(f.duration)
	o.Sizes = []int{f.size}
	if f.all {
		o.Sizes = bench.AllSizes()
		if o.Duration == 0 {
			// perftest -a sends --iters of every size; 5000 × 8 MiB is
			// 40 GiB, minutes on a software stack. Bound each size.
			o.Iterations = 0 // per size, below
		}
	}
	for _, t := range f.env.transports { // before building a lab for nothing
		if _, err := portOptions(t, netip.AddrPort{}, f.env); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(ctxOrBackground(ctx), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, teardown, err := f.env.lab(progress)
	if err != nil {
		return err
	}
	defer teardown()
	if len(l.Hosts) < 2 {
		return fmt.Errorf("lab %s has %d hosts, want at least 2", l.Name, len(l.Hosts))
	}
	var rows rdmaRows
	for _, t := range f.env.transports {
		if err := runRDMAOnTransport(ctx, progress, l, t, f, o, bw, &rows); err != nil {
			return err
		}
	}
	if f.peers {
		if bw {
			rows.bw = append(rows.bw, runIperf3Peers(ctx, progress, l, time.Duration(f.peerTime))...)
		} else {
			rows.lat = append(rows.lat, runSockperfPeer(ctx, progress, l, time.Duration(f.peerTime))...)
		}
	}
	if f.env.json {
		if bw {
			return writeJSON(stdout, rows.bw)
		}
		return writeJSON(stdout, rows.lat)
	}
	_, _ = rows.text.WriteTo(stdout)
	fmt.Fprintf(stdout, "\n%s, every transport side by side:\n", name)
	if bw {
		bench.WriteRDMABWTable(stdout, rows.bw)
		writeRDMABWRatios(stdout, rows.bw)
	} else {
		bench.WriteRDMALatTable(stdout, rows.lat)
		writeRDMALatRatios(stdout, rows.lat)
	}
	return nil
}

// sizeIterations bounds an --all sweep: each size at most 512 MiB (and at
// least 100 messages), never more than --iters.
func sizeIterations(size, iters int) int {
	return max(100, min(iters, (512<<20)/size))
}

func runRDMAOnTransport(ctx context.Context, progress io.Writer, l *lab.Lab, t string, f *rdmaBenchFlags, o bench.RDMAOptions, bw bool, rows *rdmaRows) error {
	var devs [2]*rocev2.Device
	defer func() {
		for _, d := range devs {
			if d != nil {
				d.Close()
			}
		}
	}()
	for i := range devs {
		h := &l.Hosts[i]
		po, err := portOptions(t, netip.AddrPortFrom(h.Addr.Addr(), rocev2.UDPPort), f.env)
		if err != nil {
			return err
		}
		err = h.Do(func() error {
			var err error
			devs[i], err = stack.OpenRDMA(stack.RDMAOptions{Addr: h.Addr.Addr(), Transport: po.Transport, Port: po})
			return err
		})
		if err != nil {
			return fmt.Errorf("open rocev2 over %s on %s: %w", t, h.Name, err)
		}
	}
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	caps := devs[0].Caps()
	fmt.Fprintf(progress, "bench %s: %s (%s%s), sizes %s...\n", rdmaTestName(o.Op, bw), t, caps.Kind, reasonSuffix(caps.Reason), sizesString(o.Sizes))
	srvAddr := net.JoinHostPort(h1.Addr.Addr().String(), strconv.Itoa(perftestPort))
	server := bench.RDMASide{Device: devs[1], Connect: func(ctx context.Context, local cm.Endpoint, co cm.Options) (remote cm.Endpoint, err error) {
		err = h1.Do(func() error {
			var err error
			remote, err = cm.Listen(ctx, srvAddr, local, co)
			return err
		})
		return remote, err
	}}
	client := bench.RDMASide{Device: devs[0], Connect: func(ctx context.Context, local cm.Endpoint, co cm.Options) (remote cm.Endpoint, err error) {
		err = h0.Do(func() error {
			var err error
			remote, err = cm.Dial(ctx, srvAddr, local, co)
			return err
		})
		return remote, err
	}}
	var addrLines string
	o.OnConnected = func(local, remote cm.Endpoint) {
		addrLines = local.PerftestSide("local") + remote.PerftestSide("remote")
	}
	params := [][2]string{
		{"Transport", t + " (" + caps.Kind + ")"},
		{"Device", devs[0].Name()},
		{"Connection type", "RC"},
		{"Mtu", fmt.Sprintf("%d[B]", o.MTU.Bytes())},
		{"QP timeout", fmt.Sprintf("%d (%v)", o.QPTimeout, rdma.AckTimeout(o.QPTimeout))},
		{"Link type", "Ethernet"},
		{"Data ex. method", "Ethernet (TCP " + srvAddr + ")"},
	}
	// One connection per size keeps the --all bound per size simple; a
	// plain run has one size.
	sizes := o.Sizes
	for _, size := range sizes {
		so := o
		so.Sizes = []int{size}
		if o.Iterations == 0 && o.Duration == 0 {
			so.Iterations = sizeIterations(size, f.o.Iterations)
		}
		if bw {
			r, err := bench.RDMABandwidth(ctx, t, client, server, so)
			if err != nil {
				return err
			}
			rows.bw = append(rows.bw, r...)
		} else {
			r, err := bench.RDMALatency(ctx, t, client, server, so)
			if err != nil {
				return err
			}
			rows.lat = append(rows.lat, r...)
		}
		if len(sizes) > 1 {
			fmt.Fprintf(progress, "bench %s: %s, %d B done\n", rdmaTestName(o.Op, bw), t, size)
		}
	}
	if bw {
		ours := rows.bw[len(rows.bw)-len(sizes):]
		params = append(params, [2]string{"TX depth", strconv.Itoa(o.TxDepth)}, [2]string{"CQ Moderation", strconv.Itoa(min(o.CQMod, o.TxDepth))})
		if o.Op == bench.RDMASend {
			params = append(params, [2]string{"RX depth", strconv.Itoa(o.RxDepth)})
		}
		bench.WriteRDMABanner(&rows.text, o.Op, true, params)
		rows.text.WriteString(addrLines)
		bench.WriteRDMABWReport(&rows.text, ours)
	} else {
		ours := rows.lat[len(rows.lat)-len(sizes):]
		bench.WriteRDMABanner(&rows.text, o.Op, false, params)
		rows.text.WriteString(addrLines)
		bench.WriteRDMALatReport(&rows.text, ours)
	}
	st := devs[0].Stats()
	fmt.Fprintf(progress, "bench %s: %s: client engine sent %d packets, %d retransmitted, %d timeouts\n",
		rdmaTestName(o.Op, bw), t, st.TxPackets.Load(), st.Retransmits.Load(), st.Timeouts.Load())
	return nil
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

func sizesString(s []int) string {
	if len(s) == 1 {
		return strconv.Itoa(s[0]) + " B"
	}
	return fmt.Sprintf("%d..%d B (%d sizes)", s[0], s[len(s)-1], len(s))
}

// writeRDMABWRatios prints the write_bw ratios: our goodput against
// iperf3 UDP and TCP on the same link, for every row of ours.
func writeRDMABWRatios(w io.Writer, rows []bench.RDMABWResult) {
	peers := map[string]float64{}
	for _, r := range rows {
		if r.Test == "iperf3" && r.Gbps > 0 {
			peers[r.Transport] = r.Gbps
		}
	}
	if len(peers) == 0 {
		return
	}
	for _, r := range rows {
		if r.Test == "iperf3" {
			continue
		}
		var parts []string
		if u, ok := peers["iperf3-udp"]; ok {
			parts = append(parts, fmt.Sprintf("%.2fx iperf3-udp (target >= 2x UDP bulk)", r.Gbps/u))
		}
		if tcp, ok := peers["iperf3-tcp"]; ok {
			parts = append(parts, fmt.Sprintf("%.2fx iperf3-tcp", r.Gbps/tcp))
		}
		fmt.Fprintf(w, "%s %d B goodput: %s = %s\n", r.Test, r.Size, r.Transport, strings.Join(parts, ", "))
	}
}

// writeRDMALatRatios prints send_lat against sockperf UDP (t_typical, the
// median).
func writeRDMALatRatios(w io.Writer, rows []bench.RDMALatResult) {
	var peer *bench.RDMALatResult
	for i := range rows {
		if rows[i].Test == "sockperf" && rows[i].Typical > 0 {
			peer = &rows[i]
		}
	}
	if peer == nil {
		return
	}
	for _, r := range rows {
		if r.Test == "sockperf" {
			continue
		}
		fmt.Fprintf(w, "%s %d B t_typical: %s = %.2fx %s %d B (target <= 0.6x sockperf UDP)\n",
			r.Test, r.Size, r.Transport, float64(r.Typical)/float64(peer.Typical), peer.Transport, peer.Size)
	}
}
