package rocev2_test

import (
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// TestCCZeroAllocs: with DCQCN wired and every data packet CE-marked (so
// CNPs, rate cuts, the pacer and RTT samples all run), a 1 MiB WRITE allocates
// no more than a 64 KiB one: nothing per packet.
func TestCCZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	_, a, b := fakePair(t, porttest.NetworkOptions{QueueLen: 256, CEMarkPPM: 1_000_000}, pairOptions{bufSize: 1 << 20, engine: rocev2.Options{
		FlowControl: rocev2.FlowControlOptions{Kind: rocev2.FlowControlDCQCN, LineRate: 10e9},
	}})
	small, large := writeAllocs(t, a, b, 20, 20, 64<<10), writeAllocs(t, a, b, 20, 20, 1<<20)
	st, _ := a.dev.QPFlowStats(a.qp.QPN())
	t.Logf("allocations per WRITE: 64 KiB %.2f, 1 MiB %.2f; sender %+v", small, large, st)
	if st.CNPsRcvd == 0 || st.RTTSamples == 0 || st.SentBytes < 40<<20 {
		t.Fatalf("sender %+v: want CNPs heard, RTT samples and every byte reported", st)
	}
	if large > small+2 {
		t.Fatalf("64 KiB WRITE allocates %.2f times, 1 MiB %.2f: want nothing per packet", small, large)
	}
}

// TestCCDelay: the delay-based controller runs end to end: it gets RTT
// samples, sets a window and a rate, and the transfer completes intact.
func TestCCDelay(t *testing.T) {
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{engine: rocev2.Options{
		FlowControl: rocev2.FlowControlOptions{Kind: rocev2.FlowControlDelay},
	}})
	writeAll(t, a, b, 512<<10, 64<<10, 10*time.Second)
	st, _ := a.dev.QPFlowStats(a.qp.QPN())
	if st.Kind != rocev2.FlowControlDelay || st.RTTSamples == 0 || st.Window <= 0 || st.Rate <= 0 {
		t.Fatalf("sender %+v: want delay with RTT samples, a window and a rate", st)
	}
}
