package flowctl

import (
	"fmt"
	"math"
	"time"
)

// Pacer releases bytes at a rate with a bounded burst: a token bucket run as
// GCRA (a theoretical arrival time), so over any interval of length t it
// releases at most Burst + Rate*t/8 bytes. It does not allocate. Owned by
// the goroutine that sends the flow's packets.
type Pacer struct {
	rate  float64 // bits/s; 0 = unlimited
	burst int     // bytes
	perB  float64 // ns per byte
	tau   float64 // ns of burst tolerance
	epoch time.Time
	tat   float64 // ns since epoch: when the bucket is full again
	began bool
}

// NewPacer returns a pacer at rate bits/s (0 for unlimited) allowing bursts
// of burst bytes (at least 1).
func NewPacer(rate float64, burst int) (*Pacer, error) {
	p := &Pacer{}
	if err := p.Set(rate, burst); err != nil {
		return nil, err
	}
	return p, nil
}

// Set changes rate (bits/s, 0 unlimited) and burst (bytes) from now on,
// keeping the debt already incurred.
func (p *Pacer) Set(rate float64, burst int) error {
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) || burst < 1 {
		return fmt.Errorf("pacer rate %v burst %d: %w", rate, burst, ErrBadOptions)
	}
	p.rate, p.burst = rate, burst
	if rate > 0 {
		p.perB = 8e9 / rate
		p.tau = float64(burst) * p.perB
	}
	return nil
}

// SetRate changes the rate, keeping the burst; a bad rate is ignored and
// reported false.
func (p *Pacer) SetRate(rate float64) bool { return p.Set(rate, p.burst) == nil }

// Rate is the rate in bits/s (0 unlimited).
func (p *Pacer) Rate() float64 { return p.rate }

// Burst is the burst in bytes.
func (p *Pacer) Burst() int { return p.burst }

func (p *Pacer) at(now time.Time) float64 {
	if !p.began {
		p.began, p.epoch = true, now
	}
	return float64(now.Sub(p.epoch))
}

// start is the earliest instant (ns since epoch) n bytes may leave given
// the bucket is full again at tat: a packet up to the burst may leave once
// the bucket holds it, a larger one only when the bucket is full.
func (p *Pacer) start(tat float64, n int) float64 {
	if n > p.burst {
		return tat
	}
	return tat + float64(n)*p.perB - p.tau
}

// Allow reports whether bytes may leave at now without exceeding the burst,
// and if so charges them.
func (p *Pacer) Allow(now time.Time, bytes int) bool {
	if p.rate == 0 || bytes <= 0 {
		return true
	}
	t := p.at(now)
	tat := math.Max(p.tat, t)
	if p.start(tat, bytes) > t {
		return false
	}
	p.tat = tat + float64(bytes)*p.perB
	return true
}

// Reserve charges bytes now and returns how long to wait before sending
// them (0 when they may leave at once); the caller must then wait that long.
func (p *Pacer) Reserve(now time.Time, bytes int) time.Duration {
	if p.rate == 0 || bytes <= 0 {
		return 0
	}
	t := p.at(now)
	tat := math.Max(p.tat, t)
	s := p.start(tat, bytes)
	p.tat = tat + float64(bytes)*p.perB
	return wait(s, t)
}

// Delay is how long from now until bytes would be allowed (0 if now),
// charging nothing.
func (p *Pacer) Delay(now time.Time, bytes int) time.Duration {
	if p.rate == 0 || bytes <= 0 {
		return 0
	}
	t := p.at(now)
	return wait(p.start(math.Max(p.tat, t), bytes), t)
}

func wait(start, t float64) time.Duration {
	if start <= t {
		return 0
	}
	return time.Duration(math.Ceil(start - t))
}
