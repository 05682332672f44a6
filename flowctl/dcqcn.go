package flowctl

import (
	"fmt"
	"math"
	"time"
)

// DCQCNOptions configure a DCQCN reaction point.
type DCQCNOptions struct {
	// Params are the NIC-style parameters; the zero value means
	// DefaultDCQCNParams.
	Params DCQCNParams
	// LineRate is the port speed in bits/s: the rate a flow starts at and
	// the cap (together with rpg_max_rate). Required.
	LineRate float64
}

// DCQCNStats counts what a reaction point did. Plain integers: read them
// from the goroutine that drives the DCQCN.
type DCQCNStats struct {
	CNPs         uint64 // CNPs heard
	Decreases    uint64 // rate decreases applied (at most one per rate_reduce_monitor_period)
	FastRecovery uint64 // fast-recovery increase events
	Additive     uint64 // additive-increase events
	Hyper        uint64 // hyper-increase events
	Releases     uint64 // times the flow climbed back to the cap and left the limiter
}

// DCQCN is the DCQCN reaction point (Zhu et al., "Congestion Control for
// Large-Scale RDMA Deployments", SIGCOMM 2015, §3.1 and Fig. 6) with the
// refinements NVIDIA documents for ConnectX firmware ("DCQCN CC Algorithm"
// and "DCQCN CC Parameters"):
//
//   - A flow runs unlimited at the line rate until its first CNP. The first
//     CNP allocates the limiter: alpha = initial_alpha_value/1024, target =
//     current = cap (or rate_to_set_on_first_cnp, which then replaces the
//     decrease).
//   - Decrease: at most one per rate_reduce_monitor_period; a CNP arriving
//     sooner is remembered and causes one decrease when the period ends.
//     current *= max(1 - alpha*1024/2^rpg_gd, rpg_min_dec_fac/100), not
//     below rpg_min_rate. The target becomes the old current rate on the
//     first CNP, always if clamp_tgt_rate, else only if the timer (any
//     counter when clamp_tgt_rate_after_time_inc is 0) raised the rate
//     since the last decrease. The decrease resets the byte counter, both
//     stage counters and the timer.
//   - Alpha: every dce_tcp_rtt, alpha = G*alpha + (1-G) if a CNP arrived
//     in the period, else G*alpha, with G = dce_tcp_g/1024 (the paper's
//     1-g). A decrease uses alpha as it stands before its own CNP's update,
//     as in the paper.
//   - Increase: each rpg_byte_reset bytes sent is a byte stage, each
//     rpg_time_reset without a decrease a time stage. With B and T the stage
//     counts including the one just completed and F = rpg_threshold: fast
//     recovery while max(B,T) <= F (current = (current+target)/2); hyper
//     increase once min(B,T) > F (target += i*rpg_hai_rate with i =
//     min(B,T)-F, as QCN's HAI); additive increase otherwise (target +=
//     rpg_ai_rate); then current = (current+target)/2, both capped. A
//     disabled byte counter stays at 0, so hyper increase never happens.
//   - When current and target are back at the cap the limiter is released
//     and the next CNP is a first CNP again.
//
// The firmware works in 10-bit fixed point; this works in float64.
// A DCQCN is owned by one goroutine (the one driving its flow).
type DCQCN struct {
	p DCQCNParams

	capRate, minRate, aiRate, haiRate, firstRate float64
	keep, gdScale, minFac                        float64
	timeReset, alphaPeriod, reducePeriod         time.Duration

	limited      bool
	rate, target float64
	alpha        float64
	alphaCNP     bool      // a CNP arrived in the current alpha period
	alphaNext    time.Time // end of the current alpha period
	pending      bool      // a CNP awaits a decrease
	lastDecrease time.Time
	timerNext    time.Time
	byteCount    uint64
	byteStage    int
	timeStage    int

	stats DCQCNStats
}

// NewDCQCN makes a reaction point for one flow.
func NewDCQCN(opts DCQCNOptions) (*DCQCN, error) {
	if opts.Params == (DCQCNParams{}) {
		opts.Params = DefaultDCQCNParams()
	}
	p := opts.Params
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("new dcqcn: %w", err)
	}
	if !(opts.LineRate > 0) || math.IsInf(opts.LineRate, 0) {
		return nil, fmt.Errorf("new dcqcn: line rate %v: %w", opts.LineRate, ErrBadOptions)
	}
	const mbps = 1e6
	d := &DCQCN{
		p:            p,
		capRate:      opts.LineRate,
		minRate:      float64(p.RPGMinRate) * mbps,
		aiRate:       float64(p.RPGAIRate) * mbps,
		haiRate:      float64(p.RPGHAIRate) * mbps,
		firstRate:    float64(p.RateToSetOnFirstCNP) * mbps,
		keep:         float64(p.DCETCPG) / 1024,
		gdScale:      math.Ldexp(1024, -int(p.RPGGD)),
		minFac:       float64(p.RPGMinDecFac) / 100,
		timeReset:    time.Duration(p.RPGTimeReset) * time.Microsecond,
		alphaPeriod:  time.Duration(p.DCETCPRTT) * time.Microsecond,
		reducePeriod: time.Duration(p.RateReduceMonitorPeriod) * time.Microsecond,
	}
	if p.RPGMaxRate != 0 {
		d.capRate = math.Min(d.capRate, float64(p.RPGMaxRate)*mbps)
	}
	d.minRate = math.Min(d.minRate, d.capRate)
	d.rate, d.target = d.capRate, d.capRate
	return d, nil
}

// Params returns the parameters the reaction point runs with.
func (d *DCQCN) Params() DCQCNParams { return d.p }

// Stats returns the counters.
func (d *DCQCN) Stats() DCQCNStats { return d.stats }

// Limited reports whether the flow is under the rate limiter (has had a CNP
// and not yet climbed back to the cap).
func (d *DCQCN) Limited() bool { return d.limited }

// Alpha is the congestion estimate as of the last event (0..1).
func (d *DCQCN) Alpha() float64 { return d.alpha }

// TargetRate is the target rate in bits/s.
func (d *DCQCN) TargetRate() float64 { return d.target }

// Rate is the current rate in bits/s (the cap while not limited).
func (d *DCQCN) Rate() float64 { return d.rate }

// Window is always 0: DCQCN is rate based.
func (d *DCQCN) Window() int { return 0 }

// NextDeadline is when a remembered CNP's decrease or the next time stage
// is due; zero when the flow is not limited.
func (d *DCQCN) NextDeadline() time.Time {
	if !d.limited {
		return time.Time{}
	}
	if d.pending {
		if at := d.lastDecrease.Add(d.reducePeriod); at.Before(d.timerNext) {
			return at
		}
	}
	return d.timerNext
}

// OnCNP hears a CNP for the flow.
func (d *DCQCN) OnCNP(now time.Time) {
	d.advance(now)
	d.stats.CNPs++
	if !d.limited {
		d.first(now)
		return
	}
	d.alphaCNP = true
	if now.Sub(d.lastDecrease) >= d.reducePeriod {
		d.decrease(now)
	} else {
		d.pending = true
	}
}

// OnSent counts bytes against rpg_byte_reset.
func (d *DCQCN) OnSent(now time.Time, bytes int) {
	d.advance(now)
	if !d.limited || bytes <= 0 || d.p.RPGByteReset == 0 {
		return
	}
	d.byteCount += uint64(bytes)
	for d.limited && d.byteCount >= uint64(d.p.RPGByteReset) {
		d.byteCount -= uint64(d.p.RPGByteReset)
		d.byteStage++
		d.increase()
	}
}

// OnAck lets time pass; DCQCN takes no RTT samples.
func (d *DCQCN) OnAck(now time.Time, _ int, _ time.Duration) { d.advance(now) }

// OnCE lets time pass: a reaction point hears CNPs, not CE marks (the
// notification point turns those into CNPs).
func (d *DCQCN) OnCE(now time.Time) { d.advance(now) }

// OnLoss lets time pass: DCQCN does not react to loss.
func (d *DCQCN) OnLoss(now time.Time) { d.advance(now) }

// OnTick runs the alpha updates, remembered decreases and time stages due by
// now.
func (d *DCQCN) OnTick(now time.Time) { d.advance(now) }

// first handles the first CNP of a flow (limiter allocation).
func (d *DCQCN) first(now time.Time) {
	d.limited = true
	d.alpha = float64(d.p.InitialAlphaValue) / 1024
	d.alphaCNP = false
	d.alphaNext = now.Add(d.alphaPeriod)
	d.rate, d.target = d.capRate, d.capRate
	if d.firstRate > 0 {
		d.rate = math.Max(math.Min(d.firstRate, d.capRate), d.minRate)
		d.target = d.rate
		d.stats.Decreases++
		d.resetIncrease(now)
		return
	}
	d.decreaseBy(now, true)
}

// decrease applies one rate decrease at time at.
func (d *DCQCN) decrease(at time.Time) { d.decreaseBy(at, false) }

func (d *DCQCN) decreaseBy(at time.Time, first bool) {
	clamp := first || d.p.ClampTgtRate != 0
	if !clamp {
		if d.p.ClampTgtRateAfterTimeInc != 0 {
			clamp = d.timeStage > 0
		} else {
			clamp = d.timeStage > 0 || d.byteStage > 0
		}
	}
	if clamp {
		d.target = d.rate
	}
	f := math.Max(1-d.alpha*d.gdScale, d.minFac)
	d.rate = math.Max(d.rate*f, d.minRate)
	d.stats.Decreases++
	d.resetIncrease(at)
}

func (d *DCQCN) resetIncrease(at time.Time) {
	d.pending = false
	d.lastDecrease = at
	d.byteCount, d.byteStage, d.timeStage = 0, 0, 0
	d.timerNext = at.Add(d.timeReset)
}

// increase runs one rate-increase event after a stage completed.
func (d *DCQCN) increase() {
	f := int(d.p.RPGThreshold)
	hi, lo := max(d.byteStage, d.timeStage), min(d.byteStage, d.timeStage)
	switch {
	case hi <= f:
		d.stats.FastRecovery++
	case lo > f:
		d.target += float64(lo-f) * d.haiRate
		d.stats.Hyper++
	default:
		d.target += d.aiRate
		d.stats.Additive++
	}
	d.target = math.Min(d.target, d.capRate)
	d.rate = math.Min((d.rate+d.target)/2, d.capRate)
	if d.rate >= d.capRate && d.target >= d.capRate {
		d.release()
	}
}

// release leaves the limited state: the flow is back at the cap.
func (d *DCQCN) release() {
	d.limited = false
	d.pending = false
	d.rate, d.target = d.capRate, d.capRate
	d.stats.Releases++
}

// advance processes, in time order, every alpha update, remembered
// decrease and time stage due at or before now. At equal instants the alpha
// update comes first, then the decrease (which cancels a coinciding time
// stage by restarting the timer).
func (d *DCQCN) advance(now time.Time) {
	for d.limited {
		decAt, hasDec := d.lastDecrease.Add(d.reducePeriod), d.pending
		next := d.timerNext
		if hasDec && decAt.Before(next) {
			next = decAt
		}
		if !d.alphaNext.After(now) && !d.alphaNext.After(next) {
			d.alphaStep(minTime(now, next))
			continue
		}
		if next.After(now) {
			return
		}
		if hasDec && !decAt.After(d.timerNext) {
			d.decrease(decAt)
			continue
		}
		d.timerNext = d.timerNext.Add(d.timeReset)
		d.timeStage++
		d.increase()
	}
}

// alphaStep applies the alpha update ending at alphaNext, and, when no CNP
// is outstanding, every further decay-only update up to limit at once.
func (d *DCQCN) alphaStep(limit time.Time) {
	if d.alphaCNP {
		d.alpha = d.keep*d.alpha + (1 - d.keep)
		d.alphaCNP = false
		d.alphaNext = d.alphaNext.Add(d.alphaPeriod)
		return
	}
	n := int64(limit.Sub(d.alphaNext)/d.alphaPeriod) + 1
	d.alpha *= math.Pow(d.keep, float64(n))
	d.alphaNext = d.alphaNext.Add(time.Duration(n) * d.alphaPeriod)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
