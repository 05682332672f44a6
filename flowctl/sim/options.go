package sim

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/opennetworks/onetdp/flowctl"
)

// ErrBadOptions is wrapped by Run when Options cannot be simulated.
var ErrBadOptions = errors.New("sim: bad options")

// CC names the congestion controller every sender runs.
type CC int

const (
	// CCNone sends at the line rate with no controller.
	CCNone CC = iota
	// CCDCQCN runs flowctl.DCQCN with Options.DCQCN.
	CCDCQCN
	// CCDelay runs flowctl.Delay with Options.DelayCC.
	CCDelay
)

// String is the CLI name: none, dcqcn or delay.
func (c CC) String() string {
	switch c {
	case CCNone:
		return "none"
	case CCDCQCN:
		return "dcqcn"
	case CCDelay:
		return "delay"
	}
	return fmt.Sprintf("cc(%d)", int(c))
}

// ParseCC reads none, dcqcn or delay (case-insensitive).
func ParseCC(s string) (CC, error) {
	switch strings.ToLower(s) {
	case "none", "":
		return CCNone, nil
	case "dcqcn":
		return CCDCQCN, nil
	case "delay", "swift":
		return CCDelay, nil
	}
	return 0, fmt.Errorf("congestion control %q (want none, dcqcn or delay): %w", s, ErrBadOptions)
}

// Marking is the RED-style ECN marking at the bottleneck, on the
// instantaneous queue depth including the departing packet.
type Marking struct {
	KminBytes int     // below: never mark
	KmaxBytes int     // at or above: always mark; 0 turns marking off
	Pmax      float64 // marking probability just below Kmax, [0, 1]
}

// Options describe one simulation. The value is plain data owned by the
// caller; Run does not keep it. Zero fields take the defaults given.
type Options struct {
	// Flows is the number of senders, 1..4096. Required.
	Flows int
	// BottleneckRate is the bottleneck link rate, bits/s. Required.
	BottleneckRate float64
	// LineRate is each sender's NIC rate and the DCQCN cap, bits/s;
	// default BottleneckRate.
	LineRate float64
	// BufferBytes is the bottleneck buffer (tail drop); default 1 MiB.
	BufferBytes int
	// Marking is the ECN marking at the bottleneck; zero = no marking.
	Marking Marking
	// Delay is the one-way propagation delay (bottleneck to receiver and
	// receiver to sender each take it); default 5µs.
	Delay time.Duration
	// FlowDelays, when not nil, gives flow i the one-way delay
	// FlowDelays[i] (0 entries take Delay); at most Flows entries.
	FlowDelays []time.Duration
	// FlowStarts, when not nil, starts flow i at FlowStarts[i] (missing
	// entries start at 0); at most Flows entries.
	FlowStarts []time.Duration
	// PacketBytes is the size of every packet on the wire; default 1024.
	PacketBytes int
	// CC is the controller of every sender.
	CC CC
	// DCQCN are the reaction-point parameters for CCDCQCN (zero value:
	// flowctl.DefaultDCQCNParams); MinTimeBetweenCNPs also drives the
	// receiver's CNP limiter.
	DCQCN flowctl.DCQCNParams
	// DelayCC configures CCDelay (zero fields: flowctl's defaults).
	DelayCC flowctl.DelayOptions
	// Duration is the simulated time; required.
	Duration time.Duration
	// WarmUp is excluded from utilization, fairness, goodput and queue
	// percentiles; default Duration/5.
	WarmUp time.Duration
	// SampleInterval is the time-series step; default Duration/1000, at
	// least 1µs.
	SampleInterval time.Duration
	// ConvergenceTolerance is the allowed relative distance from the fair
	// share; default 0.1.
	ConvergenceTolerance float64
	// ConvergenceWindow smooths per-flow goodput for the convergence test;
	// default 20 sample intervals.
	ConvergenceWindow time.Duration
	// Seed seeds the marking RNG.
	Seed uint64
	// Progress, when not nil, is called with the simulated time reached
	// about every 1/100 of Duration (for a progress bar).
	Progress func(done, total time.Duration)
}

func (o *Options) setDefaults() error {
	if o.LineRate == 0 {
		o.LineRate = o.BottleneckRate
	}
	if o.BufferBytes == 0 {
		o.BufferBytes = 1 << 20
	}
	if o.Delay == 0 {
		o.Delay = 5 * time.Microsecond
	}
	if o.PacketBytes == 0 {
		o.PacketBytes = 1024
	}
	if o.WarmUp == 0 {
		o.WarmUp = o.Duration / 5
	}
	if o.SampleInterval == 0 {
		o.SampleInterval = max(o.Duration/1000, time.Microsecond)
	}
	if o.ConvergenceTolerance == 0 {
		o.ConvergenceTolerance = 0.1
	}
	if o.ConvergenceWindow == 0 {
		o.ConvergenceWindow = 20 * o.SampleInterval
	}
	if o.DCQCN == (flowctl.DCQCNParams{}) {
		o.DCQCN = flowctl.DefaultDCQCNParams()
	}
	bad := func(what string, v any) error {
		return fmt.Errorf("sim %s %v: %w", what, v, ErrBadOptions)
	}
	finitePos := func(x float64) bool { return x > 0 && !math.IsInf(x, 0) }
	m := o.Marking
	switch {
	case o.Flows < 1 || o.Flows > 4096:
		return bad("flows", o.Flows)
	case !finitePos(o.BottleneckRate):
		return bad("bottleneck rate", o.BottleneckRate)
	case !finitePos(o.LineRate):
		return bad("line rate", o.LineRate)
	case o.PacketBytes < 64 || o.PacketBytes > 1<<16:
		return bad("packet bytes", o.PacketBytes)
	case o.BufferBytes < o.PacketBytes:
		return bad("buffer bytes (less than one packet)", o.BufferBytes)
	case o.Delay < 0:
		return bad("delay", o.Delay)
	case o.Duration <= 0 || o.Duration > time.Hour:
		return bad("duration", o.Duration)
	case o.WarmUp < 0 || o.WarmUp >= o.Duration:
		return bad("warm-up", o.WarmUp)
	case o.SampleInterval <= 0 || o.Duration/o.SampleInterval > 10_000_000:
		return bad("sample interval", o.SampleInterval)
	case !(o.ConvergenceTolerance > 0 && o.ConvergenceTolerance < 1):
		return bad("convergence tolerance", o.ConvergenceTolerance)
	case o.ConvergenceWindow < 0:
		return bad("convergence window", o.ConvergenceWindow)
	case len(o.FlowDelays) > o.Flows:
		return bad("flow delays (more than flows)", len(o.FlowDelays))
	case len(o.FlowStarts) > o.Flows:
		return bad("flow starts (more than flows)", len(o.FlowStarts))
	case m.KminBytes < 0 || m.KmaxBytes < 0 || (m.KmaxBytes > 0 && m.KmaxBytes < m.KminBytes):
		return bad("marking thresholds", fmt.Sprintf("kmin=%d kmax=%d", m.KminBytes, m.KmaxBytes))
	case !(m.Pmax >= 0 && m.Pmax <= 1):
		return bad("marking pmax", m.Pmax)
	case o.CC < CCNone || o.CC > CCDelay:
		return bad("cc", o.CC)
	}
	for i, d := range o.FlowDelays {
		if d < 0 {
			return bad(fmt.Sprintf("flow %d delay", i), d)
		}
	}
	for i, s := range o.FlowStarts {
		if s < 0 || s >= o.Duration {
			return bad(fmt.Sprintf("flow %d start", i), s)
		}
	}
	if err := o.DCQCN.Validate(); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

func (o *Options) flowDelay(i int) time.Duration {
	if i < len(o.FlowDelays) && o.FlowDelays[i] > 0 {
		return o.FlowDelays[i]
	}
	return o.Delay
}

func (o *Options) flowStart(i int) time.Duration {
	if i < len(o.FlowStarts) {
		return o.FlowStarts[i]
	}
	return 0
}
