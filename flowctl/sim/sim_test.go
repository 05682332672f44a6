package sim

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/flowctl"
)

// delayOpts sizes the delay controller for a 100 Gbit/s path with a 10µs
// base RTT: target 20µs, windows from one packet to twice the BDP at the
// target, starting at the BDP split between the flows.
func delayOpts(flows int) flowctl.DelayOptions {
	const bdp = 100e9 / 8 * 20e-6
	return flowctl.DelayOptions{
		TargetDelay: 20 * time.Microsecond,
		AIBytes:     1024,
		MinWindow:   1024,
		MaxWindow:   2 * bdp,
		InitWindow:  bdp / float64(flows),
	}
}

// checkConverged asserts every flow's goodput over the measured window is
// within 10 % of the fair share, utilization >= 90 %, the p99 queue under
// kmax (when > 0), and, when strict, that the smoothed per-flow goodput
// stayed within 10 % to the end (Summary.Converged).
func checkConverged(t *testing.T, s Summary, kmax int, strict bool) {
	t.Helper()
	for i, g := range s.GoodputBps {
		if r := g / s.FairShareBps; r < 0.9 || r > 1.1 {
			t.Errorf("flow %d goodput %.2f Gbit/s is %.3f of the fair share %.2f", i, g/1e9, r, s.FairShareBps/1e9)
		}
	}
	if s.Utilization < 0.9 {
		t.Errorf("utilization %.3f < 0.9", s.Utilization)
	}
	if kmax > 0 && s.QueueP99Bytes >= kmax {
		t.Errorf("queue p99 %d B >= kmax %d B", s.QueueP99Bytes, kmax)
	}
	if strict && !s.Converged {
		t.Errorf("not converged within ±10 %% by the end")
	}
}

func logSummary(t *testing.T, s Summary) {
	t.Helper()
	lo, hi := slices.Min(s.GoodputBps), slices.Max(s.GoodputBps)
	t.Logf("%s n=%d util=%.3f jain=%.4f goodput %.2f..%.2f Gbit/s (fair %.2f) queue p50=%d p99=%d max=%d converged=%v after %v drops=%d marks=%d cnps=%d events=%d",
		s.CC, s.Flows, s.Utilization, s.Jain, lo/1e9, hi/1e9, s.FairShareBps/1e9, s.QueueP50Bytes, s.QueueP99Bytes, s.QueueMaxBytes,
		s.Converged, s.ConvergenceTime, s.Drops, s.Marks, s.CNPs, s.Events)
}

func TestDelayConvergesWithoutMarking(t *testing.T) {
	for _, n := range []int{2, 4, 8, 16} {
		r, err := Run(Options{
			Flows: n, BottleneckRate: 100e9, BufferBytes: 1 << 20, Delay: 5 * time.Microsecond,
			CC: CCDelay, DelayCC: delayOpts(n), Duration: 10 * time.Millisecond, WarmUp: 5 * time.Millisecond,
			SampleInterval: 10 * time.Microsecond, ConvergenceWindow: 500 * time.Microsecond, Seed: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		s := r.Summary
		logSummary(t, s)
		if s.Marks != 0 || s.CNPs != 0 {
			t.Errorf("marks %d cnps %d on a path without marking", s.Marks, s.CNPs)
		}
		checkConverged(t, s, 0, true)
	}
}

func TestNoCCOverflowsTheBuffer(t *testing.T) {
	r, err := Run(Options{
		Flows: 4, BottleneckRate: 100e9, BufferBytes: 256 << 10, CC: CCNone,
		Marking:  Marking{KminBytes: 100 << 10, KmaxBytes: 200 << 10, Pmax: 0.2},
		Duration: 2 * time.Millisecond, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Summary
	logSummary(t, s)
	if s.Drops == 0 {
		t.Errorf("no drops with 4 line-rate senders into one link")
	}
	if s.QueueMaxBytes < 256<<10-1024 || s.QueueP50Bytes < 255<<10 {
		t.Errorf("queue max %d p50 %d: want the 256 KiB buffer full", s.QueueMaxBytes, s.QueueP50Bytes)
	}
	if s.CNPs != 0 {
		t.Errorf("%d CNPs without DCQCN", s.CNPs)
	}
	if s.Utilization < 0.99 {
		t.Errorf("utilization %.3f with a full queue", s.Utilization)
	}
	// 4 line-rate senders offer 4x the link: three quarters are dropped.
	if got, want := float64(s.Drops)/float64(s.PacketsSent), 0.75; got < want-0.01 || got > want+0.01 {
		t.Errorf("drop fraction %.3f, want %.2f", got, want)
	}
}

func TestSameSeedSameResult(t *testing.T) {
	o := Options{
		Flows: 4, BottleneckRate: 40e9, CC: CCDCQCN,
		Marking:  Marking{KminBytes: 5 << 10, KmaxBytes: 200 << 10, Pmax: 0.01},
		Duration: 2 * time.Millisecond, Seed: 42, FlowStarts: []time.Duration{0, 100 * time.Microsecond},
	}
	a, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("same options, different results:\n%+v\n%+v", a.Summary, b.Summary)
	}
	if a.Summary.Marks == 0 {
		t.Fatalf("no marks: the seed plays no part")
	}
	o.Seed = 43
	c, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a.Summary, c.Summary) {
		t.Errorf("seeds 42 and 43 gave identical summaries")
	}
}

func TestStaggeredStartAndSeries(t *testing.T) {
	r, err := Run(Options{
		Flows: 2, BottleneckRate: 10e9, CC: CCNone, BufferBytes: 64 << 10,
		FlowStarts: []time.Duration{0, 500 * time.Microsecond},
		Duration:   1 * time.Millisecond, SampleInterval: 100 * time.Microsecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	se := r.Series
	if len(se.Samples) != 10 {
		t.Fatalf("%d samples, want 10", len(se.Samples))
	}
	for k, s := range se.Samples {
		if want := time.Duration(k+1) * 100 * time.Microsecond; s.T != want {
			t.Errorf("sample %d at %v, want %v", k, s.T, want)
		}
		// Flow 1 starts at 500µs: before, flow 0 alone fills the link.
		if s.T < 500*time.Microsecond {
			if s.Goodput[1] != 0 || s.Allowed[1] != 0 {
				t.Errorf("sample %d: flow 1 goodput %v allowed %v before its start", k, s.Goodput[1], s.Allowed[1])
			}
			if g := s.Goodput[0]; g < 9.8e9 || g > 10.01e9 {
				t.Errorf("sample %d: flow 0 alone gets %.3g bit/s, want ~10G", k, g)
			}
		}
	}
}

func TestMarkingRule(t *testing.T) {
	s := &simulator{o: Options{Marking: Marking{KminBytes: 1000, KmaxBytes: 3000, Pmax: 0.5}}}
	s.rng = newRNG(7)
	for _, q := range []int{0, 999} {
		for range 1000 {
			if s.mark(q) {
				t.Fatalf("marked at q=%d below kmin", q)
			}
		}
	}
	for _, q := range []int{3000, 5000} {
		for range 1000 {
			if !s.mark(q) {
				t.Fatalf("not marked at q=%d at or above kmax", q)
			}
		}
	}
	// Halfway: p = 0.25.
	n := 0
	for range 100000 {
		if s.mark(2000) {
			n++
		}
	}
	if n < 24000 || n > 26000 {
		t.Errorf("%d of 100000 marked at q halfway, want ~25000", n)
	}
	s.o.Marking = Marking{}
	if s.mark(1 << 30) {
		t.Errorf("marked with marking off")
	}
}

func TestEventQueueOrder(t *testing.T) {
	var q eventQueue
	ts := []int64{5, 3, 9, 3, 1, 7, 3, 0}
	for i, x := range ts {
		q.push(event{t: x, aux: int64(i)})
	}
	var got [][2]int64
	for q.len() > 0 {
		e := q.pop()
		got = append(got, [2]int64{e.t, e.aux})
	}
	want := [][2]int64{{0, 7}, {1, 4}, {3, 1}, {3, 3}, {3, 6}, {5, 0}, {7, 5}, {9, 2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v (time, then insertion)", got, want)
	}
}

func TestBadOptions(t *testing.T) {
	good := Options{Flows: 2, BottleneckRate: 1e9, Duration: time.Millisecond}
	if _, err := Run(good); err != nil {
		t.Fatalf("good options: %v", err)
	}
	for name, mod := range map[string]func(*Options){
		"no flows":     func(o *Options) { o.Flows = 0 },
		"no rate":      func(o *Options) { o.BottleneckRate = 0 },
		"no duration":  func(o *Options) { o.Duration = 0 },
		"kmax < kmin":  func(o *Options) { o.Marking = Marking{KminBytes: 10, KmaxBytes: 5} },
		"pmax > 1":     func(o *Options) { o.Marking.Pmax = 2 },
		"tiny buffer":  func(o *Options) { o.BufferBytes = 100 },
		"late start":   func(o *Options) { o.FlowStarts = []time.Duration{time.Second} },
		"warm-up > d":  func(o *Options) { o.WarmUp = time.Second },
		"bad cc":       func(o *Options) { o.CC = 9 },
		"extra delays": func(o *Options) { o.FlowDelays = make([]time.Duration, 3) },
	} {
		o := good
		mod(&o)
		if _, err := Run(o); !errors.Is(err, ErrBadOptions) {
			t.Errorf("%s: error %v, want ErrBadOptions", name, err)
		}
	}
	o := good
	o.DCQCN = flowctl.DefaultDCQCNParams()
	o.DCQCN.RPGGD = 0
	if _, err := Run(o); !errors.Is(err, flowctl.ErrBadParam) {
		t.Errorf("bad dcqcn params: %v, want flowctl.ErrBadParam", err)
	}
}
