package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Congestion warning kinds (the kind label of onet_congestion_warning).
const (
	CongestionCE         = "ce"         // CE-marked share of received packets
	CongestionRing       = "ring"       // AF_XDP rx ring occupancy high and not falling
	CongestionRetransmit = "retransmit" // retransmitted share of sent packets
)

// CongestionKinds lists the warning kinds, in order.
var CongestionKinds = []string{CongestionCE, CongestionRing, CongestionRetransmit}

// Defaults of CongestionThresholds.
const (
	DefaultCERatioThreshold         = 0.01
	DefaultRingOccupancyThreshold   = 0.5
	DefaultRetransmitRatioThreshold = 0.001
	DefaultCongestionMinPackets     = 100
)

// ErrInvalidThresholds: CongestionThresholds out of range.
var ErrInvalidThresholds = errors.New("invalid congestion thresholds")

// CongestionThresholds are the levels above which a CongestionDetector
// warns. A zero field takes its default.
type CongestionThresholds struct {
	// CERatio: warn when more than this share of the packets received in
	// an interval arrived CE-marked (0..1; default 0.01).
	CERatio float64 `json:"ce_ratio,omitempty"`
	// RingOccupancy: warn when the AF_XDP rx rings are at least this full
	// (a share of their size, 0..1; default 0.5) and fuller than or as
	// full as at the previous sample: the receiver falls behind.
	RingOccupancy float64 `json:"ring_occupancy,omitempty"`
	// RetransmitRatio: warn when more than this share of the packets sent
	// in an interval were retransmissions (0..1; default 0.001).
	RetransmitRatio float64 `json:"retransmit_ratio,omitempty"`
	// MinPackets: an interval with fewer received (for CE) or sent (for
	// retransmissions) packets than this keeps the previous verdict, so
	// that a trickle does not flap the warning; default 100.
	MinPackets uint64 `json:"min_packets,omitempty"`
}

// withDefaults fills zero fields and checks the ranges.
func (t CongestionThresholds) withDefaults() (CongestionThresholds, error) {
	def := func(v *float64, d float64, name string) error {
		if *v == 0 {
			*v = d
		}
		if !(*v > 0 && *v <= 1) {
			return fmt.Errorf("%w: %s %v (want a share in (0, 1])", ErrInvalidThresholds, name, *v)
		}
		return nil
	}
	if err := errors.Join(def(&t.CERatio, DefaultCERatioThreshold, "ce ratio"),
		def(&t.RingOccupancy, DefaultRingOccupancyThreshold, "ring occupancy"),
		def(&t.RetransmitRatio, DefaultRetransmitRatioThreshold, "retransmit ratio")); err != nil {
		return t, err
	}
	if t.MinPackets == 0 {
		t.MinPackets = DefaultCongestionMinPackets
	}
	return t, nil
}

// CongestionCounters is one reading of the sources: cumulative counters
// (compared with the previous reading) and the ring occupancy now. A
// source that is absent leaves its Has flag false and is not judged.
type CongestionCounters struct {
	HasCE                 bool
	RxPackets, CEPackets  uint64 // cumulative
	HasRing               bool
	RingEntries, RingSize uint64 // now: descriptors waiting, and capacity
	HasRetransmit         bool
	TxPackets, Retransmit uint64 // cumulative
}

// CongestionWarning is one threshold exceeded.
type CongestionWarning struct {
	Kind      string  `json:"kind"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Message   string  `json:"message"`
}

// CongestionState is the detector's verdict after a sample. Figures of
// absent sources, or not yet computable (the first sample has no
// interval), are nil.
type CongestionState struct {
	At              time.Time `json:"at"`
	IntervalSeconds float64   `json:"interval_seconds"`
	// CERatio is CE-marked / received packets over the interval.
	CERatio *float64 `json:"ce_ratio,omitempty"`
	// RingOccupancy is rx ring entries / ring size now.
	RingOccupancy *float64 `json:"ring_occupancy,omitempty"`
	// RetransmitRatio is retransmitted / sent packets over the interval,
	// RetransmitsPerSecond their rate.
	RetransmitRatio      *float64             `json:"retransmit_ratio,omitempty"`
	RetransmitsPerSecond *float64             `json:"retransmits_per_second,omitempty"`
	Thresholds           CongestionThresholds `json:"thresholds"`
	Warnings             []CongestionWarning  `json:"warnings"`
}

// Warning returns the warning of kind, if raised.
func (s *CongestionState) Warning(kind string) (CongestionWarning, bool) {
	for _, w := range s.Warnings {
		if w.Kind == kind {
			return w, true
		}
	}
	return CongestionWarning{}, false
}

// CongestionDetector turns successive CongestionCounters into congestion
// figures and warnings, computed from the deltas between samples (not
// between scrapes: any number of readers see the same verdict). It is a
// prometheus.Collector:
//
//	onet_congestion_ce_ratio                  CE-marked share of received packets, last interval
//	onet_congestion_ring_occupancy_ratio      AF_XDP rx ring occupancy
//	onet_congestion_retransmit_ratio          retransmitted share of sent packets, last interval
//	onet_congestion_retransmits_per_second
//	onet_congestion_threshold{kind}           the configured thresholds
//	onet_congestion_warning{kind}             1 while kind's threshold is exceeded, else 0
//
// (the figure gauges only for sources present and once an interval has
// passed; onet_congestion_warning for every kind always). Safe for
// concurrent use.
type CongestionDetector struct {
	th CongestionThresholds

	ceRatio, ringRatio, rtxRatio, rtxRate, threshold, warning *prometheus.Desc

	mu       sync.Mutex
	prev     CongestionCounters
	prevAt   time.Time
	havePrev bool
	prevRing float64
	state    CongestionState
}

var _ prometheus.Collector = (*CongestionDetector)(nil)

// CongestionOptions configure NewCongestionDetector. Owned by the caller,
// read once.
type CongestionOptions struct {
	Thresholds CongestionThresholds
	// Labels are constant labels on every metric.
	Labels prometheus.Labels
}

// NewCongestionDetector returns a detector with no samples yet.
func NewCongestionDetector(opts CongestionOptions) (*CongestionDetector, error) {
	th, err := opts.Thresholds.withDefaults()
	if err != nil {
		return nil, err
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "congestion", name), help, labels, opts.Labels)
	}
	return &CongestionDetector{
		th:        th,
		ceRatio:   d("ce_ratio", "Share of the packets received in the last sample interval that arrived CE-marked."),
		ringRatio: d("ring_occupancy_ratio", "AF_XDP rx ring occupancy: descriptors waiting over ring size."),
		rtxRatio:  d("retransmit_ratio", "Share of the packets sent in the last sample interval that were retransmissions."),
		rtxRate:   d("retransmits_per_second", "Retransmitted packets per second over the last sample interval."),
		threshold: d("threshold", "Congestion warning thresholds by kind (ce, ring, retransmit).", "kind"),
		warning:   d("warning", "1 while the kind's congestion threshold is exceeded, else 0.", "kind"),
		state:     CongestionState{Thresholds: th, Warnings: []CongestionWarning{}},
	}, nil
}

// Thresholds returns the thresholds in force (defaults filled in).
func (d *CongestionDetector) Thresholds() CongestionThresholds { return d.th }

// Observe takes a sample at time at and returns the new state. Samples
// should come at a steady interval (Run does that).
func (d *CongestionDetector) Observe(at time.Time, c CongestionCounters) CongestionState {
	d.mu.Lock()
	defer d.mu.Unlock()
	prevState := d.state
	s := CongestionState{At: at, Thresholds: d.th, Warnings: []CongestionWarning{}}
	dt := 0.0
	if d.havePrev {
		dt = at.Sub(d.prevAt).Seconds()
	}
	s.IntervalSeconds = dt
	delta := func(now, before uint64) uint64 {
		if now < before { // a counter reset
			return now
		}
		return now - before
	}
	keep := func(kind string) { // too few packets: the previous verdict stands
		if w, ok := prevState.Warning(kind); ok {
			s.Warnings = append(s.Warnings, w)
		}
	}
	if c.HasCE && d.havePrev && d.prev.HasCE && dt > 0 {
		rx, ce := delta(c.RxPackets, d.prev.RxPackets), delta(c.CEPackets, d.prev.CEPackets)
		if rx > 0 {
			r := float64(ce) / float64(rx)
			s.CERatio = &r
		}
		switch {
		case rx < d.th.MinPackets:
			keep(CongestionCE)
		case *s.CERatio > d.th.CERatio:
			s.Warnings = append(s.Warnings, CongestionWarning{Kind: CongestionCE, Value: *s.CERatio, Threshold: d.th.CERatio,
				Message: fmt.Sprintf("CE ratio %.2f %% above %.2f %%", 100**s.CERatio, 100*d.th.CERatio)})
		}
	}
	ring := math.NaN()
	if c.HasRing && c.RingSize > 0 {
		ring = float64(c.RingEntries) / float64(c.RingSize)
		s.RingOccupancy = &ring
		if ring >= d.th.RingOccupancy && (!d.havePrev || math.IsNaN(d.prevRing) || ring >= d.prevRing) {
			s.Warnings = append(s.Warnings, CongestionWarning{Kind: CongestionRing, Value: ring, Threshold: d.th.RingOccupancy,
				Message: fmt.Sprintf("AF_XDP rx rings %.0f %% full and not draining (threshold %.0f %%)", 100*ring, 100*d.th.RingOccupancy)})
		}
	}
	if c.HasRetransmit && d.havePrev && d.prev.HasRetransmit && dt > 0 {
		tx, rtx := delta(c.TxPackets, d.prev.TxPackets), delta(c.Retransmit, d.prev.Retransmit)
		rate := float64(rtx) / dt
		s.RetransmitsPerSecond = &rate
		if tx > 0 {
			r := float64(rtx) / float64(tx)
			s.RetransmitRatio = &r
		}
		switch {
		case tx < d.th.MinPackets:
			keep(CongestionRetransmit)
		case *s.RetransmitRatio > d.th.RetransmitRatio:
			s.Warnings = append(s.Warnings, CongestionWarning{Kind: CongestionRetransmit, Value: *s.RetransmitRatio, Threshold: d.th.RetransmitRatio,
				Message: fmt.Sprintf("retransmissions %.2f %% of sent packets (%.0f/s), above %.2f %%", 100**s.RetransmitRatio, rate, 100*d.th.RetransmitRatio)})
		}
	}
	d.prev, d.prevAt, d.havePrev, d.prevRing = c, at, true, ring
	d.state = s
	return s.clone()
}

// clone copies the slices and pointers of s, so callers own the result.
func (s CongestionState) clone() CongestionState {
	cp := func(p *float64) *float64 {
		if p == nil {
			return nil
		}
		v := *p
		return &v
	}
	s.CERatio, s.RingOccupancy, s.RetransmitRatio, s.RetransmitsPerSecond = cp(s.CERatio), cp(s.RingOccupancy), cp(s.RetransmitRatio), cp(s.RetransmitsPerSecond)
	s.Warnings = append([]CongestionWarning{}, s.Warnings...)
	return s
}

// State returns the state after the last sample (no figures before the
// first).
func (d *CongestionDetector) State() CongestionState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state.clone()
}

// Run samples read every interval (the first at once) until ctx ends.
func (d *CongestionDetector) Run(ctx context.Context, interval time.Duration, read func() CongestionCounters) {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		d.Observe(time.Now(), read())
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// Describe implements prometheus.Collector.
func (d *CongestionDetector) Describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.ceRatio, d.ringRatio, d.rtxRatio, d.rtxRate, d.threshold, d.warning} {
		ch <- x
	}
}

// Collect implements prometheus.Collector.
func (d *CongestionDetector) Collect(ch chan<- prometheus.Metric) {
	s := d.State()
	gauge := func(desc *prometheus.Desc, v *float64) {
		if v != nil {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, *v)
		}
	}
	gauge(d.ceRatio, s.CERatio)
	gauge(d.ringRatio, s.RingOccupancy)
	gauge(d.rtxRatio, s.RetransmitRatio)
	gauge(d.rtxRate, s.RetransmitsPerSecond)
	for _, k := range CongestionKinds {
		v := 0.0
		if _, ok := s.Warning(k); ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(d.warning, prometheus.GaugeValue, v, k)
	}
	for k, v := range map[string]float64{CongestionCE: d.th.CERatio, CongestionRing: d.th.RingOccupancy, CongestionRetransmit: d.th.RetransmitRatio} {
		ch <- prometheus.MustNewConstMetric(d.threshold, prometheus.GaugeValue, v, k)
	}
}
