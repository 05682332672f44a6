package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opennetworks/onetdp/flowctl"
	"github.com/opennetworks/onetdp/flowctl/sim"
	"github.com/opennetworks/onetdp/lab"
)

// simFlags are the flags of `onetdp sim`, as typed.
type simFlags struct {
	flows                   int
	rate, lineRate          string
	buffer, kmin, kmax      string
	pmax                    float64
	delay, duration, warmup time.Duration
	interval, stagger       time.Duration
	packet                  int
	cc, dcqcn, preset       string
	delayTarget             time.Duration
	seed                    uint64
	csvPath, plotPath       string
	asJSON, quiet           bool
}

func newSimCmd() *cobra.Command {
	var sf simFlags
	c := &cobra.Command{
		Use:   "sim",
		Short: "Simulate N senders into one bottleneck with DCQCN, delay-based or no congestion control",
		Long: `Run a deterministic discrete-event simulation of N senders into one bottleneck
link (rate, buffer with tail drop, RED-style ECN marking with Kmin/Kmax/Pmax on
the instantaneous queue, propagation delay), each sender driven by the chosen
flowctl controller and paced at its rate. The receiver sends CNPs for CE-marked
packets (rate-limited per flow by min_time_between_cnps) and, for the delay
controller, ACKs with RTT samples.

Prints utilization, Jain fairness, queue p50/p99 (time-weighted), convergence
time (every flow within 10 % of the fair share from then on), drops, marks and
CNPs; writes the time series (queue depth, per-flow goodput and allowed rate)
as CSV and a plot (.svg or .png) of per-flow rate and queue depth over time.`,
		Example: `  onetdp sim --flows 4 --rate 100gbit --cc dcqcn --plot sim.svg
  onetdp sim --flows 8 --rate 40gbit --kmin 5KB --kmax 200KB --pmax 0.01 --duration 20ms --csv sim.csv
  onetdp sim --cc dcqcn --dcqcn "rpg_ai_rate=40,rpg_time_reset=55,clamp_tgt_rate=1" --plot out.png
  onetdp sim --flows 16 --kmin 20KB --kmax 200KB --dcqcn-preset paper --duration 80ms --plot paper.png
  onetdp sim --cc delay --kmax 0 --flows 16 --json
  onetdp sim --cc none --flows 4 --buffer 256KB   # more demand than capacity: drops`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runSim(c, &sf) },
	}
	f := c.Flags()
	f.IntVar(&sf.flows, "flows", 4, "number of senders")
	f.StringVar(&sf.rate, "rate", "100gbit", "bottleneck rate (tc units: 100gbit, 25g, 400mbit)")
	f.StringVar(&sf.lineRate, "line-rate", "", "each sender's NIC rate and DCQCN cap (default: the bottleneck rate)")
	f.StringVar(&sf.buffer, "buffer", "1MB", "bottleneck buffer, tail drop (k = 1024)")
	f.StringVar(&sf.kmin, "kmin", "100KB", "ECN marking starts at this queue depth")
	f.StringVar(&sf.kmax, "kmax", "400KB", "ECN marks every packet from this queue depth on; 0 turns marking off")
	f.Float64Var(&sf.pmax, "pmax", 0.2, "marking probability just below kmax")
	f.DurationVar(&sf.delay, "delay", 5*time.Microsecond, "one-way propagation delay (base RTT is twice this)")
	f.DurationVar(&sf.duration, "duration", 50*time.Millisecond, "simulated time")
	f.DurationVar(&sf.warmup, "warmup", 0, "time excluded from utilization, fairness and queue percentiles (default duration/5)")
	f.DurationVar(&sf.interval, "interval", 0, "time-series sample interval (default duration/1000)")
	f.DurationVar(&sf.stagger, "stagger", 0, "start flow i at i*stagger")
	f.IntVar(&sf.packet, "packet", 1024, "packet size on the wire, bytes")
	f.StringVar(&sf.cc, "cc", "dcqcn", "congestion control: dcqcn, delay or none")
	f.StringVar(&sf.preset, "dcqcn-preset", "nvidia", "DCQCN parameters --dcqcn applies over: nvidia (ConnectX firmware defaults), paper (Zhu et al. 2015) or lab (the paper's, scaled to a namespace lab's software path)")
	f.StringVar(&sf.dcqcn, "dcqcn", "", `DCQCN parameters over NVIDIA's defaults, e.g. "rpg_ai_rate=5,rpg_time_reset=300"`)
	f.DurationVar(&sf.delayTarget, "delay-target", 0, "target RTT of the delay controller (default base RTT + 10µs)")
	f.Uint64Var(&sf.seed, "seed", 1, "seed of the marking RNG (same seed, same result)")
	f.StringVar(&sf.csvPath, "csv", "", "write the time series as CSV to this file")
	f.StringVar(&sf.plotPath, "plot", "", "write a plot of per-flow rate and queue depth to this file (.svg or .png)")
	f.BoolVar(&sf.asJSON, "json", false, "print the summary as JSON")
	f.BoolVar(&sf.quiet, "quiet", false, "no progress on stderr")
	return c
}

// simOptions turns the flags into sim.Options.
func simOptions(sf *simFlags) (sim.Options, error) {
	o := sim.Options{
		Flows: sf.flows, Delay: sf.delay, Duration: sf.duration, WarmUp: sf.warmup,
		SampleInterval: sf.interval, PacketBytes: sf.packet, Seed: sf.seed,
	}
	r, err := lab.ParseRate(sf.rate)
	if err != nil {
		return o, fmt.Errorf("--rate: %w", err)
	}
	o.BottleneckRate = float64(r)
	if sf.lineRate != "" {
		lr, err := lab.ParseRate(sf.lineRate)
		if err != nil {
			return o, fmt.Errorf("--line-rate: %w", err)
		}
		o.LineRate = float64(lr)
	}
	sizes := []struct {
		flag, val string
		dst       *int
	}{{"--buffer", sf.buffer, &o.BufferBytes}, {"--kmin", sf.kmin, &o.Marking.KminBytes}, {"--kmax", sf.kmax, &o.Marking.KmaxBytes}}
	for _, s := range sizes {
		if strings.TrimSpace(s.val) == "0" {
			*s.dst = 0
			continue
		}
		v, err := lab.ParseSize(s.val)
		if err != nil {
			return o, fmt.Errorf("%s: %w", s.flag, err)
		}
		if v > 1<<40 {
			return o, fmt.Errorf("%s: %s is too large", s.flag, s.val)
		}
		*s.dst = int(v)
	}
	o.Marking.Pmax = sf.pmax
	if o.Marking.KmaxBytes == 0 {
		o.Marking.KminBytes = 0
	}
	if o.CC, err = sim.ParseCC(sf.cc); err != nil {
		return o, fmt.Errorf("--cc: %w", err)
	}
	if o.DCQCN, err = dcqcnParams(sf.preset, sf.dcqcn); err != nil {
		return o, err
	}
	o.DelayCC = simDelayOptions(sf, o)
	if sf.stagger > 0 {
		for i := range sf.flows {
			o.FlowStarts = append(o.FlowStarts, time.Duration(i)*sf.stagger)
		}
	}
	return o, nil
}

// dcqcnParams applies the --dcqcn pairs over the named preset.
func dcqcnParams(preset, pairs string) (flowctl.DCQCNParams, error) {
	p, err := flowctl.DCQCNPreset(preset)
	if err != nil {
		return p, fmt.Errorf("--dcqcn-preset: %w", err)
	}
	// String writes name=value lines that ParseDCQCNParams reads back, and
	// a later pair overrides an earlier one.
	p, err = flowctl.ParseDCQCNParams(p.String() + "\n" + pairs)
	if err != nil {
		return p, fmt.Errorf("--dcqcn: %w", err)
	}
	return p, nil
}

// simDelayOptions sizes the delay controller for the path: target = base
// RTT plus 10µs (or --delay-target), windows from one packet to the BDP.
func simDelayOptions(sf *simFlags, o sim.Options) flowctl.DelayOptions {
	base := 2 * sf.delay
	target := sf.delayTarget
	if target == 0 {
		target = base + 10*time.Microsecond
	}
	bdp := o.BottleneckRate / 8 * target.Seconds()
	pkt := float64(max(sf.packet, 64))
	return flowctl.DelayOptions{
		TargetDelay: target,
		AIBytes:     pkt,
		MinWindow:   pkt,
		MaxWindow:   max(2*bdp, 2*pkt),
		InitWindow:  max(bdp/float64(max(sf.flows, 1)), pkt),
	}
}

func runSim(c *cobra.Command, sf *simFlags) error {
	o, err := simOptions(sf)
	if err != nil {
		return err
	}
	if sf.plotPath != "" {
		if _, err := plotFormat(sf.plotPath); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
	}
	errw := c.ErrOrStderr()
	var lastPct = -1
	if !sf.quiet && !sf.asJSON {
		o.Progress = func(done, total time.Duration) {
			pct := int(100 * done / total)
			if pct/10 != lastPct/10 && lastPct < 100 {
				fmt.Fprintf(errw, "\rsimulating %v of %v (%d%%)", done.Round(time.Microsecond), total, pct)
				lastPct = pct
			}
			if pct == 100 {
				fmt.Fprintln(errw)
			}
		}
	}
	res, err := sim.Run(o)
	if err != nil {
		return err
	}
	if sf.csvPath != "" {
		if err := writeFileWith(sf.csvPath, res.Series.WriteCSV); err != nil {
			return fmt.Errorf("--csv: %w", err)
		}
	}
	if sf.plotPath != "" {
		if err := writeSimPlot(sf.plotPath, &res.Series, o); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
	}
	out := c.OutOrStdout()
	if sf.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(simJSON(&res.Summary, o))
	}
	printSimSummary(out, &res.Summary, o)
	return nil
}

// writeFileWith creates path and fills it with write.
func writeFileWith(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// simSummaryJSON is the --json form of the summary (rates in Gbit/s,
// durations in µs).
type simSummaryJSON struct {
	CC                string    `json:"cc"`
	Flows             int       `json:"flows"`
	RateGbps          float64   `json:"rate_gbps"`
	DurationUs        float64   `json:"duration_us"`
	WarmUpUs          float64   `json:"warmup_us"`
	Utilization       float64   `json:"utilization"`
	Jain              float64   `json:"jain"`
	FairShareGbps     float64   `json:"fair_share_gbps"`
	GoodputGbps       []float64 `json:"goodput_gbps"`
	QueueP50Bytes     int       `json:"queue_p50_bytes"`
	QueueP99Bytes     int       `json:"queue_p99_bytes"`
	QueueMaxBytes     int       `json:"queue_max_bytes"`
	KmaxBytes         int       `json:"kmax_bytes"`
	Converged         bool      `json:"converged"`
	ConvergenceTimeUs float64   `json:"convergence_time_us"`
	Drops             uint64    `json:"drops"`
	Marks             uint64    `json:"marks"`
	CNPs              uint64    `json:"cnps"`
	CNPsSuppressed    uint64    `json:"cnps_suppressed"`
	PacketsSent       uint64    `json:"packets_sent"`
	Delivered         uint64    `json:"packets_delivered"`
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func simJSON(s *sim.Summary, o sim.Options) simSummaryJSON {
	j := simSummaryJSON{
		CC: s.CC, Flows: s.Flows, RateGbps: o.BottleneckRate / 1e9,
		DurationUs: us(s.Duration), WarmUpUs: us(s.WarmUp),
		Utilization: s.Utilization, Jain: s.Jain, FairShareGbps: s.FairShareBps / 1e9,
		QueueP50Bytes: s.QueueP50Bytes, QueueP99Bytes: s.QueueP99Bytes, QueueMaxBytes: s.QueueMaxBytes,
		KmaxBytes: o.Marking.KmaxBytes, Converged: s.Converged, ConvergenceTimeUs: us(s.ConvergenceTime),
		Drops: s.Drops, Marks: s.Marks, CNPs: s.CNPs, CNPsSuppressed: s.CNPsSuppressed,
		PacketsSent: s.PacketsSent, Delivered: s.Delivered,
	}
	for _, g := range s.GoodputBps {
		j.GoodputGbps = append(j.GoodputGbps, g/1e9)
	}
	return j
}

func printSimSummary(w io.Writer, s *sim.Summary, o sim.Options) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	conv := "not converged"
	if s.Converged {
		conv = s.ConvergenceTime.String()
	}
	var lo, hi float64
	for i, g := range s.GoodputBps {
		if i == 0 || g < lo {
			lo = g
		}
		hi = max(hi, g)
	}
	rows := [][2]string{
		{"cc", s.CC},
		{"flows", fmt.Sprint(s.Flows)},
		{"bottleneck", fmt.Sprintf("%.3g Gbit/s, buffer %d B, kmin %d B, kmax %d B, pmax %g", o.BottleneckRate/1e9, o.BufferBytes, o.Marking.KminBytes, o.Marking.KmaxBytes, o.Marking.Pmax)},
		{"window", fmt.Sprintf("%v .. %v", s.WarmUp, s.Duration)},
		{"utilization", fmt.Sprintf("%.1f %%", 100*s.Utilization)},
		{"jain fairness", fmt.Sprintf("%.4f", s.Jain)},
		{"goodput per flow", fmt.Sprintf("%.2f .. %.2f Gbit/s (fair share %.2f)", lo/1e9, hi/1e9, s.FairShareBps/1e9)},
		{"queue p50 / p99 / max", fmt.Sprintf("%d / %d / %d B (time-weighted)", s.QueueP50Bytes, s.QueueP99Bytes, s.QueueMaxBytes)},
		{"convergence (±10 %)", conv},
		{"drops", fmt.Sprint(s.Drops)},
		{"ce marks", fmt.Sprint(s.Marks)},
		{"cnps (suppressed)", fmt.Sprintf("%d (%d)", s.CNPs, s.CNPsSuppressed)},
		{"packets sent / delivered", fmt.Sprintf("%d / %d", s.PacketsSent, s.Delivered)},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	tw.Flush()
}

// errPlotFormat: --plot names a file that is neither .svg nor .png.
var errPlotFormat = errors.New("plot file must end in .svg or .png")

func plotFormat(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".svg", ".png":
		return ext[1:], nil
	}
	return "", fmt.Errorf("%q: %w", path, errPlotFormat)
}
