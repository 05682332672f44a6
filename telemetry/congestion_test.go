package telemetry

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

func newDetector(t *testing.T, th CongestionThresholds) *CongestionDetector {
	t.Helper()
	d, err := NewCongestionDetector(CongestionOptions{Thresholds: th})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func warned(s CongestionState, kind string) bool {
	_, ok := s.Warning(kind)
	return ok
}

func TestCongestionCE(t *testing.T) {
	d := newDetector(t, CongestionThresholds{CERatio: 0.05, MinPackets: 100})
	t0 := time.Unix(1000, 0)
	c := CongestionCounters{HasCE: true}
	if s := d.Observe(t0, c); s.CERatio != nil || len(s.Warnings) != 0 {
		t.Fatalf("first sample: %+v, want no figures", s)
	}
	step := func(sec int, rx, ce uint64) CongestionState {
		c.RxPackets += rx
		c.CEPackets += ce
		return d.Observe(t0.Add(time.Duration(sec)*time.Second), c)
	}
	// 4 % < 5 %: no warning.
	s := step(1, 1000, 40)
	if s.CERatio == nil || *s.CERatio != 0.04 || warned(s, CongestionCE) || s.IntervalSeconds != 1 {
		t.Fatalf("4 %%: %+v", s)
	}
	// 6 % > 5 %: warning, with its figures.
	s = step(2, 1000, 60)
	w, ok := s.Warning(CongestionCE)
	if !ok || w.Value != 0.06 || w.Threshold != 0.05 || w.Message != "CE ratio 6.00 % above 5.00 %" {
		t.Fatalf("6 %%: %+v", s)
	}
	// A trickle below MinPackets keeps the verdict, though 0 % CE.
	if s = step(3, 10, 0); !warned(s, CongestionCE) {
		t.Fatalf("trickle dropped the warning: %+v", s)
	}
	// Back at exactly 5 %: not above, cleared.
	if s = step(4, 1000, 50); warned(s, CongestionCE) {
		t.Fatalf("5 %%: still warning: %+v", s)
	}
	// A trickle now keeps "no warning", even at 100 % CE.
	if s = step(5, 10, 10); warned(s, CongestionCE) {
		t.Fatalf("trickle raised a warning: %+v", s)
	}
	// A counter reset (agent restarted without pins) counts from zero.
	c = CongestionCounters{HasCE: true}
	if s = step(6, 500, 100); !warned(s, CongestionCE) || *s.CERatio != 0.2 {
		t.Fatalf("after reset: %+v", s)
	}
	if got := scrape(t, d); got[`onet_congestion_warning{kind="ce"}`] != 1 || got[`onet_congestion_ce_ratio`] != 0.2 ||
		got[`onet_congestion_warning{kind="ring"}`] != 0 || got[`onet_congestion_threshold{kind="ce"}`] != 0.05 {
		t.Fatalf("scrape: %v", got)
	}
}

func TestCongestionRing(t *testing.T) {
	d := newDetector(t, CongestionThresholds{RingOccupancy: 0.5})
	t0 := time.Unix(1000, 0)
	obs := func(sec int, entries uint64) CongestionState {
		return d.Observe(t0.Add(time.Duration(sec)*time.Second), CongestionCounters{HasRing: true, RingEntries: entries, RingSize: 1000})
	}
	if s := obs(0, 100); warned(s, CongestionRing) || *s.RingOccupancy != 0.1 {
		t.Fatalf("10 %%: %+v", s)
	}
	if s := obs(1, 600); !warned(s, CongestionRing) {
		t.Fatalf("60 %% and rising: no warning: %+v", s)
	}
	if s := obs(2, 600); !warned(s, CongestionRing) {
		t.Fatalf("60 %% and holding: no warning: %+v", s)
	}
	if s := obs(3, 550); warned(s, CongestionRing) || *s.RingOccupancy != 0.55 {
		t.Fatalf("55 %% and draining: warning: %+v", s)
	}
	if s := obs(4, 700); !warned(s, CongestionRing) {
		t.Fatalf("70 %% rising again: %+v", s)
	}
	if s := obs(5, 499); warned(s, CongestionRing) {
		t.Fatalf("under the threshold: %+v", s)
	}
	got := scrape(t, d)
	if got[`onet_congestion_ring_occupancy_ratio`] != 0.499 || got[`onet_congestion_warning{kind="ring"}`] != 0 {
		t.Fatalf("scrape: %v", got)
	}
	if _, ok := got[`onet_congestion_ce_ratio`]; ok {
		t.Fatalf("CE ratio reported without a CE source: %v", got)
	}
}

func TestCongestionRetransmit(t *testing.T) {
	d := newDetector(t, CongestionThresholds{RetransmitRatio: 0.01})
	t0 := time.Unix(1000, 0)
	c := CongestionCounters{HasRetransmit: true}
	d.Observe(t0, c)
	step := func(sec int, tx, rtx uint64) CongestionState {
		c.TxPackets += tx
		c.Retransmit += rtx
		return d.Observe(t0.Add(time.Duration(sec)*time.Second), c)
	}
	if s := step(2, 10000, 50); warned(s, CongestionRetransmit) || *s.RetransmitRatio != 0.005 || *s.RetransmitsPerSecond != 25 {
		t.Fatalf("0.5 %%: %+v", s)
	}
	s := step(3, 10000, 200)
	if w, ok := s.Warning(CongestionRetransmit); !ok || w.Value != 0.02 || *s.RetransmitsPerSecond != 200 {
		t.Fatalf("2 %%: %+v", s)
	}
	got := scrape(t, d)
	if got[`onet_congestion_warning{kind="retransmit"}`] != 1 || got[`onet_congestion_retransmits_per_second`] != 200 || got[`onet_congestion_retransmit_ratio`] != 0.02 {
		t.Fatalf("scrape: %v", got)
	}
	if s := step(4, 10000, 0); warned(s, CongestionRetransmit) {
		t.Fatalf("0 %%: %+v", s)
	}
	if got := scrape(t, d); got[`onet_congestion_warning{kind="retransmit"}`] != 0 {
		t.Fatalf("cleared warning still 1: %v", got)
	}
}

func TestCongestionThresholds(t *testing.T) {
	d := newDetector(t, CongestionThresholds{})
	want := CongestionThresholds{CERatio: DefaultCERatioThreshold, RingOccupancy: DefaultRingOccupancyThreshold,
		RetransmitRatio: DefaultRetransmitRatioThreshold, MinPackets: DefaultCongestionMinPackets}
	if d.Thresholds() != want {
		t.Fatalf("defaults %+v, want %+v", d.Thresholds(), want)
	}
	for _, bad := range []CongestionThresholds{{CERatio: -0.1}, {RingOccupancy: 1.5}, {RetransmitRatio: 2}} {
		if _, err := NewCongestionDetector(CongestionOptions{Thresholds: bad}); !errors.Is(err, ErrInvalidThresholds) {
			t.Errorf("%+v: %v, want ErrInvalidThresholds", bad, err)
		}
	}
	// The state marshals to JSON (no NaN) before and after samples.
	s := d.State()
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
	d.Observe(time.Unix(1, 0), CongestionCounters{HasRing: true, RingSize: 0})
	if b, err := json.Marshal(d.State()); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

// TestCongestionSourcesEngines: without dispatchers or ports the engines
// give both the retransmit and the CE figures.
func TestCongestionSourcesEngines(t *testing.T) {
	net := porttest.NewNetwork(porttest.NetworkOptions{MTU: 4200, QueueLen: 64})
	var devs [2]*rocev2.Device
	for i := range devs {
		port, err := net.NewPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), rocev2.UDPPort))
		if err != nil {
			t.Fatal(err)
		}
		if devs[i], err = rocev2.Open(rocev2.Options{Port: port}); err != nil {
			t.Fatal(err)
		}
		d := devs[i]
		t.Cleanup(func() { d.Close() })
	}
	base := CongestionSources{Engines: devs[:]}.Read()
	for _, d := range devs {
		st := d.Stats()
		st.TxPackets.Add(1000)
		st.Retransmits.Add(30)
		st.RxPackets.Add(2000)
		st.CERcvd.Add(100)
	}
	c := CongestionSources{Engines: devs[:]}.Read()
	if !c.HasRetransmit || !c.HasCE || c.HasRing {
		t.Fatalf("sources present: %+v", c)
	}
	if c.TxPackets-base.TxPackets != 2000 || c.Retransmit-base.Retransmit != 60 || c.RxPackets-base.RxPackets != 4000 || c.CEPackets-base.CEPackets != 200 {
		t.Fatalf("deltas: %+v - %+v", c, base)
	}
	d := newDetector(t, CongestionThresholds{})
	d.Observe(time.Unix(10, 0), base)
	s := d.Observe(time.Unix(11, 0), c)
	if !warned(s, CongestionRetransmit) || !warned(s, CongestionCE) || warned(s, CongestionRing) {
		t.Fatalf("3 %% retransmits and 5 %% CE: %+v", s)
	}
	if (CongestionSources{}).Read() != (CongestionCounters{}) {
		t.Fatal("no sources read something")
	}
}
