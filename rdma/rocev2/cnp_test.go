package rocev2_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/flowctl"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

type countingFC struct {
	nopController
	cnps atomic.Int64
}

func (c *countingFC) OnCNP(time.Time) { c.cnps.Add(1) }

// TestCNP: every data packet arrives CE-marked; the notification point
// answers with CNPs, at most one per CNPInterval per QP, and the sender's
// flow controller hears each one.
func TestCNP(t *testing.T) {
	fcs := map[uint32]*countingFC{}
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	o := pairOptions{engine: rocev2.Options{
		CNPInterval: time.Hour, // exactly one CNP per QP in this test
		NewFlowController: func(qpn uint32) flowctl.Controller {
			<-mu
			defer func() { mu <- struct{}{} }()
			fc := &countingFC{}
			fcs[qpn] = fc
			return fc
		},
	}}
	n, a, b := fakePair(t, porttest.NetworkOptions{CEMarkPPM: 1_000_000}, o)
	fill(a.buf[:100_000], 9)
	post(t, a.qp, rdma.SendWR{ID: 1, Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 100_000), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), Signaled: true})
	if wc := waitWC(t, a.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCSuccess {
		t.Fatal(wc)
	}
	// READ: the responses carry the data back, CE-marked too.
	post(t, a.qp, rdma.SendWR{ID: 2, Opcode: rdma.WRRDMARead, SGL: sge(a, 200_000, 100_000), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), Signaled: true})
	if wc := waitWC(t, a.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCSuccess {
		t.Fatal(wc)
	}
	deadline := time.Now().Add(2 * time.Second)
	for fcs[a.qp.QPN()].cnps.Load() < 1 || fcs[b.qp.QPN()].cnps.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("flow controllers heard %d (requester) and %d (responder) CNPs, want 1 each", fcs[a.qp.QPN()].cnps.Load(), fcs[b.qp.QPN()].cnps.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if got := b.dev.Stats().CNPsSent.Load(); got != 1 {
		t.Fatalf("responder sent %d CNPs, want 1 (rate limit of one per interval)", got)
	}
	if got := a.dev.Stats().CNPsSent.Load(); got != 1 {
		t.Fatalf("requester sent %d CNPs for the CE-marked READ responses, want 1", got)
	}
	if got := b.dev.Stats().CERcvd.Load(); got != 99 {
		t.Fatalf("responder saw %d CE-marked requests, want 99 (98 WRITE packets and the READ request)", got)
	}
	if n.Stats().CEMarked.Load() == 0 {
		t.Fatal("the network marked nothing: data packets are not ECT")
	}
}
