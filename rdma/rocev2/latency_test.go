package rocev2_test

import (
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// TestOpLatency: every successful request lands once in its class's
// histogram, unsignaled ones too; a failed request does not.
func TestOpLatency(t *testing.T) {
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{})
	for i := 0; i < 4; i++ { // three SENDs and a WRITE with immediate
		postRecv(t, b.qp, rdma.RecvWR{ID: uint64(i), SGL: sge(b, 4096*i, 4096)})
	}
	wr := func(id uint64, op rdma.WROpcode, n int, sig bool) rdma.SendWR {
		return rdma.SendWR{ID: id, Opcode: op, SGL: sge(a, 0, n), RemoteAddr: b.mr.Addr() + 65536, RKey: b.mr.RKey(), Signaled: sig}
	}
	post(t, a.qp,
		wr(1, rdma.WRSend, 100, true), wr(2, rdma.WRSendWithImm, 3000, false), wr(3, rdma.WRSend, 10, true),
		wr(4, rdma.WRRDMAWrite, 5000, true), wr(5, rdma.WRRDMAWriteWithImm, 10, false),
		wr(6, rdma.WRRDMARead, 2500, true),
		wr(7, rdma.WRAtomicFetchAndAdd, 8, true), wr(8, rdma.WRAtomicCmpAndSwp, 8, true),
		wr(9, rdma.WRRDMAWrite, 8, true))
	for _, wc := range waitWC(t, a.scq, 7, 5*time.Second) {
		if wc.Status != rdma.WCSuccess {
			t.Fatalf("request %d: %v", wc.ID, wc.Status)
		}
	}
	want := map[rocev2.OpClass]uint64{rocev2.OpClassSend: 3, rocev2.OpClassWrite: 3, rocev2.OpClassRead: 1, rocev2.OpClassAtomic: 2}
	st := a.dev.Stats()
	for _, c := range rocev2.OpClasses() {
		s := st.OpLatency[c].Snapshot()
		if s.Count != want[c] {
			t.Errorf("%s: %d latencies recorded, want %d", c, s.Count, want[c])
		}
		if s.Count > 0 && (s.Sum <= 0 || s.Quantile(1) > 5*time.Second) {
			t.Errorf("%s: sum %v, max %v: not a post-to-completion time", c, s.Sum, s.Quantile(1))
		}
	}
	// The responder side posted nothing.
	for _, c := range rocev2.OpClasses() {
		if n := b.dev.Stats().OpLatency[c].Snapshot().Count; n != 0 {
			t.Errorf("responder %s: %d latencies, want 0", c, n)
		}
	}
	// A request with a bad local key fails: no latency.
	before := st.OpLatency[rocev2.OpClassWrite].Snapshot().Count
	bad := wr(10, rdma.WRRDMAWrite, 64, true)
	bad.SGL[0].LKey ^= 0x5a5a
	post(t, a.qp, bad)
	if wc := waitWC(t, a.scq, 1, 5*time.Second); wc[0].Status == rdma.WCSuccess {
		t.Fatalf("bad lkey completed with success")
	}
	if n := st.OpLatency[rocev2.OpClassWrite].Snapshot().Count; n != before {
		t.Errorf("failed WRITE recorded a latency: %d, want %d", n, before)
	}
}

// TestOpLatencyNoAllocs: recording a latency adds no allocation to a
// posted-and-completed RDMA WRITE (the same small per-message constant as
// TestEngineZeroAllocs, from the scheduler's wake-ups), and counts each.
func TestOpLatencyNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	_, a, b := fakePair(t, porttest.NetworkOptions{QueueLen: 256}, pairOptions{bufSize: 1 << 20})
	allocs := writeAllocs(t, a, b, 20, 100, 4096)
	if allocs > 4 {
		t.Fatalf("a 4 KiB WRITE allocates %.2f times, want at most the scheduler's small constant", allocs)
	}
	// AllocsPerRun runs the function once more than asked, to warm up.
	if n := a.dev.Stats().OpLatency[rocev2.OpClassWrite].Snapshot().Count; n != 20+100+1 {
		t.Fatalf("%d WRITE latencies recorded, want %d", n, 20+100+1)
	}
	h := &a.dev.Stats().OpLatency[rocev2.OpClassRead]
	if n := testing.AllocsPerRun(1000, func() { h.Observe(37 * time.Microsecond) }); n != 0 {
		t.Fatalf("Observe allocates %v", n)
	}
}
