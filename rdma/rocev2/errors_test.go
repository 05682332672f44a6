package rocev2_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma"
)

func TestBadRKeyWritesNothing(t *testing.T) {
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{})
	fill(a.buf[:4096], 1)
	cases := []rdma.SendWR{
		{ID: 1, Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 4096), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey() ^ 0x100, Signaled: true},                    // no such key
		{ID: 2, Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 4096), RemoteAddr: b.mr.Addr() + uint64(len(b.buf)) - 100, RKey: b.mr.RKey(), Signaled: true}, // past the end
	}
	for _, wr := range cases {
		_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{})
		fill(a.buf[:4096], 1)
		if wr.ID == 1 {
			wr.RKey = b.mr.RKey() ^ 0x100
			wr.RemoteAddr = b.mr.Addr()
		} else {
			wr.RKey, wr.RemoteAddr = b.mr.RKey(), b.mr.Addr()+uint64(len(b.buf))-100
		}
		wr.SGL = sge(a, 0, 4096)
		post(t, a.qp, wr)
		wc := waitWC(t, a.scq, 1, 5*time.Second)[0]
		if wc.Status != rdma.WCRemAccessErr {
			t.Fatalf("case %d: completion %+v, want remote access error", wr.ID, wc)
		}
		for i, v := range b.buf {
			if v != 0 {
				t.Fatalf("case %d: byte %d of the target was written", wr.ID, i)
			}
		}
		// The requester QP is in error: later requests flush.
		post(t, a.qp, rdma.SendWR{ID: 9, Opcode: rdma.WRSend, SGL: sge(a, 0, 8)})
		if wc := waitWC(t, a.scq, 1, time.Second)[0]; wc.Status != rdma.WCWRFlushErr || wc.ID != 9 {
			t.Fatalf("case %d: after the error: %+v, want flush", wr.ID, wc)
		}
	}
	// A deregistered region is revoked at once.
	if err := b.mr.Deregister(); err != nil {
		t.Fatal(err)
	}
	post(t, a.qp, rdma.SendWR{ID: 3, Opcode: rdma.WRRDMARead, SGL: sge(a, 0, 8), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), Signaled: true})
	if wc := waitWC(t, a.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCRemAccessErr {
		t.Fatalf("read of a deregistered region: %+v, want remote access error", wc)
	}
}

func TestRNRThenSuccess(t *testing.T) {
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{rnrRetry: 7})
	post(t, a.qp, rdma.SendWR{ID: 1, Opcode: rdma.WRSend, SGL: sge(a, 0, 100), Signaled: true})
	time.Sleep(20 * time.Millisecond)
	if a.dev.Stats().RNRNAKsRcvd.Load() == 0 {
		t.Fatal("no RNR NAK while no receive was posted")
	}
	postRecv(t, b.qp, rdma.RecvWR{ID: 5, SGL: sge(b, 0, 100)})
	if wc := waitWC(t, a.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCSuccess {
		t.Fatalf("send after RNR: %+v", wc)
	}
	if wc := waitWC(t, b.rcq, 1, time.Second)[0]; wc.Status != rdma.WCSuccess || wc.ByteLen != 100 {
		t.Fatalf("recv after RNR: %+v", wc)
	}
}

// A multi-packet SEND that meets no receive: the packets behind the
// RNR-NAKed first one must not cost transport retries, or a requester with
// infinite RNR retries fails with RETRY_EXC_ERR after a few RNR rounds.
func TestRNRMultiPacketKeepsTransportRetries(t *testing.T) {
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{rnrRetry: 7, retry: 1})
	fill(a.buf[:5000], 3)
	post(t, a.qp, rdma.SendWR{ID: 1, Opcode: rdma.WRSend, SGL: sge(a, 0, 5000), Signaled: true}) // 5 packets at MTU 1024
	deadline := time.Now().Add(5 * time.Second)
	for a.dev.Stats().RNRNAKsRcvd.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d RNR NAKs in 5 s, want 10", a.dev.Stats().RNRNAKsRcvd.Load())
		}
		time.Sleep(time.Millisecond)
	}
	var wc [1]rdma.WC
	if n, _ := a.scq.Poll(wc[:]); n != 0 {
		t.Fatalf("send completed during RNR rounds: %+v", wc[0])
	}
	if n := b.dev.Stats().SeqNAKsSent.Load(); n != 0 {
		t.Fatalf("responder sent %d sequence NAKs for packets behind an RNR NAK, want 0", n)
	}
	postRecv(t, b.qp, rdma.RecvWR{ID: 5, SGL: sge(b, 0, 5000)})
	if wc := waitWC(t, a.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCSuccess {
		t.Fatalf("send after RNR rounds: %+v", wc)
	}
	if wc := waitWC(t, b.rcq, 1, time.Second)[0]; wc.Status != rdma.WCSuccess || wc.ByteLen != 5000 || !bytes.Equal(b.buf[:5000], a.buf[:5000]) {
		t.Fatalf("recv after RNR rounds: %+v", wc)
	}
}

func TestRNRRetryExceeded(t *testing.T) {
	_, a, _ := fakePair(t, porttest.NetworkOptions{}, pairOptions{rnrRetry: 2})
	post(t, a.qp, rdma.SendWR{ID: 1, Opcode: rdma.WRSend, SGL: sge(a, 0, 100), Signaled: true}, rdma.SendWR{ID: 2, Opcode: rdma.WRSend, SGL: sge(a, 0, 100), Signaled: true})
	wcs := waitWC(t, a.scq, 2, 5*time.Second)
	if wcs[0].Status != rdma.WCRNRRetryExcErr || wcs[1].Status != rdma.WCWRFlushErr {
		t.Fatalf("completions %+v, want RNR retry exceeded then flush", wcs)
	}
	if got := a.dev.Stats().RNRNAKsRcvd.Load(); got != 3 {
		t.Fatalf("RNR NAKs received = %d, want 3 (first try + 2 retries)", got)
	}
}

func TestVanishedPeer(t *testing.T) {
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{timeout: 8, retry: 3}) // 1 ms × (1+3)
	b.dev.Close()
	start := time.Now()
	post(t, a.qp, rdma.SendWR{ID: 1, Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 64), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), Signaled: true},
		rdma.SendWR{ID: 2, Opcode: rdma.WRSend, SGL: sge(a, 0, 64), Signaled: true})
	wcs := waitWC(t, a.scq, 2, 5*time.Second)
	took := time.Since(start)
	if wcs[0].Status != rdma.WCRetryExcErr || wcs[1].Status != rdma.WCWRFlushErr {
		t.Fatalf("completions %+v, want retry exceeded then flush", wcs)
	}
	if min := 4 * rdma.AckTimeout(8); took < min || took > 50*min {
		t.Fatalf("retry exceeded after %v, want about timeout × (retries+1) = %v", took, min)
	}
	if got := a.dev.Stats().Timeouts.Load(); got != 4 {
		t.Fatalf("timeouts = %d, want 4", got)
	}
}
