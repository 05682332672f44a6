package flowctl

import (
	"fmt"
	"math"
	"time"
)

// DelayOptions configure a Delay controller. Zero fields take the defaults
// given with them.
type DelayOptions struct {
	// TargetDelay is the RTT the controller steers to; default 50µs.
	TargetDelay time.Duration
	// AIBytes is the additive increase per RTT, bytes; default 4096.
	AIBytes float64
	// Beta scales the multiplicative decrease, (0, 1]; default 0.8.
	Beta float64
	// MaxMDF is the largest fraction one decrease removes, (0, 1);
	// default 0.5.
	MaxMDF float64
	// MinWindow and MaxWindow bound the window, bytes; defaults 4096 and
	// 16 MiB.
	MinWindow, MaxWindow float64
	// InitWindow is the starting window, bytes; default MaxWindow/16,
	// at least MinWindow.
	InitWindow float64
}

func (o *DelayOptions) setDefaults() error {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	if o.TargetDelay == 0 {
		o.TargetDelay = 50 * time.Microsecond
	}
	def(&o.AIBytes, 4096)
	def(&o.Beta, 0.8)
	def(&o.MaxMDF, 0.5)
	def(&o.MinWindow, 4096)
	def(&o.MaxWindow, 16<<20)
	def(&o.InitWindow, math.Max(o.MaxWindow/16, o.MinWindow))
	switch {
	case o.TargetDelay < 0, !(o.AIBytes > 0), !(o.Beta > 0 && o.Beta <= 1),
		!(o.MaxMDF > 0 && o.MaxMDF < 1), !(o.MinWindow > 0),
		!(o.MaxWindow >= o.MinWindow), math.IsInf(o.MaxWindow, 0),
		!(o.InitWindow >= o.MinWindow && o.InitWindow <= o.MaxWindow):
		return fmt.Errorf("new delay controller: %+v: %w", *o, ErrBadOptions)
	}
	return nil
}

// DelayStats counts what a Delay controller did; read from its owner.
type DelayStats struct {
	Increases uint64 // ACKs that grew the window
	Decreases uint64 // multiplicative decreases (delay or loss)
	Held      uint64 // over-target samples that could not decrease (within an RTT of the last)
}

// Delay is a Swift-style delay-based window controller (Kumar et al.,
// "Swift: Delay is Simple and Effective for Congestion Control in the
// Datacenter", SIGCOMM 2020, Algorithm 1), with the window in bytes:
//
//   - An ACK whose RTT sample is below TargetDelay grows the window by
//     AIBytes*acked/window (AIBytes per window's worth of ACKs, i.e. per RTT).
//   - A sample at or above the target shrinks it by the factor
//     max(1 - Beta*(rtt-target)/rtt, 1-MaxMDF), at most once per RTT (the
//     latest sample) since the last decrease.
//   - A loss shrinks it by 1-MaxMDF under the same once-per-RTT rule.
//
// The window stays within [MinWindow, MaxWindow]. Rate is window/RTT for a
// pacer. Owned by the goroutine that drives the flow.
type Delay struct {
	o            DelayOptions
	cwnd         float64
	rtt          time.Duration
	lastDecrease time.Time
	decreased    bool
	stats        DelayStats
}

// NewDelay makes a delay-based controller for one flow.
func NewDelay(opts DelayOptions) (*Delay, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	return &Delay{o: opts, cwnd: opts.InitWindow}, nil
}

// Options returns the options in effect (defaults filled in).
func (c *Delay) Options() DelayOptions { return c.o }

// Stats returns the counters.
func (c *Delay) Stats() DelayStats { return c.stats }

// WindowBytes is the window as a float, bytes.
func (c *Delay) WindowBytes() float64 { return c.cwnd }

// Window is the window in whole bytes.
func (c *Delay) Window() int { return int(c.cwnd) }

// Rate is window*8/RTT bits/s from the latest sample; 0 (unpaced) before
// the first sample.
func (c *Delay) Rate() float64 {
	if c.rtt <= 0 {
		return 0
	}
	return c.cwnd * 8 / c.rtt.Seconds()
}

// NextDeadline is always zero: the controller changes only on events.
func (c *Delay) NextDeadline() time.Time { return time.Time{} }

// OnAck applies one RTT sample; acks without a sample (rtt <= 0) do nothing.
func (c *Delay) OnAck(now time.Time, ackedBytes int, rtt time.Duration) {
	if rtt <= 0 {
		return
	}
	c.rtt = rtt
	if rtt < c.o.TargetDelay {
		if ackedBytes > 0 {
			c.cwnd += c.o.AIBytes * float64(ackedBytes) / c.cwnd
			c.stats.Increases++
		}
	} else {
		d := float64(rtt-c.o.TargetDelay) / float64(rtt)
		c.decrease(now, math.Max(1-c.o.Beta*d, 1-c.o.MaxMDF))
	}
	c.clamp()
}

// OnLoss cuts the window by MaxMDF, at most once per RTT.
func (c *Delay) OnLoss(now time.Time) {
	c.decrease(now, 1-c.o.MaxMDF)
	c.clamp()
}

func (c *Delay) decrease(now time.Time, f float64) {
	if c.decreased && now.Sub(c.lastDecrease) < c.rtt {
		c.stats.Held++
		return
	}
	c.cwnd *= f
	c.decreased, c.lastDecrease = true, now
	c.stats.Decreases++
}

func (c *Delay) clamp() { c.cwnd = math.Min(math.Max(c.cwnd, c.o.MinWindow), c.o.MaxWindow) }

// OnSent does nothing: the window counts acknowledgements.
func (c *Delay) OnSent(time.Time, int) {}

// OnCNP does nothing: this controller reads delay, not marks.
func (c *Delay) OnCNP(time.Time) {}

// OnCE does nothing: this controller reads delay, not marks.
func (c *Delay) OnCE(time.Time) {}

// OnTick does nothing.
func (c *Delay) OnTick(time.Time) {}
