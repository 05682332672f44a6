package rocev2_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma"
)

// TestScatterGather: a SEND gathered from three SGEs lands scattered over
// two; unsignaled requests complete silently, signaled ones report.
func TestScatterGather(t *testing.T) {
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{})
	fill(a.buf[:30000], 5)
	gather := []rdma.SGE{
		{Addr: a.mr.Addr() + 100, Length: 1000, LKey: a.mr.LKey()},
		{Addr: a.mr.Addr() + 5000, Length: 3000, LKey: a.mr.LKey()},
		{Addr: a.mr.Addr() + 20000, Length: 7, LKey: a.mr.LKey()},
	}
	scatter := []rdma.SGE{
		{Addr: b.mr.Addr() + 50000, Length: 2500, LKey: b.mr.LKey()},
		{Addr: b.mr.Addr() + 9000, Length: 5000, LKey: b.mr.LKey()},
	}
	postRecv(t, b.qp, rdma.RecvWR{ID: 1, SGL: scatter})
	post(t, a.qp,
		rdma.SendWR{ID: 10, Opcode: rdma.WRSend, SGL: gather}, // unsignaled
		rdma.SendWR{ID: 11, Opcode: rdma.WRRDMAWrite, SGL: gather[:1], RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), Signaled: true})
	wcs := waitWC(t, a.scq, 1, 5*time.Second)
	if wcs[0].ID != 11 || wcs[0].Status != rdma.WCSuccess {
		t.Fatalf("completions %+v: want only the signaled WRITE", wcs)
	}
	if k, _ := a.scq.Poll(make([]rdma.WC, 4)); k != 0 {
		t.Fatalf("%d extra completions for unsignaled requests", k)
	}
	rw := waitWC(t, b.rcq, 1, time.Second)[0]
	if rw.Status != rdma.WCSuccess || rw.ByteLen != 4007 {
		t.Fatalf("recv %+v", rw)
	}
	want := append(append(append([]byte{}, a.buf[100:1100]...), a.buf[5000:8000]...), a.buf[20000:20007]...)
	got := append(append([]byte{}, b.buf[50000:52500]...), b.buf[9000:9000+4007-2500]...)
	if !bytes.Equal(got, want) {
		t.Fatal("scattered bytes differ from the gathered ones")
	}
	// A SEND longer than the posted receive: local length error there,
	// invalid request at the sender.
	postRecv(t, b.qp, rdma.RecvWR{ID: 2, SGL: sge(b, 0, 10)})
	post(t, a.qp, rdma.SendWR{ID: 12, Opcode: rdma.WRSend, SGL: sge(a, 0, 11), Signaled: true})
	if wc := waitWC(t, b.rcq, 1, 5*time.Second)[0]; wc.Status != rdma.WCLocLenErr {
		t.Fatalf("short receive: %+v, want local length error", wc)
	}
	if wc := waitWC(t, a.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCRemInvReqErr {
		t.Fatalf("sender of the long SEND: %+v, want remote invalid request", wc)
	}
}

func TestQPStateMachine(t *testing.T) {
	_, a, _ := fakePair(t, porttest.NetworkOptions{}, pairOptions{})
	pd, _ := a.dev.AllocPD()
	cq, _ := a.dev.CreateCQ(8)
	qp, err := pd.CreateQP(rdma.QPInitAttr{SendCQ: cq, RecvCQ: cq, Cap: rdma.QPCap{MaxSendWR: 4, MaxRecvWR: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qp.PostSend([]rdma.SendWR{{Opcode: rdma.WRSend}}); !errors.Is(err, rdma.ErrInvalidState) {
		t.Fatalf("post send in RESET: %v", err)
	}
	if err := qp.Modify(&rdma.QPAttr{State: rdma.QPSRTS}, rdma.AttrState); !errors.Is(err, rdma.ErrInvalidState) {
		t.Fatalf("RESET -> RTS: %v, want ErrInvalidState", err)
	}
	if err := qp.Modify(&rdma.QPAttr{State: rdma.QPSInit}, rdma.AttrState); !errors.Is(err, rdma.ErrInvalidAttr) {
		t.Fatalf("RESET -> INIT without port/pkey/access: %v, want ErrInvalidAttr", err)
	}
	if err := qp.Modify(&rdma.QPAttr{State: rdma.QPSInit, Port: 1}, rdma.AttrState|rdma.AttrPort|rdma.AttrPKeyIndex|rdma.AttrAccessFlags); err != nil {
		t.Fatal(err)
	}
	bad := rdma.QPAttr{State: rdma.QPSRTR, PathMTU: 9, DestQPN: 1 << 24, AV: rdma.AddressVector{DGID: a.dev.GIDs()[0]}}
	if err := qp.Modify(&bad, rdma.AttrState|rdma.AttrAV|rdma.AttrPathMTU|rdma.AttrDestQPN|rdma.AttrRQPSN|rdma.AttrMaxDestRdAtomic|rdma.AttrMinRNRTimer); !errors.Is(err, rdma.ErrInvalidAttr) {
		t.Fatalf("INIT -> RTR with MTU 9 and a 25-bit QPN: %v, want ErrInvalidAttr", err)
	}
	if got, _ := qp.Query(); got.State != rdma.QPSInit {
		t.Fatalf("state after refused transitions = %s, want INIT", got.State)
	}
	// Receives posted in INIT flush when the QP goes to ERR.
	postRecv(t, qp, rdma.RecvWR{ID: 7})
	if err := qp.Modify(&rdma.QPAttr{State: rdma.QPSError}, rdma.AttrState); err != nil {
		t.Fatal(err)
	}
	if wc := waitWC(t, cq, 1, time.Second)[0]; wc.ID != 7 || wc.Status != rdma.WCWRFlushErr {
		t.Fatalf("flushed receive: %+v", wc)
	}
	if err := qp.Modify(&rdma.QPAttr{State: rdma.QPSReset}, rdma.AttrState); err != nil {
		t.Fatal(err)
	}
	if err := qp.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestCQOverflow(t *testing.T) {
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{depth: 4})
	wrs := make([]rdma.SendWR, 4)
	for i := range wrs {
		wrs[i] = rdma.SendWR{ID: uint64(i), Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 8), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), Signaled: true}
	}
	post(t, a.qp, wrs...)
	waitWC(t, a.scq, 4, 5*time.Second)
	// Four more fill the 4-deep CQ; a fifth cannot be queued.
	post(t, a.qp, wrs...)
	deadline := time.Now().Add(5 * time.Second)
	for b.dev.Stats().RxPackets.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the ACKs travel back
	post(t, a.qp, wrs[:1]...)
	for b.dev.Stats().RxPackets.Load() < 9 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // its completion finds the CQ full
	var got int
	var err error
	buf := make([]rdma.WC, 8)
	for time.Now().Before(deadline) {
		var k int
		k, err = a.scq.Poll(buf)
		got += k
		if err != nil || got > 4 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if got != 4 || !errors.Is(err, rdma.ErrCQOverflow) {
		t.Fatalf("polled %d completions then %v; want 4 then ErrCQOverflow", got, err)
	}
}
