package flowctl

import (
	"testing"
	"time"
)

func TestDelayAIMDSequence(t *testing.T) {
	c, err := NewDelay(DelayOptions{
		TargetDelay: 50 * time.Microsecond, AIBytes: 1000, Beta: 0.8, MaxMDF: 0.5,
		MinWindow: 1000, MaxWindow: 1e6, InitWindow: 10000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Rate() != 0 {
		t.Fatalf("rate before any sample %v, want 0 (unpaced)", c.Rate())
	}
	steps := []struct {
		name  string
		do    func()
		cwnd  float64
		stats DelayStats
	}{
		// 40µs < 50µs: +1000*1000/10000 = +100.
		{"ack@0", func() { c.OnAck(us(0), 1000, 40*time.Microsecond) }, 10100, DelayStats{Increases: 1}},
		// +1000*2020/10100 = +200.
		{"ack@10", func() { c.OnAck(us(10), 2020, 40*time.Microsecond) }, 10300, DelayStats{Increases: 2}},
		// 100µs >= 50µs: *max(1-0.8*50/100, 0.5) = *0.6 -> 6180.
		{"ack@20", func() { c.OnAck(us(20), 1000, 100*time.Microsecond) }, 6180, DelayStats{2, 1, 0}},
		// 30µs since the last decrease < RTT 100µs: held.
		{"ack@50", func() { c.OnAck(us(50), 1000, 100*time.Microsecond) }, 6180, DelayStats{2, 1, 1}},
		// 100µs since: *0.6 -> 3708.
		{"ack@120", func() { c.OnAck(us(120), 1000, 100*time.Microsecond) }, 3708, DelayStats{2, 2, 1}},
		// RTT now 400µs, 10µs since: held.
		{"ack@130", func() { c.OnAck(us(130), 1000, 400*time.Microsecond) }, 3708, DelayStats{2, 2, 2}},
		// 400µs since: 1-0.8*350/400 = 0.3 < 1-max_mdf: *0.5 -> 1854.
		{"ack@520", func() { c.OnAck(us(520), 1000, 400*time.Microsecond) }, 1854, DelayStats{2, 3, 2}},
		// Loss 80µs later: held.
		{"loss@600", func() { c.OnLoss(us(600)) }, 1854, DelayStats{2, 3, 3}},
		// Loss 400µs after the last decrease: *0.5 = 927, floored at 1000.
		{"loss@920", func() { c.OnLoss(us(920)) }, 1000, DelayStats{2, 4, 3}},
		// Below target: +1000*500/1000 = +500.
		{"ack@1000", func() { c.OnAck(us(1000), 500, 10*time.Microsecond) }, 1500, DelayStats{3, 4, 3}},
		// No RTT sample: nothing.
		{"ack@1001", func() { c.OnAck(us(1001), 500, 0) }, 1500, DelayStats{3, 4, 3}},
	}
	for _, s := range steps {
		s.do()
		near(t, s.name, c.WindowBytes(), s.cwnd)
		if c.Stats() != s.stats {
			t.Fatalf("%s: stats %+v, want %+v", s.name, c.Stats(), s.stats)
		}
	}
	// 1500 B per 10µs RTT = 1500*8/10e-6 = 1.2e9 bits/s.
	near(t, "rate", c.Rate(), 1.2e9)
	if c.Window() != 1500 {
		t.Fatalf("window %d", c.Window())
	}
	// The window never exceeds MaxWindow.
	for i := range 100000 {
		c.OnAck(us(2000+float64(i)), 1e6, time.Microsecond)
	}
	if c.WindowBytes() != 1e6 {
		t.Fatalf("window %v, want the 1e6 cap", c.WindowBytes())
	}
}

func TestDelayOptionsErrors(t *testing.T) {
	for _, o := range []DelayOptions{{Beta: 2}, {MaxMDF: 1}, {MinWindow: 10, MaxWindow: 5}, {InitWindow: 1}, {TargetDelay: -1}} {
		if _, err := NewDelay(o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
	}
	c, err := NewDelay(DelayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Options(); o.TargetDelay != 50*time.Microsecond || o.InitWindow != 1<<20 {
		t.Fatalf("defaults %+v", o)
	}
}
