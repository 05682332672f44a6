package flowctl

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Unix(1_000_000, 0)

// us is t0 plus x microseconds.
func us(x float64) time.Time { return t0.Add(time.Duration(x * float64(time.Microsecond))) }

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Fatalf("%s = %.12g, want %.12g", what, got, want)
	}
}

// check compares rate, target and alpha.
func check(t *testing.T, step string, d *DCQCN, rate, target, alpha float64) {
	t.Helper()
	near(t, step+": rate", d.Rate(), rate)
	near(t, step+": target", d.TargetRate(), target)
	near(t, step+": alpha", d.Alpha(), alpha)
}

func newTestDCQCN(t *testing.T, line float64, set map[string]uint32) *DCQCN {
	t.Helper()
	p := DefaultDCQCNParams()
	for k, v := range set {
		if err := p.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	d, err := NewDCQCN(DCQCNOptions{Params: p, LineRate: line})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Numbers chosen so the arithmetic is exact by hand: g = 1-768/1024 = 1/4,
// alpha starts at 512/1024 = 1/2 and updates every 100µs, the byte stage is
// 1000 B, rpg_gd 11 (decrease by alpha/2), line rate 100 Gb/s.
var handParams = map[string]uint32{
	"dce_tcp_g":           768,
	"initial_alpha_value": 512,
	"dce_tcp_rtt":         100,
	"rpg_byte_reset":      1000,
}

func TestDCQCNHandSequenceClamped(t *testing.T) {
	set := map[string]uint32{"clamp_tgt_rate": 1}
	for k, v := range handParams {
		set[k] = v
	}
	d := newTestDCQCN(t, 100e9, set)
	if d.Limited() || d.Rate() != 100e9 || !d.NextDeadline().IsZero() {
		t.Fatalf("fresh flow: limited %v rate %v deadline %v", d.Limited(), d.Rate(), d.NextDeadline())
	}

	// First CNP at 0: alpha = 1/2; target = 100e9; rate = 100e9*(1-1/4) = 75e9.
	d.OnCNP(us(0))
	check(t, "cnp@0", d, 75e9, 100e9, 0.5)
	if !d.NextDeadline().Equal(us(300)) {
		t.Fatalf("deadline %v, want timer at 300µs", d.NextDeadline().Sub(t0))
	}
	// CNPs at 2 and 3µs fall inside rate_reduce_monitor_period (4µs): no
	// decrease yet, one remembered for 4µs.
	d.OnCNP(us(2))
	d.OnCNP(us(3))
	check(t, "cnp@2,3", d, 75e9, 100e9, 0.5)
	if !d.NextDeadline().Equal(us(4)) {
		t.Fatalf("deadline %v, want 4µs", d.NextDeadline().Sub(t0))
	}
	// Tick at 4µs: one decrease: target = 75e9 (clamp); rate = 75e9*0.75 =
	// 56.25e9; alpha unchanged (its period ends at 100µs); timer -> 304µs.
	d.OnTick(us(4))
	check(t, "tick@4", d, 56.25e9, 75e9, 0.5)
	if s := d.Stats(); s.CNPs != 3 || s.Decreases != 2 {
		t.Fatalf("stats %+v, want 3 CNPs 2 decreases", s)
	}
	// 100µs: the period had CNPs: alpha = 3/4*1/2 + 1/4 = 5/8.
	d.OnTick(us(100))
	check(t, "tick@100", d, 56.25e9, 75e9, 0.625)
	// 150µs, 1000 B: byte stage 1 (<= threshold 1): fast recovery,
	// rate = (56.25e9+75e9)/2 = 65.625e9.
	d.OnSent(us(150), 1000)
	check(t, "sent@150", d, 65.625e9, 75e9, 0.625)
	// 999 B complete no stage; 1 more completes byte stage 2 with time stage
	// 0: additive: target = 75e9+5e6 = 75.005e9; rate = (65.625e9+75.005e9)/2
	// = 70.315e9.
	d.OnSent(us(151), 999)
	check(t, "sent@151a", d, 65.625e9, 75e9, 0.625)
	d.OnSent(us(151), 1)
	check(t, "sent@151b", d, 70.315e9, 75.005e9, 0.625)
	// Alpha decays with no CNPs: 200µs 5/8*3/4 = 15/32, 300µs 45/128.
	// 304µs timer: time stage 1, byte stage 2: max 2 > 1, min 1 <= 1:
	// additive: target = 75.010e9; rate = (70.315e9+75.010e9)/2 = 72.6625e9.
	d.OnTick(us(304))
	check(t, "timer@304", d, 72.6625e9, 75.010e9, 45.0/128)
	// 604µs timer: stages (2,2): min 2 > 1: hyper, i = 2-1 = 1: target =
	// 75.010e9+50e6 = 75.060e9; rate = (72.6625e9+75.060e9)/2 = 73.86125e9.
	// Alpha at 600µs = 45/128*(3/4)^3 = 1215/8192.
	d.OnTick(us(604))
	check(t, "timer@604", d, 73.86125e9, 75.060e9, 1215.0/8192)
	// 605µs, byte stage 3, time stage 2: hyper i = 1: target = 75.110e9,
	// rate = (73.86125e9+75.110e9)/2 = 74.485625e9.
	d.OnSent(us(605), 1000)
	check(t, "sent@605", d, 74.485625e9, 75.110e9, 1215.0/8192)
	// 904µs timer: stages (3,3): hyper i = 2: target = 75.110e9+100e6 =
	// 75.210e9, rate = (74.485625e9+75.210e9)/2 = 74.8478125e9; alpha at
	// 900µs = 1215/8192*(3/4)^3 = 32805/524288.
	d.OnTick(us(904))
	check(t, "timer@904", d, 74.8478125e9, 75.210e9, 32805.0/524288)
	if s := d.Stats(); s.FastRecovery != 1 || s.Additive != 2 || s.Hyper != 3 {
		t.Fatalf("stats %+v, want 1 fast recovery, 2 additive, 3 hyper", s)
	}
	// CNP at 910µs, long after the last decrease: immediate. target = 74.8478125e9;
	// rate = 74.8478125e9*(1-32805/1048576) = 74847812500*1015771/1048576.
	d.OnCNP(us(910))
	check(t, "cnp@910", d, 74847812500.0*1015771/1048576, 74.8478125e9, 32805.0/524288)
	if !d.NextDeadline().Equal(us(1210)) {
		t.Fatalf("deadline %v, want 1210µs", d.NextDeadline().Sub(t0))
	}
	// 1000µs: the period had a CNP: alpha = 3/4*32805/524288 + 1/4.
	d.OnTick(us(1000))
	near(t, "alpha@1000", d.Alpha(), 0.75*32805.0/524288+0.25)
}

func TestDCQCNHandSequenceFirmwareClamp(t *testing.T) {
	for _, afterTime := range []uint32{1, 0} {
		set := map[string]uint32{"clamp_tgt_rate_after_time_inc": afterTime}
		for k, v := range handParams {
			set[k] = v
		}
		d := newTestDCQCN(t, 100e9, set)
		// As above: 75e9 after the first CNP, 56.25e9 at 4µs; the target
		// is not clamped at 4µs (no stage since the first CNP): 100e9.
		d.OnCNP(us(0))
		d.OnCNP(us(2))
		d.OnTick(us(4))
		check(t, "tick@4", d, 56.25e9, 100e9, 0.5)
		// Byte stage 1: fast recovery to (56.25e9+100e9)/2 = 78.125e9.
		d.OnSent(us(150), 1000)
		check(t, "sent@150", d, 78.125e9, 100e9, 0.625)
		// CNP at 200µs: alpha 5/8 -> 15/32 at 200µs (before the CNP).
		// rate = 78.125e9*(1-15/64) = 59.814453125e9. Only a byte stage has
		// raised the rate: with clamp_tgt_rate_after_time_inc=1 the target
		// stays 100e9, with 0 it becomes 78.125e9.
		d.OnCNP(us(200))
		wantTarget := 100e9
		if afterTime == 0 {
			wantTarget = 78.125e9
		}
		check(t, "cnp@200", d, 59.814453125e9, wantTarget, 15.0/32)
		// 500µs timer (stage 1): fast recovery to (59.814453125e9+T)/2.
		r := (59.814453125e9 + wantTarget) / 2
		d.OnTick(us(500))
		// alpha: 300µs had the CNP: 3/4*15/32+1/4 = 77/128; 400µs 231/512;
		// 500µs 693/2048.
		check(t, "timer@500", d, r, wantTarget, 693.0/2048)
		// CNP at 510µs after a time stage: target clamps to r in both modes;
		// rate = r*(1-693/4096).
		d.OnCNP(us(510))
		check(t, "cnp@510", d, r*(1-693.0/4096), r, 693.0/2048)
	}
}

func TestDCQCNDefaultsFirstCNP(t *testing.T) {
	d := newTestDCQCN(t, 100e9, nil)
	// alpha = 1023/1024, rpg_gd 11: rate = 100e9*(1-1023/2048) =
	// 100e9/2048*1025 = 50048828125.
	d.OnCNP(us(0))
	check(t, "cnp", d, 50048828125, 100e9, 1023.0/1024)
	// dce_tcp_rtt 1µs, no CNP since: alpha = 1023/1024*(1019/1024)^10 at 10µs.
	d.OnTick(us(10))
	near(t, "alpha@10", d.Alpha(), 1023.0/1024*math.Pow(1019.0/1024, 10))
	// A CNP at 10µs (after the 10µs update), then updates at 11µs (with CNP)
	// and 12µs (decay). The decrease at 10µs used alpha before its update.
	a := 1023.0 / 1024 * math.Pow(1019.0/1024, 10)
	d.OnCNP(us(10))
	near(t, "rate@10", d.Rate(), 50048828125*(1-a/2))
	d.OnTick(us(12))
	near(t, "alpha@12", d.Alpha(), (1019.0/1024*a+5.0/1024)*1019.0/1024)
}

func TestDCQCNFloorsAndFirstRate(t *testing.T) {
	for _, c := range []struct {
		name string
		line float64
		set  map[string]uint32
		want float64
	}{
		// rpg_gd 10: factor 1-1023/1024 = 1/1024, below min_dec_fac 50%: 0.5.
		{"min_dec_fac", 100e9, map[string]uint32{"rpg_gd": 10}, 50e9},
		// min_dec_fac 0 lets the factor 1/1024 through: 100e9/1024.
		{"no_dec_fac", 100e9, map[string]uint32{"rpg_gd": 10, "rpg_min_dec_fac": 0}, 97656250},
		// 10e6/1024 = 9765.625 is below rpg_min_rate 1 Mb/s: 1e6.
		{"min_rate", 10e6, map[string]uint32{"rpg_gd": 10, "rpg_min_dec_fac": 0}, 1e6},
		// min_dec_fac 100 prevents decreases.
		{"no_decrease", 100e9, map[string]uint32{"rpg_min_dec_fac": 100}, 100e9},
		// rate_to_set_on_first_cnp 20000 Mb/s replaces the first decrease.
		{"first_rate", 100e9, map[string]uint32{"rate_to_set_on_first_cnp": 20000}, 20e9},
		// rpg_max_rate 40000 caps at 40e9: 40e9*1025/2048.
		{"max_rate", 100e9, map[string]uint32{"rpg_max_rate": 40000}, 40e9 * 1025 / 2048},
	} {
		d := newTestDCQCN(t, c.line, c.set)
		d.OnCNP(us(0))
		near(t, c.name, d.Rate(), c.want)
	}
}

func TestDCQCNReleaseAtLineRate(t *testing.T) {
	d := newTestDCQCN(t, 100e9, nil)
	d.OnCNP(us(0))
	// Timer only: stage 1 fast recovery, then additive increases (the byte
	// counter never counts, so never hyper); each halves the gap to the
	// capped target 100e9, which float64 closes within ~50 stages.
	for i := 1; i <= 100 && d.Limited(); i++ {
		d.OnTick(us(300 * float64(i)))
	}
	s := d.Stats()
	if d.Limited() || d.Rate() != 100e9 || s.Releases != 1 || s.Hyper != 0 || s.FastRecovery != 1 {
		t.Fatalf("limited %v rate %v stats %+v", d.Limited(), d.Rate(), s)
	}
	// The next CNP is a first CNP again.
	d.OnCNP(us(1e6))
	check(t, "again", d, 50048828125, 100e9, 1023.0/1024)
}

func TestDCQCNLongIdleIsCheap(t *testing.T) {
	d := newTestDCQCN(t, 100e9, map[string]uint32{"rpg_time_reset": 131071})
	d.OnCNP(us(0))
	// One hour of 1µs alpha periods happens in one step per time stage.
	start := time.Now()
	d.OnTick(t0.Add(time.Hour))
	if el := time.Since(start); el > time.Second {
		t.Fatalf("an hour of idle took %v", el)
	}
	if d.Limited() {
		t.Fatalf("still limited after an hour: rate %v", d.Rate())
	}
}

func TestNewDCQCNErrors(t *testing.T) {
	if _, err := NewDCQCN(DCQCNOptions{}); err == nil {
		t.Fatal("no line rate accepted")
	}
	p := DefaultDCQCNParams()
	p.DCETCPG = 2000
	if _, err := NewDCQCN(DCQCNOptions{Params: p, LineRate: 1e9}); err == nil {
		t.Fatal("dce_tcp_g 2000 accepted")
	}
}

func TestCNPLimiter(t *testing.T) {
	l := NewCNPLimiter(DefaultDCQCNParams())
	want := []struct {
		at float64
		ok bool
	}{{0, true}, {1, false}, {3.999, false}, {4, true}, {7, false}, {8.5, true}}
	for _, w := range want {
		if got := l.Allow(us(w.at)); got != w.ok {
			t.Fatalf("Allow(%vµs) = %v, want %v", w.at, got, w.ok)
		}
	}
	if l.Suppressed() != 3 {
		t.Fatalf("suppressed %d, want 3", l.Suppressed())
	}
}

func TestDCQCNAlphaBeforeDecreaseAtSameInstant(t *testing.T) {
	d := newTestDCQCN(t, 100e9, nil) // dce_tcp_rtt 1µs, monitor period 4µs
	k := 1019.0 / 1024
	d.OnCNP(us(0)) // rate 50048828125, alpha a0 = 1023/1024
	d.OnCNP(us(2)) // after the decays at 1 and 2µs; decrease due at 4µs
	d.OnTick(us(4))
	// alpha: 1µs a0*k, 2µs a0*k², 3µs (CNP in period) k*a0*k² + 5/1024,
	// 4µs decay again, and only then the 4µs decrease uses it.
	a := (k*(1023.0/1024*k*k) + 5.0/1024) * k
	near(t, "alpha@4", d.Alpha(), a)
	near(t, "rate@4", d.Rate(), 50048828125*(1-a/2))
}
