package incastlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/flowctl"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/cm"
	"github.com/opennetworks/onetdp/rdma/rocev2"
	"github.com/opennetworks/onetdp/stack"
)

// Defaults of Options.
const (
	DefaultSenders       = 3
	DefaultBottleneckBps = 500_000_000
	DefaultLinkMTU       = 3000
	// DefaultBufferBytes is the bottleneck's queue, 8 ms at 500 Mbit/s:
	// it holds DCQCN's first round trip at the line rate, and senders
	// without flow control (16 × 64 KiB in flight each) overrun it.
	DefaultBufferBytes   = 512 << 10
	DefaultMarkerPercent = 95
	DefaultKminBytes     = 16 << 10
	DefaultKmaxBytes     = 128 << 10
	DefaultPmaxPPM       = 200_000
	// DefaultLineRate is where DCQCN starts and what it never exceeds: a
	// 1 Gbit/s NIC, twice the bottleneck, as a lab host's link would be.
	DefaultLineRate = 1e9
	// DefaultDelayTarget is the delay controller's target RTT: a software
	// path's base RTT is a few hundred µs.
	DefaultDelayTarget = time.Millisecond
	// DefaultDelayInitWindow is the delay controller's first window: its
	// default (1 MiB) overruns the lab bottleneck in the first round trip.
	DefaultDelayInitWindow = 64 << 10
	// DefaultCMPort is the first TCP port of the endpoint exchange; flow i
	// uses DefaultCMPort+i on the receiver.
	DefaultCMPort = 18600
)

// The modes of a run: which flow control the senders use.
const (
	ModeOff   = "off"   // none: the engine's own packet window only
	ModeDCQCN = "dcqcn" // DCQCN, driven by the marker's CE marks through CNPs
	ModeDelay = "delay" // the Swift-style delay controller (ignores CNPs)
)

// Options configure Run. Zero fields take the defaults above.
type Options struct {
	// Lab, when set, is an existing lab to run in: host 0 receives, hosts
	// 1..Senders send, and it needs a bottleneck into host 0. Otherwise a
	// fresh lab of Senders+1 hosts is built (and torn down) with
	// BottleneckBps into host 0 and LinkMTU.
	Lab *lab.Lab
	// LabName names the fresh lab; default "incast-<random>".
	LabName       string
	Senders       int
	BottleneckBps uint64
	BufferBytes   uint32
	LinkMTU       int
	// Port is the template of every device's port: transport (default
	// af_xdp), busy-poll, attach mode. Local is set per host.
	Port dataplane.OpenOptions
	// Marker configures the ECN marker on the bottleneck port. A zero
	// RateBps means DefaultMarkerPercent of the bottleneck; zero
	// thresholds take the defaults. NoMarker leaves it out.
	Marker   bpf.ECNMarkerOptions
	NoMarker bool
	// Modes are the runs, in order: "off" (no flow control), "dcqcn" and
	// "delay"; default all three.
	Modes []string
	// DCQCN are the parameters of the dcqcn run, at the senders and (CNP
	// spacing and DSCP) at the receiver; default flowctl.LabDCQCNParams.
	DCQCN flowctl.DCQCNParams
	// Delay configures the delay run; zero fields take DefaultDelayTarget
	// and DefaultDelayInitWindow, then flowctl's defaults.
	Delay flowctl.DelayOptions
	// LineRate is each sender's NIC rate in bits/s: where DCQCN starts
	// and its cap; default DefaultLineRate.
	LineRate float64
	// Incast is the traffic of each run; its MTU defaults to 2048.
	Incast bench.IncastOptions
	// CMPort is the first TCP port of the endpoint exchange.
	CMPort int
	// Progress hears one line per step; nil is silent.
	Progress io.Writer
}

// FlowCounters are one sender's engine counters over a run.
type FlowCounters struct {
	Flow        int     `json:"flow"`
	Host        string  `json:"host"`
	Gbps        float64 `json:"goodput_gbit_s"`
	Retransmits uint64  `json:"retransmits"`
	Timeouts    uint64  `json:"timeouts"`
	SeqNAKs     uint64  `json:"seq_naks"`
	CNPs        uint64  `json:"cnps_received"`
	// RateGbps is the flow controller's allowed rate averaged over the
	// run and at its end, sampled every 10 ms (0: no controller).
	MeanRateGbps  float64 `json:"mean_rate_gbit_s,omitempty"`
	FinalRateGbps float64 `json:"final_rate_gbit_s,omitempty"`
}

// RunResult is one mode's run.
type RunResult struct {
	Mode        string `json:"mode"`
	FlowControl string `json:"flow_control"`
	bench.IncastResult
	Senders []FlowCounters `json:"senders"`
	// Utilization is the aggregate goodput over the bottleneck rate.
	Utilization float64 `json:"utilization"`
	// Bottleneck is what the TBF counted during the run (Drops: its tail
	// drops).
	Bottleneck lab.QdiscStats `json:"bottleneck"`
	// Marker is what the ECN marker counted during the run (zero without).
	Marker bpf.ECNCounters `json:"marker"`
	// ReceiverDrops are frames the receiver's AF_XDP sockets lost (rx
	// ring full or no fill-ring frame: the software receiver fell behind);
	// 0 for the kernel UDP port, whose socket drops are not read here.
	ReceiverDrops uint64 `json:"receiver_drops"`
	// Receiver-side engine counters.
	CERcvd     uint64 `json:"ce_received"`
	CNPsSent   uint64 `json:"cnps_sent"`
	Duplicates uint64 `json:"duplicate_requests"`
}

// MarkerConfig is the ECN marker's setting in a Report.
type MarkerConfig struct {
	RateBps   uint64  `json:"rate_bit_s"`
	KminBytes uint32  `json:"kmin_bytes"`
	KmaxBytes uint32  `json:"kmax_bytes"`
	Pmax      float64 `json:"pmax"`
}

// Report is the whole experiment.
type Report struct {
	Lab           string        `json:"lab"`
	Transport     string        `json:"transport"`
	Senders       int           `json:"senders"`
	BottleneckBps uint64        `json:"bottleneck_bit_s"`
	Marker        *MarkerConfig `json:"marker,omitempty"`
	Size          int           `json:"bytes"`
	Duration      time.Duration `json:"duration_ns"`
	Runs          []RunResult   `json:"runs"`
}

// Run builds (or uses) the lab, attaches the marker, runs every mode and
// tears down what it built.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	l := o.Lab
	if l == nil {
		o.progress("lab %s: %d hosts, MTU %d, %s bottleneck into h0...", o.LabName, o.Senders+1, o.LinkMTU, lab.FormatRate(o.BottleneckBps))
		var err error
		l, err = lab.Up(lab.Options{Name: o.LabName, Hosts: o.Senders + 1, MTU: o.LinkMTU,
			Bottleneck: &lab.Bottleneck{Host: 0, RateBps: o.BottleneckBps, LimitBytes: o.BufferBytes}})
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := lab.Down(l.Name); err != nil {
				o.progress("lab %s: teardown: %v", l.Name, err)
			}
		}()
	}
	if len(l.Hosts) < o.Senders+1 {
		return nil, fmt.Errorf("incast: lab %s has %d hosts, want %d", l.Name, len(l.Hosts), o.Senders+1)
	}
	if l.Bottleneck == nil || l.Bottleneck.Host != 0 {
		return nil, fmt.Errorf("incast: lab %s has no bottleneck into h0", l.Name)
	}
	o.BottleneckBps = l.Bottleneck.RateBps
	if o.Marker.RateBps == 0 {
		o.Marker.RateBps = o.BottleneckBps * DefaultMarkerPercent / 100
	}
	rep := &Report{Lab: l.Name, Transport: string(o.Port.Transport), Senders: o.Senders, BottleneckBps: o.BottleneckBps,
		Size: o.Incast.Size, Duration: o.Incast.Duration}
	var marker *bpf.ECNMarker
	if !o.NoMarker {
		port, err := l.IngressPort(0)
		if err != nil {
			return nil, err
		}
		if err := port.Do(func() error {
			var err error
			marker, err = bpf.AttachECNMarker(port.Ifindex, o.Marker)
			return err
		}); err != nil {
			return nil, fmt.Errorf("incast: attach ecn marker to %s: %w", port.Ifname, err)
		}
		defer func() { _ = port.Do(marker.Close) }()
		p := o.Marker.Params()
		rep.Marker = &MarkerConfig{RateBps: p.RateBps, KminBytes: p.KminBytes, KmaxBytes: p.KmaxBytes, Pmax: float64(p.PmaxPPM) / 1e6}
		o.progress("ecn marker on %s (%s): phantom queue at %s, kmin %s, kmax %s, pmax %.0f %%", port.Ifname, marker.Hook(),
			lab.FormatRate(p.RateBps), lab.FormatSize(uint64(p.KminBytes)), lab.FormatSize(uint64(p.KmaxBytes)), float64(p.PmaxPPM)/1e4)
	}
	for _, mode := range o.Modes {
		r, err := o.runMode(ctx, l, mode, marker)
		if err != nil {
			return rep, err
		}
		rep.Runs = append(rep.Runs, r)
	}
	return rep, nil
}

func (o *Options) defaults() error {
	if o.Senders == 0 {
		o.Senders = DefaultSenders
	}
	if o.Senders < 1 || o.Senders > lab.MaxHosts-1 {
		return fmt.Errorf("incast: %d senders (want 1..%d)", o.Senders, lab.MaxHosts-1)
	}
	if o.BottleneckBps == 0 {
		o.BottleneckBps = DefaultBottleneckBps
	}
	if o.BufferBytes == 0 {
		o.BufferBytes = DefaultBufferBytes
	}
	if o.LinkMTU == 0 {
		o.LinkMTU = DefaultLinkMTU
	}
	if o.LabName == "" {
		o.LabName = "incast-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	}
	if o.Port.Transport == "" {
		o.Port.Transport = dataplane.TransportAFXDP
	}
	if o.Marker.KminBytes == 0 && o.Marker.KmaxBytes == 0 {
		o.Marker.KminBytes, o.Marker.KmaxBytes = DefaultKminBytes, DefaultKmaxBytes
	}
	if o.Marker.PmaxPPM == 0 {
		o.Marker.PmaxPPM = DefaultPmaxPPM
	}
	if o.DCQCN == (flowctl.DCQCNParams{}) {
		o.DCQCN = flowctl.LabDCQCNParams()
	}
	if err := o.DCQCN.Validate(); err != nil {
		return fmt.Errorf("incast: dcqcn: %w", err)
	}
	if o.Delay.TargetDelay == 0 {
		o.Delay.TargetDelay = DefaultDelayTarget
	}
	if o.Delay.InitWindow == 0 {
		o.Delay.InitWindow = DefaultDelayInitWindow
	}
	if _, err := flowctl.NewDelay(o.Delay); err != nil {
		return fmt.Errorf("incast: delay: %w", err)
	}
	if o.LineRate == 0 {
		o.LineRate = DefaultLineRate
	}
	if len(o.Modes) == 0 {
		o.Modes = []string{ModeOff, ModeDCQCN, ModeDelay}
	}
	for _, m := range o.Modes {
		if m != ModeOff && m != ModeDCQCN && m != ModeDelay {
			return fmt.Errorf("incast: mode %q (want off, dcqcn or delay)", m)
		}
	}
	if o.Incast.MTU == 0 {
		o.Incast.MTU = rdma.MTU2048
	}
	if o.Incast.Size == 0 {
		o.Incast.Size = 64 << 10
	}
	if o.Incast.Duration == 0 {
		o.Incast.Duration = 3 * time.Second
	}
	if o.CMPort == 0 {
		o.CMPort = DefaultCMPort
	}
	return nil
}

func (o *Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "bench incast: "+format+"\n", args...)
	}
}

// runMode opens fresh devices (so every counter starts at zero), runs the
// incast and reads the counters.
func (o *Options) runMode(ctx context.Context, l *lab.Lab, mode string, marker *bpf.ECNMarker) (RunResult, error) {
	r := RunResult{Mode: mode, FlowControl: rocev2.FlowControlNone}
	// The receiver is the notification point in every run: its CNP
	// spacing and DSCP come from the DCQCN parameters.
	np := rocev2.FlowControlOptions{Kind: rocev2.FlowControlDCQCN, DCQCN: o.DCQCN, LineRate: o.LineRate}
	var fc rocev2.FlowControlOptions
	switch mode {
	case ModeDCQCN:
		fc = np
	case ModeDelay:
		fc = rocev2.FlowControlOptions{Kind: rocev2.FlowControlDelay, Delay: o.Delay, LineRate: o.LineRate}
	}
	if fc.Kind != "" {
		r.FlowControl = fc.Kind
	}
	devs := make([]*rocev2.Device, o.Senders+1)
	defer func() {
		for _, d := range devs {
			if d != nil {
				d.Close()
			}
		}
	}()
	for i := range devs {
		h := &l.Hosts[i]
		eo := rocev2.Options{}
		if i > 0 {
			eo.FlowControl = fc
		} else {
			eo.FlowControl = np
		}
		if err := h.Do(func() error {
			var err error
			devs[i], err = stack.OpenRDMA(stack.RDMAOptions{Addr: h.Addr.Addr(), Transport: o.Port.Transport, Port: o.Port, Engine: eo})
			return err
		}); err != nil {
			return r, fmt.Errorf("incast: open rocev2 on %s: %w", h.Name, err)
		}
	}
	flows := make([]bench.IncastFlow, o.Senders)
	recvHost := &l.Hosts[0]
	for i := range flows {
		addr := net.JoinHostPort(recvHost.Addr.Addr().String(), strconv.Itoa(o.CMPort+i))
		sh := &l.Hosts[i+1]
		flows[i] = bench.IncastFlow{
			Sender:   bench.RDMASide{Device: devs[i+1], Connect: connectIn(sh, addr, cm.Dial)},
			Receiver: bench.RDMASide{Device: devs[0], Connect: connectIn(recvHost, addr, cm.Listen)},
		}
	}
	var m0 bpf.ECNCounters
	if marker != nil {
		var err error
		if m0, err = marker.Counters(); err != nil {
			return r, err
		}
	}
	q0, err := l.BottleneckStats(0)
	if err != nil {
		return r, err
	}
	o.progress("%s: %d senders, flow control %s, %s WRITEs for %v...", mode, o.Senders, r.FlowControl,
		lab.FormatSize(uint64(o.Incast.Size)), o.Incast.Duration)
	io := o.Incast
	rates := make([]rateSampler, o.Senders)
	io.OnStart = func(qpns []uint32, stop <-chan struct{}) {
		for i, qpn := range qpns {
			rates[i].done = make(chan struct{}) // before the goroutine: wait reads it
			go rates[i].run(devs[i+1], qpn, stop)
		}
	}
	res, err := bench.Incast(ctx, flows, io)
	if err != nil {
		return r, fmt.Errorf("incast %s: %w", mode, err)
	}
	r.IncastResult = res
	r.Utilization = res.AggregateGbps * 1e9 / float64(o.BottleneckBps)
	q1, err := l.BottleneckStats(0)
	if err != nil {
		return r, err
	}
	r.Bottleneck = lab.QdiscStats{Packets: q1.Packets - q0.Packets, Bytes: q1.Bytes - q0.Bytes, Drops: q1.Drops - q0.Drops,
		Overlimits: q1.Overlimits - q0.Overlimits, BacklogBytes: q1.BacklogBytes, BacklogPackets: q1.BacklogPackets}
	if marker != nil {
		m1, err := marker.Counters()
		if err != nil {
			return r, err
		}
		r.Marker = bpf.ECNCounters{Packets: m1.Packets - m0.Packets, Bytes: m1.Bytes - m0.Bytes, ECT: m1.ECT - m0.ECT,
			CEMarked: m1.CEMarked - m0.CEMarked, NotECTOver: m1.NotECTOver - m0.NotECTOver,
			AlreadyCE: m1.AlreadyCE - m0.AlreadyCE, ParseSkipped: m1.ParseSkipped - m0.ParseSkipped}
	}
	if x, ok := devs[0].Port().(*dataplane.AFXDPPort); ok {
		if xs, err := x.XDPStats(); err == nil {
			r.ReceiverDrops = xs.Rx_dropped + xs.Rx_ring_full + xs.Rx_fill_ring_empty_descs
		}
	}
	rs := devs[0].Stats()
	r.CERcvd, r.CNPsSent, r.Duplicates = rs.CERcvd.Load(), rs.CNPsSent.Load(), rs.DuplicateRequests.Load()
	for i, f := range res.Flows {
		s := devs[i+1].Stats()
		r.Senders = append(r.Senders, FlowCounters{Flow: i, Host: l.Hosts[i+1].Name, Gbps: f.Gbps,
			Retransmits: s.Retransmits.Load(), Timeouts: s.Timeouts.Load(), SeqNAKs: s.SeqNAKsRcvd.Load(), CNPs: s.CNPsRcvd.Load(),
			MeanRateGbps: rates[i].mean() / 1e9, FinalRateGbps: rates[i].last() / 1e9})
	}
	o.progress("%s: aggregate %.3f Gbit/s (%.0f %% of the bottleneck), jain %.3f, %d drops, %d CE marks, %d CNPs",
		mode, res.AggregateGbps, 100*r.Utilization, res.Jain, r.Bottleneck.Drops, r.Marker.CEMarked, r.CNPsSent)
	return r, nil
}

// connectIn runs a cm exchange (cm.Listen or cm.Dial) inside host h.
func connectIn(h *lab.Host, addr string, fn func(context.Context, string, cm.Endpoint, cm.Options) (cm.Endpoint, error)) func(context.Context, cm.Endpoint, cm.Options) (cm.Endpoint, error) {
	return func(ctx context.Context, local cm.Endpoint, co cm.Options) (remote cm.Endpoint, err error) {
		err = h.Do(func() error {
			var err error
			remote, err = fn(ctx, addr, local, co)
			return err
		})
		return remote, err
	}
}
