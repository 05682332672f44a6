package rocev2_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma"
)

func TestSendRecv(t *testing.T) {
	for _, size := range []int{0, 1, 1023, 1024, 1025, 5000, 64 << 10} {
		_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{})
		fill(a.buf[:size], 7)
		postRecv(t, b.qp, rdma.RecvWR{ID: 99, SGL: sge(b, 0, 64<<10)})
		post(t, a.qp, rdma.SendWR{ID: 1, Opcode: rdma.WRSendWithImm, Imm: 0xabcd, SGL: sge(a, 0, size), Signaled: true})
		sw := waitWC(t, a.scq, 1, 5*time.Second)[0]
		rw := waitWC(t, b.rcq, 1, 5*time.Second)[0]
		if sw.Status != rdma.WCSuccess || sw.ID != 1 || sw.Opcode != rdma.WCSend {
			t.Fatalf("size %d: send completion %+v", size, sw)
		}
		if rw.Status != rdma.WCSuccess || rw.ID != 99 || rw.ByteLen != uint32(size) || !rw.HasImm || rw.Imm != 0xabcd {
			t.Fatalf("size %d: recv completion %+v", size, rw)
		}
		if !bytes.Equal(b.buf[:size], a.buf[:size]) {
			t.Fatalf("size %d: received bytes differ", size)
		}
	}
}

func TestWriteReadAtomics(t *testing.T) {
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{})
	const n = 300_000
	fill(a.buf[:n], 3)
	post(t, a.qp, rdma.SendWR{ID: 1, Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, n), RemoteAddr: b.mr.Addr() + 100, RKey: b.mr.RKey(), Signaled: true})
	if wc := waitWC(t, a.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCSuccess || wc.Opcode != rdma.WCRDMAWrite {
		t.Fatalf("write completion %+v", wc)
	}
	if !bytes.Equal(b.buf[100:100+n], a.buf[:n]) {
		t.Fatal("written bytes differ")
	}
	// Read it back into another part of a's buffer.
	post(t, a.qp, rdma.SendWR{ID: 2, Opcode: rdma.WRRDMARead, SGL: sge(a, 400_000, n), RemoteAddr: b.mr.Addr() + 100, RKey: b.mr.RKey(), Signaled: true})
	if wc := waitWC(t, a.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCSuccess || wc.Opcode != rdma.WCRDMARead || wc.ByteLen != n {
		t.Fatalf("read completion %+v", wc)
	}
	if !bytes.Equal(a.buf[400_000:400_000+n], a.buf[:n]) {
		t.Fatal("read bytes differ")
	}
	// Atomics on b's first 8 bytes.
	binary.LittleEndian.PutUint64(b.buf[0:], 40)
	post(t, a.qp,
		rdma.SendWR{ID: 3, Opcode: rdma.WRAtomicFetchAndAdd, SGL: sge(a, 0, 8), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), CompareAdd: 2, Signaled: true},
		rdma.SendWR{ID: 4, Opcode: rdma.WRAtomicCmpAndSwp, SGL: sge(a, 8, 8), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), CompareAdd: 42, Swap: 7, Signaled: true},
		rdma.SendWR{ID: 5, Opcode: rdma.WRAtomicCmpAndSwp, SGL: sge(a, 16, 8), RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey(), CompareAdd: 42, Swap: 9, Signaled: true},
	)
	wcs := waitWC(t, a.scq, 3, 5*time.Second)
	for i, wc := range wcs {
		if wc.Status != rdma.WCSuccess || wc.ID != uint64(3+i) {
			t.Fatalf("atomic completion %d: %+v", i, wc)
		}
	}
	if got := []uint64{binary.LittleEndian.Uint64(a.buf[0:]), binary.LittleEndian.Uint64(a.buf[8:]), binary.LittleEndian.Uint64(a.buf[16:]), binary.LittleEndian.Uint64(b.buf[0:])}; got[0] != 40 || got[1] != 42 || got[2] != 7 || got[3] != 7 {
		t.Fatalf("atomic results (fetch-add orig, cas orig, failed cas orig, final) = %v, want [40 42 7 7]", got)
	}
}
