package rocev2_test

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma"
)

// pollRecv runs s's receive path on the calling goroutine (rdma.Poller)
// until s's receive queue has a completion, and returns it, yielding now
// and then as a waiter that polls does (rdmatransport's request.Wait).
func pollRecv(t *testing.T, s *side) rdma.WC {
	t.Helper()
	if !s.dev.StartPolling() {
		t.Fatal("StartPolling refused on a port that allows spinning")
	}
	defer s.dev.StopPolling()
	var wc [1]rdma.WC
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if i%64 == 63 {
			runtime.Gosched() // as pollers do: the engine's goroutines share the processors
		}
		s.dev.Poll()
		if n, err := s.rcq.Poll(wc[:]); err != nil {
			t.Fatal(err)
		} else if n == 1 {
			return wc[0]
		}
	}
	t.Fatal("no receive completion in 10 s")
	return wc[0]
}

// pingPong runs rounds of a ping from a and a pong from b, each side
// polling for the other's message (run to completion), with SENDs or
// WRITEs with immediate of size bytes.
func pingPong(t *testing.T, a, b *side, rounds, size int, op rdma.WROpcode) {
	t.Helper()
	for _, s := range []*side{a, b} {
		for i := range rounds {
			postRecv(t, s.qp, rdma.RecvWR{ID: uint64(i), SGL: sge(s, 0, size)})
		}
	}
	wr := func(s, peer *side, i int) rdma.SendWR {
		w := rdma.SendWR{ID: uint64(i), Opcode: op, SGL: sge(s, size, size), Signaled: true, Imm: uint32(i)}
		if op == rdma.WRRDMAWriteWithImm {
			w.RemoteAddr, w.RKey = peer.mr.Addr(), peer.mr.RKey()
		}
		return w
	}
	errc := make(chan string, 1)
	go func() { // b: wait for the ping, answer it
		for i := range rounds {
			if wc := pollRecv(t, b); wc.Status != rdma.WCSuccess {
				errc <- wc.Err().Error()
				return
			}
			if !bytes.Equal(b.buf[:size], a.buf[size:2*size]) {
				errc <- "pong side got other bytes than the ping's"
				return
			}
			post(t, b.qp, wr(b, a, i))
		}
		errc <- ""
	}()
	for i := range rounds {
		fill(a.buf[size:2*size], byte(i))
		post(t, a.qp, wr(a, b, i))
		if wc := pollRecv(t, a); wc.Status != rdma.WCSuccess {
			t.Fatalf("round %d: %v", i, wc.Err())
		}
	}
	if e := <-errc; e != "" {
		t.Fatal(e)
	}
	// Every request is acknowledged, the last ones too, though nobody
	// sends after them: held ACKs go out after ackHold.
	for _, s := range []*side{a, b} {
		for _, wc := range waitWC(t, s.scq, rounds, 5*time.Second) {
			if wc.Status != rdma.WCSuccess {
				t.Fatalf("send completion: %v", wc.Err())
			}
		}
	}
}

// TestPolledSendAcksRideAlong: the ACK of a SEND that a polling waiter
// received waits for the waiter's answer and goes out in the same Send
// call; WRITEs are acknowledged at once; no held ACK is ever late enough
// for the requester's retransmission timer.
func TestPolledSendAcksRideAlong(t *testing.T) {
	// ACK timeout 67 ms, as rdmatransport sets it: a loaded machine may
	// keep a goroutine from running for milliseconds, a held ACK too.
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{poll: true, timeout: 14})
	const rounds = 200
	pingPong(t, a, b, rounds, 64, rdma.WRSend)
	st := b.dev.Stats()
	held := st.AcksHeld.Load()
	if held == 0 {
		t.Fatal("no ACK was held for the answer to carry")
	}
	if pk, calls := b.pport.Stats().TxPackets.Load(), b.pport.SendCalls(); pk <= calls {
		t.Errorf("the pong side sent %d packets in %d Send calls: no ACK went out with the data", pk, calls)
	}
	for _, s := range []*side{a, b} {
		if n := s.dev.Stats().Timeouts.Load(); n != 0 {
			t.Errorf("%d retransmission timeouts: a held ACK was late", n)
		}
	}
	t.Logf("pong side: %d ACKs held of %d sent, %d packets in %d Send calls", held, st.AcksSent.Load(), b.pport.Stats().TxPackets.Load(), b.pport.SendCalls())

	pingPong(t, a, b, 50, 64, rdma.WRRDMAWriteWithImm)
	if n := b.dev.Stats().AcksHeld.Load(); n != held {
		t.Errorf("WRITE ACKs held: %d more", n-held)
	}
}

// TestPolledAcksNotHeldWithoutSpin: a port that does not let callers spin
// refuses StartPolling, and the receive goroutine acknowledges at once.
func TestPolledAcksNotHeldWithoutSpin(t *testing.T) {
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{poll: true, noSpin: true})
	if a.dev.StartPolling() {
		a.dev.StopPolling()
		t.Fatal("StartPolling granted where the port refuses spinning")
	}
	postRecv(t, b.qp, rdma.RecvWR{ID: 1, SGL: sge(b, 0, 64)})
	post(t, a.qp, rdma.SendWR{ID: 1, Opcode: rdma.WRSend, SGL: sge(a, 64, 64), Signaled: true})
	waitWC(t, b.rcq, 1, 5*time.Second)
	waitWC(t, a.scq, 1, 5*time.Second)
	if n := b.dev.Stats().AcksHeld.Load(); n != 0 {
		t.Errorf("%d ACKs held by the receive goroutine that does not spin", n)
	}
}
