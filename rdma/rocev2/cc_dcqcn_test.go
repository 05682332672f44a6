package rocev2_test

import (
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/flowctl"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// ccLineRate is the DCQCN line rate in bits/s: slow enough for the pacer,
// not the CPU, to be what limits (the race detector slows the engine to
// ~150 Mbit/s).
var ccLineRate = map[bool]float64{false: 1e9, true: 100e6}[raceEnabled]

func dcqcnPair(t *testing.T, cePPM uint32) (*side, *side) {
	p := flowctl.DefaultDCQCNParams()
	p.RPGMinRate = uint32(ccLineRate / 20e6) // Mb/s: keeps the marked run short
	// The paper's 55 µs alpha period: the default 1 µs lets alpha decay to
	// almost nothing between two of our bursty CNPs.
	p.DCETCPRTT = 55
	_, a, b := fakePair(t, porttest.NetworkOptions{CEMarkPPM: cePPM}, pairOptions{bufSize: 2 << 20, engine: rocev2.Options{
		FlowControl: rocev2.FlowControlOptions{Kind: rocev2.FlowControlDCQCN, LineRate: ccLineRate, DCQCN: p},
	}})
	return a, b
}

// TestCCDCQCN: with every data packet CE-marked the sender hears CNPs, its
// DCQCN rate falls below the line rate and its goodput below that of the
// same transfer unmarked; without marks the rate stays at the line rate.
// Every transfer completes with the right bytes.
func TestCCDCQCN(t *testing.T) {
	const total, msg = 1 << 20, 64 << 10
	a, b := dcqcnPair(t, 0)
	clean := writeAll(t, a, b, total, msg, 10*time.Second)
	st, _ := a.dev.QPFlowStats(a.qp.QPN())
	if st.Rate != ccLineRate || st.CNPsRcvd != 0 || st.PacerRate != ccLineRate {
		t.Fatalf("unmarked: %+v; want rate and pacer at the line rate, no CNPs", st)
	}
	if st.SentBytes < total || st.RTTSamples == 0 {
		t.Fatalf("unmarked: %+v; want at least %d bytes reported sent and RTT samples", st, total)
	}

	ma, mb := dcqcnPair(t, 1_000_000)
	// Watch the sender's rate while the transfer runs: after it, DCQCN's
	// timer climbs back towards the line rate.
	minRate := make(chan float64)
	done := make(chan struct{})
	go func() {
		lo := ccLineRate
		for {
			if s, ok := ma.dev.QPFlowStats(ma.qp.QPN()); ok {
				lo = min(lo, s.Rate)
			}
			select {
			case <-done:
				minRate <- lo
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	marked := writeAll(t, ma, mb, total, msg, 20*time.Second)
	close(done)
	lo := <-minRate
	ms, _ := ma.dev.QPFlowStats(ma.qp.QPN())
	t.Logf("goodput unmarked %.0f Mbit/s, marked %.0f Mbit/s; lowest rate while marked %.0f Mbit/s; marked sender %+v", clean/1e6, marked/1e6, lo/1e6, ms)
	if ms.CNPsRcvd == 0 || mb.dev.Stats().CNPsSent.Load() == 0 {
		t.Fatalf("marked: sender heard %d CNPs, receiver sent %d", ms.CNPsRcvd, mb.dev.Stats().CNPsSent.Load())
	}
	// The first CNP halves the rate (alpha starts at 1); the sampler, which
	// may be starved on a busy machine, need not see the later cuts.
	if !(lo <= ccLineRate/2) {
		t.Fatalf("marked: lowest rate %.0f bit/s while the transfer ran, want at most half the line rate", lo)
	}
	// Goodput itself depends on how busy the machine is (go test runs
	// packages in parallel): the controller's state above is the assertion;
	// the pacer may only ever hold the sender back, never push it past the
	// line rate.
	if clean > 1.2*ccLineRate || marked > 1.2*ccLineRate {
		t.Fatalf("goodput unmarked %.0f, marked %.0f: above the paced line rate %.0f", clean, marked, ccLineRate)
	}
}
