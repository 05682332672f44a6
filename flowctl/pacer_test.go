package flowctl

import (
	"testing"
	"time"
)

// checkBurst fails if any interval [t_j, t_i] carries more than burst +
// rate*(t_i-t_j)/8 bytes (1e-6 B slack for float rounding).
func checkBurst(t *testing.T, times []time.Duration, sizes []int, rate float64, burst int) {
	t.Helper()
	perNs := rate / 8 / 1e9
	var sum float64
	minBefore := 0.0 // min over j of (S_{j-1} - perNs*t_j)
	for i := range times {
		x := sum - perNs*float64(times[i])
		if i == 0 || x < minBefore {
			minBefore = x
		}
		sum += float64(sizes[i])
		if over := sum - perNs*float64(times[i]) - minBefore; over > float64(burst)+1e-6 {
			t.Fatalf("packet %d at %v: window carries %v B over the rate, burst %d", i, times[i], over, burst)
		}
	}
}

func TestPacerReserveRate(t *testing.T) {
	const rate, burst, pkt = 1e9, 9000, 1500
	p, err := NewPacer(rate, burst)
	if err != nil {
		t.Fatal(err)
	}
	var times []time.Duration
	var sizes []int
	now := time.Duration(0)
	total := 0
	for {
		now += p.Reserve(t0.Add(now), pkt)
		if now >= time.Second {
			break
		}
		times, sizes = append(times, now), append(sizes, pkt)
		total += pkt
	}
	// 1 Gb/s for 1 s = 125e6 B (plus the initial burst), within 0.1 %.
	if d := float64(total)/125e6 - 1; d > 0.001 || d < -0.001 {
		t.Fatalf("%d B in 1 s, want 125e6 ±0.1%%", total)
	}
	checkBurst(t, times, sizes, rate, burst)
}

func TestPacerAllowPolling(t *testing.T) {
	const rate, burst = 2e9, 4000
	p, _ := NewPacer(rate, burst)
	var times []time.Duration
	var sizes []int
	total := 0
	sizesCycle := []int{1500, 64, 1024, 3000, 200}
	k := 0
	// Poll every 700 ns for 1 s, sending mixed sizes in batches while allowed.
	for now := time.Duration(0); now < time.Second; now += 700 {
		for p.Allow(t0.Add(now), sizesCycle[k%len(sizesCycle)]) {
			times, sizes = append(times, now), append(sizes, sizesCycle[k%len(sizesCycle)])
			total += sizesCycle[k%len(sizesCycle)]
			k++
		}
	}
	if d := float64(total)/250e6 - 1; d > 0.001 || d < -0.001 {
		t.Fatalf("%d B in 1 s, want 250e6 ±0.1%%", total)
	}
	checkBurst(t, times, sizes, rate, burst)
}

func TestPacerOversizeAndUnlimited(t *testing.T) {
	p, _ := NewPacer(8e6, 1000) // 1 B/µs
	if !p.Allow(us(0), 5000) {
		t.Fatal("oversize packet refused on a full bucket")
	}
	// Debt of 5000 B: the bucket is full again at 5000µs and holds 10 B
	// from 4010µs on.
	if p.Allow(us(4009), 10) {
		t.Fatal("allowed before the debt drained")
	}
	if d := p.Delay(us(4000), 1000); d != 1000*time.Microsecond {
		t.Fatalf("delay %v, want 1ms", d)
	}
	if !p.Allow(us(5000), 1000) {
		t.Fatal("refused a full burst on a full bucket")
	}
	if !p.SetRate(0) || !p.Allow(us(5000), 1<<30) || p.Reserve(us(5000), 1<<30) != 0 {
		t.Fatal("rate 0 is not unlimited")
	}
	if _, err := NewPacer(-1, 10); err == nil {
		t.Fatal("negative rate accepted")
	}
	if _, err := NewPacer(1e9, 0); err == nil {
		t.Fatal("burst 0 accepted")
	}
}

func TestPacerZeroAlloc(t *testing.T) {
	p, _ := NewPacer(1e9, 9000)
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Microsecond)
		if p.Allow(now, 1500) {
			return
		}
		now = now.Add(p.Reserve(now, 1500))
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}

func TestPacerAsControllerOutput(t *testing.T) {
	// The pacer follows a DCQCN's rate: after the first CNP at 100 Gb/s the
	// rate is 50048828125 bits/s.
	d := newTestDCQCN(t, 100e9, nil)
	p, _ := NewPacer(d.Rate(), 4096)
	d.OnCNP(us(0))
	p.SetRate(d.Rate())
	if p.Rate() != 50048828125 || p.Burst() != 4096 {
		t.Fatalf("pacer %v %v", p.Rate(), p.Burst())
	}
}
