package rocev2_test

import (
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// TestCCPacer: a controller that asks for 100 Mbit/s holds the QP's
// goodput at or below it (+20 % slack for the burst), and the pacer really
// waits. Measured alone: 96–99 Mbit/s; the lower bound is loose because a
// busy machine (go test runs packages in parallel) slows the transfer, not
// the pacer.
func TestCCPacer(t *testing.T) {
	const rate = 100e6
	st := newStubs(func() *stubController { return &stubController{rate: rate, mtu: 1024} })
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{bufSize: 2 << 20, engine: rocev2.Options{NewFlowController: st.factory}})
	got := writeAll(t, a, b, 2<<20, 64<<10, 10*time.Second)
	t.Logf("goodput %.1f Mbit/s at a forced %.0f Mbit/s", got/1e6, rate/1e6)
	if got > 1.2*rate || got < 0.25*rate {
		t.Fatalf("goodput %.1f Mbit/s at a forced %.0f Mbit/s: want at most 120 %% (and above 25 %%)", got/1e6, rate/1e6)
	}
	if s, _ := a.dev.QPFlowStats(a.qp.QPN()); s.Kind != rocev2.FlowControlCustom || s.PacerRate != rate || s.PacerWaits == 0 {
		t.Fatalf("stats %+v; want custom kind, pacer at the rate, and waits", s)
	}
}

// TestCCWindow: a controller window of 4 KiB keeps at most 4 packets of
// 1 KiB in flight, and the transfer completes.
func TestCCWindow(t *testing.T) {
	st := newStubs(func() *stubController { return &stubController{window: 4096, mtu: 1024} })
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{engine: rocev2.Options{NewFlowController: st.factory}})
	writeAll(t, a, b, 512<<10, 64<<10, 10*time.Second)
	c := st.nth(0)
	if m := c.maxInFlight.Load(); m < 1 || m > 4 {
		t.Fatalf("at most %d packets in flight, want 1..4", m)
	}
	if c.sentPkts.Load() != 512 || c.ackedPkts.Load() != 512 {
		t.Fatalf("controller heard %d sent and %d acknowledged packets, want 512 each", c.sentPkts.Load(), c.ackedPkts.Load())
	}
}

// TestCCRTT: the controller gets RTT samples, every one above 0 and below
// a second.
func TestCCRTT(t *testing.T) {
	st := newStubs(func() *stubController { return &stubController{mtu: 1024} })
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{engine: rocev2.Options{NewFlowController: st.factory}})
	// One message at a time: its last packet asks for the ACK that gives
	// the sample, so every message gives one.
	for range 16 {
		writeAll(t, a, b, 16<<10, 16<<10, 10*time.Second)
	}
	rtts := st.nth(0).samples()
	if len(rtts) < 16 {
		t.Fatalf("%d RTT samples for 16 messages sent one by one, want at least 16", len(rtts))
	}
	for _, r := range rtts {
		if r <= 0 || r >= time.Second {
			t.Fatalf("RTT sample %v outside (0, 1s); all: %v", r, rtts)
		}
	}
	if s, _ := a.dev.QPFlowStats(a.qp.QPN()); s.RTT <= 0 || s.RTTSamples != uint64(len(rtts)) {
		t.Fatalf("stats %+v; want the last RTT and %d samples", s, len(rtts))
	}
}

// TestCCLoss: under injected loss the controller hears go-backs, and the
// transfer still completes with the right bytes.
func TestCCLoss(t *testing.T) {
	st := newStubs(func() *stubController { return &stubController{mtu: 1024} })
	n, a, b := fakePair(t, porttest.NetworkOptions{LossPPM: 20_000, Seed: 7}, pairOptions{timeout: 8, engine: rocev2.Options{NewFlowController: st.factory}})
	writeAll(t, a, b, 512<<10, 64<<10, 20*time.Second)
	c := st.nth(0)
	if n.Stats().Lost.Load() == 0 {
		t.Fatal("the network lost nothing")
	}
	if c.losses.Load() == 0 {
		t.Fatalf("controller heard no loss; %d retransmits, %d timeouts, %d sequence NAKs", a.dev.Stats().Retransmits.Load(), a.dev.Stats().Timeouts.Load(), a.dev.Stats().SeqNAKsRcvd.Load())
	}
	if s, _ := a.dev.QPFlowStats(a.qp.QPN()); s.Losses != uint64(c.losses.Load()) {
		t.Fatalf("stats count %d losses, controller %d", s.Losses, c.losses.Load())
	}
}
