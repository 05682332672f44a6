package sim

import (
	"time"
)

// Summary is the outcome of one Run. Plain data, owned by the caller.
type Summary struct {
	CC       string        // controller name (none, dcqcn, delay)
	Flows    int           // number of senders
	Duration time.Duration // simulated time
	WarmUp   time.Duration // excluded from the window measurements

	// Utilization is the bits the bottleneck delivered in [WarmUp,
	// Duration] over BottleneckRate times that span.
	Utilization float64
	// Jain is Jain's fairness index over GoodputBps (1 is perfectly fair,
	// 1/Flows is one flow taking everything).
	Jain float64
	// GoodputBps is each flow's delivered bits per second in the window.
	GoodputBps []float64
	// FairShareBps is BottleneckRate/Flows.
	FairShareBps float64

	// QueueP50Bytes and QueueP99Bytes are time-weighted percentiles of the
	// bottleneck queue depth over the window: the upper edge of the
	// histogram bin (QueueBinBytes wide) below which the queue spent that
	// fraction of the time. QueueMaxBytes is the largest depth over the run.
	QueueP50Bytes, QueueP99Bytes, QueueMaxBytes, QueueBinBytes int

	// Converged reports whether, from some sample on, every flow's smoothed
	// goodput stayed within the tolerance of the fair share to the end;
	// ConvergenceTime is when that began, counted from the last flow's
	// start.
	Converged       bool
	ConvergenceTime time.Duration

	Drops          uint64 // packets tail-dropped at the bottleneck
	Marks          uint64 // packets marked CE at the bottleneck
	CNPs           uint64 // CNPs that reached senders
	CNPsSuppressed uint64 // CE arrivals the CNP limiters answered with no CNP
	PacketsSent    uint64 // packets the senders sent
	Delivered      uint64 // packets that left the bottleneck
	Events         uint64 // events the simulator processed
}

// Sample is one time-series point.
type Sample struct {
	T          time.Duration // simulated time of the sample
	QueueBytes int           // instantaneous bottleneck queue depth
	Goodput    []float64     // per flow: bits/s delivered in the last interval
	Allowed    []float64     // per flow: the pacing rate (controller's, capped), bits/s; 0 before the start
}

// Series is the time series of one Run, a sample every Interval.
type Series struct {
	Interval time.Duration
	Flows    int
	Samples  []Sample

	convergedAt time.Duration // -1 when not converged
	lastStart   time.Duration
}

// finish computes convergence from the samples: the goodput of every flow,
// averaged over the trailing ConvergenceWindow, must stay within the
// tolerance of the fair share from some sample to the end.
func (se *Series) finish(o *Options) {
	se.convergedAt = -1
	for i := range o.Flows {
		se.lastStart = max(se.lastStart, o.flowStart(i))
	}
	w := max(1, int(o.ConvergenceWindow/o.SampleInterval))
	fair := o.BottleneckRate / float64(o.Flows)
	lo, hi := fair*(1-o.ConvergenceTolerance), fair*(1+o.ConvergenceTolerance)
	n := len(se.Samples)
	sums := make([]float64, o.Flows)
	ok := make([]bool, n) // every flow within bounds at sample k
	for k := range n {
		for i := range o.Flows {
			sums[i] += se.Samples[k].Goodput[i]
			if k >= w {
				sums[i] -= se.Samples[k-w].Goodput[i]
			}
		}
		if se.Samples[k].T < se.lastStart+time.Duration(w)*se.Interval {
			continue
		}
		ok[k] = true
		for i := range o.Flows {
			if avg := sums[i] / float64(w); avg < lo || avg > hi {
				ok[k] = false
				break
			}
		}
	}
	if n == 0 || !ok[n-1] {
		return
	}
	k := n - 1
	for k > 0 && ok[k-1] {
		k--
	}
	se.convergedAt = se.Samples[k].T - se.lastStart
}

func (s *simulator) summary() Summary {
	o := &s.o
	sum := Summary{
		CC: o.CC.String(), Flows: o.Flows, Duration: o.Duration, WarmUp: o.WarmUp,
		FairShareBps:  o.BottleneckRate / float64(o.Flows),
		GoodputBps:    make([]float64, o.Flows),
		QueueBinBytes: s.binBytes,
		QueueMaxBytes: s.qMax,
		Drops:         s.drops, Marks: s.marks,
		PacketsSent: s.sent, Delivered: s.delivered, Events: s.events,
	}
	win := (o.Duration - o.WarmUp).Seconds()
	var total, sq, tot float64
	for i := range s.flows {
		f := &s.flows[i]
		g := float64(f.deliveredWin) * 8 / win
		sum.GoodputBps[i] = g
		total += g
		sq += g * g
		sum.CNPs += f.cnps
		sum.CNPsSuppressed += f.limiter.Suppressed()
	}
	sum.Utilization = total / o.BottleneckRate
	if sq > 0 {
		sum.Jain = total * total / (float64(o.Flows) * sq)
	}
	for _, h := range s.hist {
		tot += h
	}
	sum.QueueP50Bytes = s.percentile(0.50, tot)
	sum.QueueP99Bytes = s.percentile(0.99, tot)
	if s.series.convergedAt >= 0 {
		sum.Converged, sum.ConvergenceTime = true, s.series.convergedAt
	}
	return sum
}

// percentile is the upper edge of the first histogram bin at which the
// cumulative time reaches fraction p of tot.
func (s *simulator) percentile(p, tot float64) int {
	if tot == 0 {
		return 0
	}
	var c float64
	for b, h := range s.hist {
		c += h
		if c >= p*tot {
			return min((b+1)*s.binBytes, s.o.BufferBytes)
		}
	}
	return s.o.BufferBytes
}
