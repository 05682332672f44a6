package rocev2_test

import (
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma"
)

// TestEngineZeroAllocs: once warm, the engines allocate nothing per packet.
// A 64 KiB RDMA WRITE (64 packets out, ACKs back, a completion) and a 1 MiB
// one (1024 packets) allocate the same small constant per message (the
// scheduler's wake-ups; measured 2), counted across every goroutine of the
// process. The in-memory network reuses its queue slots after the first lap.
func TestEngineZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	_, a, b := fakePair(t, porttest.NetworkOptions{QueueLen: 256}, pairOptions{bufSize: 1 << 20})
	small, large := writeAllocs(t, a, b, 50, 100, 64<<10), writeAllocs(t, a, b, 50, 100, 1<<20)
	t.Logf("allocations per WRITE: 64 KiB %.2f, 1 MiB %.2f", small, large)
	if small > 4 || large > small+1 {
		t.Fatalf("64 KiB WRITE allocates %.2f times, 1 MiB %.2f: want a small constant per message, nothing per packet", small, large)
	}
}

// writeAllocs warms up with warm RDMA WRITEs of size bytes from a to b, then
// returns testing.AllocsPerRun over runs more, each posted and polled to its
// completion (polling with short sleeps, so that paced senders get the CPU).
func writeAllocs(t *testing.T, a, b *side, warm, runs, size int) float64 {
	t.Helper()
	wr := []rdma.SendWR{{ID: 1, Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, size), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), Signaled: true}}
	wcs := make([]rdma.WC, 4)
	var failed string
	cycle := func() {
		if _, err := a.qp.PostSend(wr); err != nil {
			failed = err.Error()
			return
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, err := a.scq.Poll(wcs)
			if err != nil || n > 0 && wcs[0].Status != rdma.WCSuccess {
				failed = "completion error"
				return
			}
			if n > 0 {
				return
			}
			if time.Now().After(deadline) {
				failed = "no completion"
				return
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	for range warm {
		cycle()
	}
	allocs := testing.AllocsPerRun(runs, cycle)
	if failed != "" {
		t.Fatal(failed)
	}
	return allocs
}
