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
	wr := []rdma.SendWR{{ID: 1, Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 64<<10), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), Signaled: true}}
	wcs := make([]rdma.WC, 4)
	var failed string
	cycle := func() {
		if _, err := a.qp.PostSend(wr); err != nil {
			failed = err.Error()
			return
		}
		deadline := time.Now().Add(5 * time.Second)
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
		}
	}
	measure := func(size int) float64 {
		wr[0].SGL = sge(a, 0, size)
		for i := 0; i < 50; i++ { // warm: queue slots, channels, slices
			cycle()
		}
		allocs := testing.AllocsPerRun(100, cycle)
		if failed != "" {
			t.Fatal(failed)
		}
		return allocs
	}
	small, large := measure(64<<10), measure(1<<20)
	t.Logf("allocations per WRITE: 64 KiB %.2f, 1 MiB %.2f", small, large)
	if small > 4 || large > small+1 {
		t.Fatalf("64 KiB WRITE allocates %.2f times, 1 MiB %.2f: want a small constant per message, nothing per packet", small, large)
	}
}
