package rocev2

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/opennetworks/onetdp/flowctl"
	"github.com/opennetworks/onetdp/rdma/rocev2/wire"
)

// Congestion control wiring: the engine reports what it sees to a
// flowctl.Controller per QP and obeys its rate (through a flowctl.Pacer)
// and window; the policy lives in flowctl.

// Flow-control kinds (FlowControlOptions.Kind, Device.FlowControl).
const (
	FlowControlNone   = "none"   // no controller: the engine's packet window only
	FlowControlDCQCN  = "dcqcn"  // flowctl.DCQCN reaction point per QP
	FlowControlDelay  = "delay"  // flowctl.Delay (Swift-style) per QP
	FlowControlCustom = "custom" // Options.NewFlowController
)

// ErrFlowControl is wrapped when flow-control options cannot be used.
var ErrFlowControl = errors.New("rocev2: bad flow control options")

// FlowController is the per-QP congestion controller the engine drives; it
// is flowctl.Controller (kept as a name for existing callers).
type FlowController = flowctl.Controller

// FlowControlOptions choose the congestion controller of new QPs. The zero
// value is no flow control, the engine's behaviour without flowctl.
type FlowControlOptions struct {
	// Kind is FlowControlNone (or ""), FlowControlDCQCN or
	// FlowControlDelay.
	Kind string
	// LineRate is the port speed in bits/s, where DCQCN starts and caps;
	// default 100 Gbit/s.
	LineRate float64
	// DCQCN are the NVIDIA-named DCQCN parameters; the zero value means
	// flowctl.DefaultDCQCNParams. With Kind dcqcn, min_time_between_cnps
	// and cnp_dscp also set the notification point's CNP interval and DSCP
	// unless Options.CNPInterval and Options.CNPDSCP are set.
	DCQCN flowctl.DCQCNParams
	// Delay configures the delay-based controller.
	Delay flowctl.DelayOptions
	// PacerBurst is the pacer's burst in bytes; default the larger of 16
	// packets and 400 µs (two timer ticks) at the current rate, so that the
	// transmit goroutine's wake-up granularity does not cap the rate.
	PacerBurst int
}

func (o *FlowControlOptions) normalize() error {
	if o.Kind == "" {
		o.Kind = FlowControlNone
	}
	if o.LineRate == 0 {
		o.LineRate = 100e9
	}
	if !(o.LineRate > 0) || math.IsInf(o.LineRate, 0) {
		return fmt.Errorf("line rate %v: %w", o.LineRate, ErrFlowControl)
	}
	if o.PacerBurst < 0 {
		return fmt.Errorf("pacer burst %d: %w", o.PacerBurst, ErrFlowControl)
	}
	switch o.Kind {
	case FlowControlNone:
	case FlowControlDCQCN:
		if o.DCQCN == (flowctl.DCQCNParams{}) {
			o.DCQCN = flowctl.DefaultDCQCNParams()
		}
		if err := o.DCQCN.Validate(); err != nil {
			return fmt.Errorf("dcqcn: %w: %w", ErrFlowControl, err)
		}
	case FlowControlDelay:
		if _, err := flowctl.NewDelay(o.Delay); err != nil {
			return fmt.Errorf("delay: %w: %w", ErrFlowControl, err)
		}
	default:
		return fmt.Errorf("kind %q: %w", o.Kind, ErrFlowControl)
	}
	return nil
}

// ccConfig is the device's current choice; new QPs read it.
type ccConfig struct {
	mu     sync.RWMutex
	opts   FlowControlOptions
	custom func(qpn uint32) flowctl.Controller
}

func (c *ccConfig) newController(qpn uint32) (flowctl.Controller, string, error) {
	c.mu.RLock()
	o, custom := c.opts, c.custom
	c.mu.RUnlock()
	if custom != nil {
		return custom(qpn), FlowControlCustom, nil
	}
	switch o.Kind {
	case FlowControlDCQCN:
		d, err := flowctl.NewDCQCN(flowctl.DCQCNOptions{Params: o.DCQCN, LineRate: o.LineRate})
		return d, o.Kind, err
	case FlowControlDelay:
		d, err := flowctl.NewDelay(o.Delay)
		return d, o.Kind, err
	}
	return nil, FlowControlNone, nil
}

// FlowControl reports the engine's flow-control choice for new QPs: the
// kind and its parameters (flowctl.DCQCNParams, flowctl.DelayOptions, or
// nil for none and custom). Safe from any goroutine.
func (d *Device) FlowControl() (kind string, params any) {
	d.cc.mu.RLock()
	defer d.cc.mu.RUnlock()
	switch {
	case d.cc.custom != nil:
		return FlowControlCustom, nil
	case d.cc.opts.Kind == FlowControlDCQCN:
		return FlowControlDCQCN, d.cc.opts.DCQCN
	case d.cc.opts.Kind == FlowControlDelay:
		return FlowControlDelay, d.cc.opts.Delay
	}
	return FlowControlNone, nil
}

// FlowControlOptions returns the current options for new QPs.
func (d *Device) FlowControlOptions() FlowControlOptions {
	d.cc.mu.RLock()
	defer d.cc.mu.RUnlock()
	return d.cc.opts
}

// SetFlowControl changes the controller of QPs created from now on (existing
// QPs keep theirs) and replaces a custom Options.NewFlowController. Safe
// from any goroutine.
func (d *Device) SetFlowControl(o FlowControlOptions) error {
	if err := o.normalize(); err != nil {
		return fmt.Errorf("set flow control: %w", err)
	}
	d.cc.mu.Lock()
	d.cc.opts, d.cc.custom = o, nil
	d.cc.mu.Unlock()
	return nil
}

// SetDCQCNParams switches new QPs to DCQCN with p (keeping the line rate
// and pacer burst). QPs that exist keep their reaction point's state and
// parameters; their notification point takes p's min_time_between_cnps
// unless Options.CNPInterval was set.
func (d *Device) SetDCQCNParams(p flowctl.DCQCNParams) error {
	o := d.FlowControlOptions()
	o.Kind, o.DCQCN = FlowControlDCQCN, p
	if err := d.SetFlowControl(o); err != nil {
		return err
	}
	if d.cnpFromParams {
		iv := time.Duration(o.DCQCN.MinTimeBetweenCNPs) * time.Microsecond
		if o.DCQCN == (flowctl.DCQCNParams{}) {
			iv = time.Duration(flowctl.DefaultDCQCNParams().MinTimeBetweenCNPs) * time.Microsecond
		}
		d.qps.each(func(q *queuePair) {
			q.mu.Lock()
			q.cnpLim.Interval = iv
			q.mu.Unlock()
		})
	}
	return nil
}

// QPFlowStats is a QP's flow-control state, read at one instant.
type QPFlowStats struct {
	Kind          string        // FlowControl* kind of this QP's controller
	Rate          float64       // allowed rate, bits/s (0 unlimited)
	Window        int           // allowed bytes in flight (0 unlimited)
	InFlight      int           // unacknowledged request bytes (packets × path MTU)
	PacketWindow  int           // the engine's own packet window
	CNPsRcvd      uint64        // CNPs heard by the reaction point
	CNPsSent      uint64        // CNPs sent by this QP's notification point
	CNPsLimited   uint64        // CE marks that sent no CNP (min_time_between_cnps)
	Losses        uint64        // go-backs reported to the controller
	RTT           time.Duration // last RTT sample (0 none yet)
	RTTSamples    uint64
	SentBytes     uint64 // data bytes reported to the controller
	PacerWaits    uint64 // times the pacer held the QP back
	PacerBurst    int    // bytes
	PacerRate     float64
	DeadlineTicks uint64 // OnTick calls at the controller's deadline
}

// QPFlowStats reports QP qpn's flow-control state; false if no such QP.
// Safe from any goroutine (it takes the QP's lock).
func (d *Device) QPFlowStats(qpn uint32) (QPFlowStats, bool) {
	q := d.qps.get(qpn)
	if q == nil {
		return QPFlowStats{}, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	c := &q.cc
	s := c.stats
	s.Kind = c.kind
	s.PacketWindow = q.wnd
	s.CNPsLimited = q.cnpLim.Suppressed()
	if q.mtu > 0 {
		s.InFlight = int(inFlightPkts(q)) * q.mtu
	}
	if c.ctl != nil {
		s.Rate, s.Window = c.ctl.Rate(), c.ctl.Window()
		s.PacerRate, s.PacerBurst = c.pacer.Rate(), c.pacer.Burst()
	}
	return s, true
}

// EachQPFlowStats calls fn with the flow-control state of every QP (for
// telemetry and the CLI). Safe from any goroutine; fn must not call back
// into the QP.
func (d *Device) EachQPFlowStats(fn func(qpn uint32, s QPFlowStats)) {
	var qpns []uint32
	d.qps.each(func(q *queuePair) { qpns = append(qpns, q.qpn) })
	for _, qpn := range qpns {
		if s, ok := d.QPFlowStats(qpn); ok {
			fn(qpn, s)
		}
	}
}

// qpCC is a QP's flow-control state, guarded by the QP's mutex: the receive
// goroutine (ACKs, NAKs, CNPs), the transmit path (sends, timers) and
// posting goroutines sending inline all drive it under that lock.
type qpCC struct {
	ctl   flowctl.Controller // nil: no flow control
	kind  string
	pacer flowctl.Pacer
	burst int // configured burst (0 automatic)
	last  time.Time
	// RTT samples: the send times of the AckReq packets in flight (first
	// transmissions only), oldest first; an ACK covering some of them
	// samples the newest it covers.
	rtt     [rttRing]rttStamp
	rttHead int
	rttLen  int
	// The request packet nextRequest encoded last (for ccSent).
	txPSN    uint32
	txAckReq bool
	txResend bool
	stats    QPFlowStats
}

// rttRing is how many AckReq send times a QP keeps for RTT samples.
const rttRing = 8

type rttStamp struct {
	psn uint32
	at  time.Time
}

// rttReset forgets the stamps (Karn: no sample across a resend).
func (c *qpCC) rttReset() { c.rttHead, c.rttLen = 0, 0 }

// timerBurst is how much time at the rate the automatic pacer burst covers.
const timerBurst = 2 * timerTick

func (q *queuePair) initCC() error {
	ctl, kind, err := q.dev.cc.newController(q.qpn)
	if err != nil {
		return fmt.Errorf("rocev2: QP flow controller: %w", err)
	}
	q.cc = qpCC{ctl: ctl, kind: kind}
	if kind == FlowControlCustom && ctl == nil {
		q.cc.kind = FlowControlNone
	}
	q.holdAcks.Store(q.cc.kind != FlowControlDelay && q.cc.kind != FlowControlCustom)
	q.cc.burst = q.dev.FlowControlOptions().PacerBurst
	if err := q.cc.pacer.Set(0, 1); err != nil {
		return err
	}
	return nil
}

// clock keeps the controller's time non-decreasing: the goroutines that
// drive it read the clock at different moments before taking the lock.
func (c *qpCC) clock(now time.Time) time.Time {
	if now.Before(c.last) {
		return c.last
	}
	c.last = now
	return now
}

// paceDelay syncs the pacer with the controller's rate and reports how long
// the next data packet of about pkt bytes must wait (0: send now).
func (q *queuePair) paceDelay(now time.Time, pkt int) time.Duration {
	c := &q.cc
	if c.ctl == nil {
		return 0
	}
	rate := c.ctl.Rate()
	burst := c.burst
	if burst == 0 {
		burst = max(16*pkt, int(rate*timerBurst.Seconds()/8))
	}
	if rate != c.pacer.Rate() || burst != c.pacer.Burst() {
		if c.pacer.Set(rate, max(burst, 1)) != nil {
			return 0
		}
	}
	d := c.pacer.Delay(c.clock(now), pkt)
	if d > 0 {
		c.stats.PacerWaits++
	}
	return d
}

// ccSent reports a data packet of n bytes handed to the transmit batch.
func (q *queuePair) ccSent(now time.Time, n int, psn uint32, ackReq, resend bool) {
	c := &q.cc
	if c.ctl == nil {
		return
	}
	now = c.clock(now)
	c.pacer.Reserve(now, n)
	c.ctl.OnSent(now, n)
	c.stats.SentBytes += uint64(n)
	if ackReq && !resend && c.rttLen < rttRing {
		c.rtt[(c.rttHead+c.rttLen)%rttRing] = rttStamp{psn: psn, at: now}
		c.rttLen++
	}
}

// ccAck reports acknowledged packets up to and including psn.
func (q *queuePair) ccAck(now time.Time, pkts int, psn uint32) {
	c := &q.cc
	if c.ctl == nil {
		return
	}
	now = c.clock(now)
	var rtt time.Duration
	for c.rttLen > 0 && wire.PSNDiff(psn, c.rtt[c.rttHead].psn) >= 0 {
		rtt = now.Sub(c.rtt[c.rttHead].at)
		c.rttHead = (c.rttHead + 1) % rttRing
		c.rttLen--
	}
	if rtt > 0 {
		c.stats.RTT = rtt
		c.stats.RTTSamples++
	}
	c.ctl.OnAck(now, pkts*q.mtu, rtt)
}

// ccLoss reports a go-back (sequence NAK, missing READ response, timeout).
func (q *queuePair) ccLoss(now time.Time) {
	c := &q.cc
	if c.ctl == nil {
		return
	}
	c.stats.Losses++
	c.ctl.OnLoss(c.clock(now))
}

// onCNP hears a CNP for q's flow on the receive goroutine.
func (q *queuePair) onCNP(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := &q.cc
	if c.ctl == nil {
		return
	}
	c.stats.CNPsRcvd++
	c.ctl.OnCNP(c.clock(now))
	if c.ctl.Rate() != c.pacer.Rate() {
		q.dev.tx.activate(q) // the transmit path picks the new rate up
	}
}

// ccTick calls OnTick when the controller's deadline has passed; q.mu held.
func (q *queuePair) ccTick(now time.Time) {
	c := &q.cc
	if c.ctl == nil {
		return
	}
	if dl := c.ctl.NextDeadline(); !dl.IsZero() && !now.Before(dl) {
		c.stats.DeadlineTicks++
		c.ctl.OnTick(c.clock(now))
	}
}

// ccWindowOpen reports whether the controller's byte window lets another
// packet go (always when nothing is in flight).
func (q *queuePair) ccWindowOpen() bool {
	c := &q.cc
	if c.ctl == nil {
		return true
	}
	w := c.ctl.Window()
	if w <= 0 {
		return true
	}
	n := inFlightPkts(q)
	return n == 0 || int(n)*q.mtu < w
}

// ackReqSpacing is how many packets may go between two AckReqs: half the
// smaller of the packet window and the controller's byte window, so that a
// small window never stalls waiting for an ACK nobody asked for.
func (q *queuePair) ackReqSpacing() int {
	w := q.wnd
	if c := &q.cc; c.ctl != nil && q.mtu > 0 {
		if b := c.ctl.Window(); b > 0 {
			w = min(w, max(1, b/q.mtu))
		}
	}
	return min(q.dev.opts.AckReqEvery, max(1, w/2))
}

func inFlightPkts(q *queuePair) int32 {
	return max(0, wire.PSNDiff(q.nextPSN, q.oldestPSN()))
}
