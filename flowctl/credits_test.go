package flowctl

import (
	"testing"
	"time"
)

func TestCreditsFairSplit(t *testing.T) {
	// 8e9 bits/s = 1e9 B/s: 10µs accrue 10000 B.
	s, err := NewCreditScheduler(CreditOptions{DrainRate: 8e9})
	if err != nil {
		t.Fatal(err)
	}
	for id := uint32(1); id <= 4; id++ {
		if err := s.SetDemand(id, 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]Grant, 0, 8)
	out = s.Grant(us(0), out) // starts the clock
	if len(out) != 0 {
		t.Fatalf("grants at start: %v", out)
	}
	out = s.Grant(us(10), out[:0])
	if len(out) != 4 {
		t.Fatalf("grants %v", out)
	}
	for _, g := range out {
		if g.Bytes != 2500 {
			t.Fatalf("grants %v, want 2500 each", out)
		}
	}
	// Uneven demand: 1000, 1<<30, 1<<30, 0 (idle): 1000 + 4500 + 4500.
	s.SetDemand(1, 1000)
	s.SetDemand(4, 0)
	out = s.Grant(us(20), out[:0])
	want := map[uint32]int{1: 1000, 2: 4500, 3: 4500}
	if len(out) != 3 {
		t.Fatalf("grants %v, want %v", out, want)
	}
	for _, g := range out {
		if want[g.Sender] != g.Bytes {
			t.Fatalf("grants %v, want %v", out, want)
		}
	}
	if s.Granted() != 20000 {
		t.Fatalf("granted %d", s.Granted())
	}
}

func TestCreditsNSendersOverTime(t *testing.T) {
	for _, n := range []int{2, 3, 7, 16} {
		s, _ := NewCreditScheduler(CreditOptions{DrainRate: 8e9})
		for id := range n {
			s.SetDemand(uint32(id), 1<<40)
		}
		got := make([]int, n)
		out := make([]Grant, 0, n)
		for i := 0; i <= 1000; i++ {
			out = s.Grant(t0.Add(time.Duration(i)*time.Microsecond), out[:0])
			for _, g := range out {
				got[g.Sender] += g.Bytes
			}
		}
		// 1 ms at 1e9 B/s = 1e6 B, split evenly to within one byte.
		total := 0
		for _, b := range got {
			total += b
			if b < 1e6/n-1 || b > 1e6/n+1 {
				t.Fatalf("n=%d: per-sender %v", n, got)
			}
		}
		if total < 1e6-n || total > 1e6 {
			t.Fatalf("n=%d: total %d, want 1e6", n, total)
		}
		allocs := testing.AllocsPerRun(100, func() { out = s.Grant(t0.Add(time.Second), out[:0]) })
		if allocs != 0 {
			t.Fatalf("Grant allocates %v", allocs)
		}
	}
}

func TestCreditsBoundsAndGate(t *testing.T) {
	s, _ := NewCreditScheduler(CreditOptions{DrainRate: 8e9, MaxBurst: 5000, MaxSenders: 1})
	s.SetDemand(9, 1<<30)
	if err := s.SetDemand(10, 1); err == nil {
		t.Fatal("a second sender accepted with MaxSenders 1")
	}
	s.Grant(us(0), nil)
	// An idle second accrues 1e9 B but MaxBurst caps it at 5000.
	out := s.Grant(us(1e6), nil)
	if len(out) != 1 || out[0] != (Grant{9, 5000}) {
		t.Fatalf("grants %v", out)
	}
	var g CreditGate
	g.Add(out[0].Bytes)
	if !g.Allow(3000) || g.Allow(2001) || !g.Allow(2000) || g.Available() != 0 || g.Allow(1) {
		t.Fatalf("gate: available %d", g.Available())
	}
	if _, err := NewCreditScheduler(CreditOptions{}); err == nil {
		t.Fatal("zero drain rate accepted")
	}
}
