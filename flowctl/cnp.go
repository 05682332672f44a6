package flowctl

import "time"

// CNPLimiter is the notification point's per-flow CNP limiter
// (min_time_between_cnps): after a CNP is sent for a flow, CE-marked packets
// of that flow arriving within Interval send none. Keep one per flow (per
// QP), owned by the goroutine that receives the flow's packets. The zero
// value with Interval 0 allows every CNP.
type CNPLimiter struct {
	// Interval is the least time between two CNPs for the flow; set before
	// first use.
	Interval time.Duration

	last    time.Time
	sent    bool
	dropped uint64
}

// NewCNPLimiter returns a limiter with the interval from
// p.MinTimeBetweenCNPs.
func NewCNPLimiter(p DCQCNParams) CNPLimiter {
	return CNPLimiter{Interval: time.Duration(p.MinTimeBetweenCNPs) * time.Microsecond}
}

// Allow reports whether a CE-marked packet arriving at now should trigger a
// CNP, and if so records the CNP as sent.
func (l *CNPLimiter) Allow(now time.Time) bool {
	if l.sent && now.Sub(l.last) < l.Interval {
		l.dropped++
		return false
	}
	l.sent, l.last = true, now
	return true
}

// Suppressed is how many CNPs Allow has refused.
func (l *CNPLimiter) Suppressed() uint64 { return l.dropped }
