package rocev2_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// The error paths of issue 3, over AF_XDP in a 2-host lab: a bad rkey, a
// SEND without a RECV, and a peer that vanishes.

// pairOn makes one more connected QP pair (each with its own PD, CQs and
// registered buffer) on two devices that already run.
func pairOn(t *testing.T, da, db *rocev2.Device, o pairOptions, psn uint32) (*side, *side) {
	t.Helper()
	o.defaults()
	a := newSide(t, da, o, psn)
	b := newSide(t, db, o, psn+0x777)
	connect(t, a, b, o)
	return a, b
}

func TestE2ELabBadRKey(t *testing.T) {
	_, a0, b0 := labPair(t, dataplane.TransportAFXDP, pairOptions{bufSize: 64 << 10})
	cases := []struct {
		name string
		wr   func(a, b *side) rdma.SendWR
	}{
		{"write/no such rkey", func(a, b *side) rdma.SendWR {
			return rdma.SendWR{Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 4096), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey() ^ 0x100}
		}},
		{"write/past the end", func(a, b *side) rdma.SendWR {
			return rdma.SendWR{Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 4096), RemoteAddr: b.mr.Addr() + uint64(len(b.buf)) - 4095, RKey: b.mr.RKey()}
		}},
		{"write/before the start", func(a, b *side) rdma.SendWR {
			return rdma.SendWR{Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 16), RemoteAddr: b.mr.Addr() - 8, RKey: b.mr.RKey()}
		}},
		{"write-imm/no such rkey", func(a, b *side) rdma.SendWR {
			return rdma.SendWR{Opcode: rdma.WRRDMAWriteWithImm, Imm: 5, SGL: sge(a, 0, 3000), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey() + 1}
		}},
		{"read/no such rkey", func(a, b *side) rdma.SendWR {
			return rdma.SendWR{Opcode: rdma.WRRDMARead, SGL: sge(a, 8192, 4096), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey() ^ 0x100}
		}},
		{"fetch-add/no such rkey", func(a, b *side) rdma.SendWR {
			return rdma.SendWR{Opcode: rdma.WRAtomicFetchAndAdd, SGL: sge(a, 8192, 8), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey() ^ 0x100, CompareAdd: 1}
		}},
		{"cmp-swap/past the end", func(a, b *side) rdma.SendWR {
			return rdma.SendWR{Opcode: rdma.WRAtomicCmpAndSwp, SGL: sge(a, 8192, 8), RemoteAddr: b.mr.Addr() + uint64(len(b.buf)), RKey: b.mr.RKey(), Swap: 1}
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := pairOn(t, a0.dev, b0.dev, pairOptions{bufSize: 64 << 10}, uint32(0x10000*(i+1)))
			fill(a.buf, 0x11)
			fill(b.buf, 0x5a)
			aWas, bWas := bytes.Clone(a.buf), bytes.Clone(b.buf)
			postRecv(t, b.qp, rdma.RecvWR{ID: 77, SGL: sge(b, 0, 4096)}) // WRITE_WITH_IMM would consume it
			wr := c.wr(a, b)
			wr.ID, wr.Signaled = 1, true
			post(t, a.qp, wr, rdma.SendWR{ID: 2, Opcode: rdma.WRSend, SGL: sge(a, 0, 8), Signaled: true})
			wcs := waitWC(t, a.scq, 2, 5*time.Second)
			if wcs[0].ID != 1 || wcs[0].Status != rdma.WCRemAccessErr {
				t.Fatalf("completion %+v, want request 1 with %s", wcs[0], rdma.WCRemAccessErr)
			}
			if wcs[1].ID != 2 || wcs[1].Status != rdma.WCWRFlushErr {
				t.Fatalf("completion %+v, want request 2 flushed", wcs[1])
			}
			if i := firstDiff(b.buf, bWas); i >= 0 {
				t.Fatalf("target byte %d changed: %#x, was %#x", i, b.buf[i], bWas[i])
			}
			if i := firstDiff(a.buf, aWas); i >= 0 {
				t.Fatalf("requester byte %d changed: %#x, was %#x (a failed READ/atomic placed data)", i, a.buf[i], aWas[i])
			}
			var rw [4]rdma.WC
			if n, err := b.rcq.Poll(rw[:]); err != nil || n != 0 {
				t.Fatalf("responder completions %+v (%v), want none", rw[:n], err)
			}
		})
	}
}

// firstDiff is the first index where a and b differ, -1 if none.
func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func TestE2ELabRNR(t *testing.T) {
	_, a0, b0 := labPair(t, dataplane.TransportAFXDP, pairOptions{})
	t.Run("then success", func(t *testing.T) {
		a, b := pairOn(t, a0.dev, b0.dev, pairOptions{rnrRetry: 7}, 0x20000)
		fill(a.buf[:3000], 9)
		before := a.dev.Stats().RNRNAKsRcvd.Load()
		post(t, a.qp, rdma.SendWR{ID: 1, Opcode: rdma.WRSend, SGL: sge(a, 0, 3000), Signaled: true})
		deadline := time.Now().Add(5 * time.Second)
		for a.dev.Stats().RNRNAKsRcvd.Load()-before < 3 {
			if time.Now().After(deadline) {
				t.Fatalf("%d RNR NAKs in 5 s while no receive was posted, want at least 3", a.dev.Stats().RNRNAKsRcvd.Load()-before)
			}
			time.Sleep(time.Millisecond)
		}
		var wc [1]rdma.WC
		if n, _ := a.scq.Poll(wc[:]); n != 0 {
			t.Fatalf("send completed before a receive was posted: %+v", wc[0])
		}
		postRecv(t, b.qp, rdma.RecvWR{ID: 5, SGL: sge(b, 100, 4000)})
		if wc := waitWC(t, a.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCSuccess || wc.ID != 1 {
			t.Fatalf("send after RNR: %+v", wc)
		}
		if wc := waitWC(t, b.rcq, 1, time.Second)[0]; wc.Status != rdma.WCSuccess || wc.ID != 5 || wc.ByteLen != 3000 {
			t.Fatalf("recv after RNR: %+v", wc)
		}
		if !bytes.Equal(b.buf[100:3100], a.buf[:3000]) {
			t.Fatal("received bytes differ")
		}
		t.Logf("%d RNR NAKs before the receive was posted", a.dev.Stats().RNRNAKsRcvd.Load()-before)
	})
	t.Run("retry exceeded", func(t *testing.T) {
		a, _ := pairOn(t, a0.dev, b0.dev, pairOptions{rnrRetry: 1}, 0x30000)
		before := a.dev.Stats().RNRNAKsRcvd.Load()
		post(t, a.qp, rdma.SendWR{ID: 1, Opcode: rdma.WRSend, SGL: sge(a, 0, 100), Signaled: true},
			rdma.SendWR{ID: 2, Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 100), Signaled: true})
		wcs := waitWC(t, a.scq, 2, 5*time.Second)
		if wcs[0].ID != 1 || wcs[0].Status != rdma.WCRNRRetryExcErr || wcs[1].ID != 2 || wcs[1].Status != rdma.WCWRFlushErr {
			t.Fatalf("completions %+v, want 1 %s then 2 flushed", wcs, rdma.WCRNRRetryExcErr)
		}
		if got := a.dev.Stats().RNRNAKsRcvd.Load() - before; got != 2 {
			t.Fatalf("RNR NAKs received = %d, want 2 (first try + 1 retry)", got)
		}
	})
}

func TestE2ELabVanishedPeer(t *testing.T) {
	const timeout, retry = 10, 3 // 4.19 ms × (1 + 3)
	_, a, b := labPair(t, dataplane.TransportAFXDP, pairOptions{timeout: timeout, retry: retry})
	// The pair works first.
	fill(a.buf[:4096], 3)
	post(t, a.qp, rdma.SendWR{ID: 1, Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 4096), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), Signaled: true})
	if wc := waitWC(t, a.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCSuccess {
		t.Fatalf("write before the peer vanished: %+v", wc)
	}
	if err := b.dev.Close(); err != nil {
		t.Fatalf("close h1's device: %v", err)
	}
	timeoutsBefore := a.dev.Stats().Timeouts.Load()
	start := time.Now()
	post(t, a.qp,
		rdma.SendWR{ID: 2, Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 4096), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), Signaled: true},
		rdma.SendWR{ID: 3, Opcode: rdma.WRSend, SGL: sge(a, 0, 64)},
		rdma.SendWR{ID: 4, Opcode: rdma.WRRDMARead, SGL: sge(a, 8192, 64), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), Signaled: true})
	wcs := waitWC(t, a.scq, 3, 10*time.Second)
	took := time.Since(start)
	if wcs[0].ID != 2 || wcs[0].Status != rdma.WCRetryExcErr {
		t.Fatalf("first completion %+v, want request 2 with %s", wcs[0], rdma.WCRetryExcErr)
	}
	for i, id := range []uint64{3, 4} { // unsignaled requests complete when flushed
		if wcs[1+i].ID != id || wcs[1+i].Status != rdma.WCWRFlushErr {
			t.Fatalf("completion %+v, want request %d flushed", wcs[1+i], id)
		}
	}
	limit := time.Duration(retry+1) * rdma.AckTimeout(timeout)
	const slack = 250 * time.Millisecond // timer tick, scheduling on a shared machine
	if took < limit || took > limit+slack {
		t.Fatalf("retry exceeded after %v, want timeout × (retries+1) = %v (+ %v)", took, limit, slack)
	}
	if got := a.dev.Stats().Timeouts.Load() - timeoutsBefore; got != retry+1 {
		t.Fatalf("timeouts = %d, want %d", got, retry+1)
	}
	// The QP is in error: what is posted now is flushed at once.
	post(t, a.qp, rdma.SendWR{ID: 5, Opcode: rdma.WRSend, SGL: sge(a, 0, 8)})
	if wc := waitWC(t, a.scq, 1, time.Second)[0]; wc.ID != 5 || wc.Status != rdma.WCWRFlushErr {
		t.Fatalf("after the error: %+v, want request 5 flushed", wc)
	}
	if attr, err := a.qp.Query(); err != nil || attr.State != rdma.QPSError {
		t.Fatalf("QP state %v (%v), want %v", attr.State, err, rdma.QPSError)
	}
	t.Logf("retry exceeded after %v (limit %v)", took.Round(10*time.Microsecond), limit)
}
