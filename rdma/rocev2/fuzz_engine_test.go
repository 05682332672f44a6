package rocev2_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/rocev2/wire"
)

// Fuzzing the engine with raw packets (see fuzz_harness_test.go for the
// input format). Run longer with
//
//	go test -run XXX -fuzz FuzzResponder -fuzztime 60s ./rdma/rocev2/
//	go test -run XXX -fuzz FuzzRequester -fuzztime 60s ./rdma/rocev2/

// The responder's memory, relative to the VA base: the fuzzer's target
// region between guard bytes, then a region that was deregistered.
const (
	rspGuard    = 1024
	rspRegion   = 4096
	rspLive     = rspGuard                        // offset of the live region
	rspDead     = rspGuard + rspRegion + rspGuard // offset of the deregistered region
	rspTotal    = rspDead + rspRegion + rspGuard  // the whole buffer
	rspLiveKey  = 0x301                           // the third region of a fresh engine (after the sync QP's)
	rspDeadKey  = 0x401                           // the fourth, deregistered
	rspPSN      = 0xFFFFF0                        // the first expected PSN: the fuzz runs across the 24-bit wrap
	rspRecvLen  = 2048                            // receive buffers posted before the fuzz, at the start of the live region
	rspRecvs    = 2
	rspCheckLen = 64 // the SEND after the fuzz
)

// responderSeeds are valid and nearly valid requests: every request opcode,
// right and wrong rkeys, VAs at the edges of the region and outside it,
// lengths off by one, PSNs out of order.
func responderSeeds() [][]byte {
	va := func(off int) uint64 { return uint64(off) }
	pay := func(n int) []byte { return bytes.Repeat([]byte{0x3c}, n) }
	pk := func(op wire.OpCode, psn uint32) wire.Packet {
		return wire.Packet{BTH: wire.BTH{OpCode: op, PKey: 0xFFFF, PSN: psn & wire.Mask24, AckReq: true}}
	}
	write := func(op wire.OpCode, psn uint32, off, dmaLen int, key uint32, n int) wire.Packet {
		p := pk(op, psn)
		p.RETH = wire.RETH{VA: va(off), RKey: key, DMALen: uint32(dmaLen)}
		p.Payload = pay(n)
		return p
	}
	read := func(psn uint32, off, n int, key uint32) wire.Packet {
		p := pk(wire.OpRDMAReadRequest, psn)
		p.AckReq = false
		p.RETH = wire.RETH{VA: va(off), RKey: key, DMALen: uint32(n)}
		return p
	}
	atomic := func(op wire.OpCode, psn uint32, off int, key uint32) wire.Packet {
		p := pk(op, psn)
		p.AckReq = false
		p.AtomicETH = wire.AtomicETH{VA: va(off), RKey: key, SwapAdd: 5, Compare: 0}
		return p
	}
	mid := func(op wire.OpCode, psn uint32, n int) wire.Packet { p := pk(op, psn); p.Payload = pay(n); return p }
	imm := func(p wire.Packet) wire.Packet { p.Imm = 0xfeed; return p }
	seq := func(ps ...wire.Packet) []byte {
		var b []byte
		for _, p := range ps {
			b = appendFuzzRecord(b, 0, p)
		}
		return b
	}
	end := rspLive + rspRegion
	seeds := [][]byte{
		// Valid: every request opcode at the right PSNs.
		seq(mid(wire.OpSendOnly, 0, 100)),
		seq(imm(mid(wire.OpSendOnlyWithImmediate, 0, 7))),
		seq(mid(wire.OpSendFirst, 0, 1024), mid(wire.OpSendMiddle, 1, 1016), mid(wire.OpSendLast, 2, 8)),
		seq(mid(wire.OpSendFirst, 0, 1024), imm(mid(wire.OpSendLastWithImmediate, 1, 3))),
		seq(write(wire.OpRDMAWriteOnly, 0, rspLive, 100, rspLiveKey, 100)),
		seq(imm(write(wire.OpRDMAWriteOnlyWithImmediate, 0, rspLive+8, 16, rspLiveKey, 16))),
		seq(write(wire.OpRDMAWriteFirst, 0, rspLive, 2100, rspLiveKey, 1024), mid(wire.OpRDMAWriteMiddle, 1, 1024), mid(wire.OpRDMAWriteLast, 2, 52)),
		seq(write(wire.OpRDMAWriteFirst, 0, end-1500, 1500, rspLiveKey, 1024), imm(mid(wire.OpRDMAWriteLastWithImmediate, 1, 476))),
		seq(read(0, rspLive, 4096, rspLiveKey), mid(wire.OpSendOnly, 4, 8)),
		seq(read(0, rspLive, 1, rspLiveKey)),
		seq(atomic(wire.OpFetchAdd, 0, rspLive, rspLiveKey), atomic(wire.OpCompareSwap, 1, rspLive+8, rspLiveKey)),
		// The edges: the last byte, the last 8 bytes, one past.
		seq(write(wire.OpRDMAWriteOnly, 0, end-1, 1, rspLiveKey, 1)),
		seq(write(wire.OpRDMAWriteOnly, 0, end, 1, rspLiveKey, 1)),
		seq(write(wire.OpRDMAWriteOnly, 0, rspLive-1, 4, rspLiveKey, 4)),
		seq(write(wire.OpRDMAWriteOnly, 0, end-100, 101, rspLiveKey, 101)),
		seq(atomic(wire.OpFetchAdd, 0, end-8, rspLiveKey)),
		seq(atomic(wire.OpFetchAdd, 0, end, rspLiveKey)),
		seq(atomic(wire.OpCompareSwap, 0, end-4, rspLiveKey)),
		seq(read(0, end-1, 2, rspLiveKey)),
		// Lengths off by one against the RETH, and payload beyond it.
		seq(write(wire.OpRDMAWriteOnly, 0, rspLive, 99, rspLiveKey, 100)),
		seq(write(wire.OpRDMAWriteOnly, 0, rspLive, 101, rspLiveKey, 100)),
		seq(write(wire.OpRDMAWriteFirst, 0, end-2048, 2047, rspLiveKey, 1024), mid(wire.OpRDMAWriteLast, 1, 1024)),
		seq(write(wire.OpRDMAWriteFirst, 0, end-2048, 2048, rspLiveKey, 1024), mid(wire.OpRDMAWriteMiddle, 1, 1024), mid(wire.OpRDMAWriteLast, 2, 4)),
		seq(mid(wire.OpSendOnly, 0, rspRecvLen+1)),
		// Wrong and dead keys, wrong VAs.
		seq(write(wire.OpRDMAWriteOnly, 0, rspDead, 100, rspDeadKey, 100)),
		seq(write(wire.OpRDMAWriteOnly, 0, rspDead, 100, rspLiveKey, 100)),
		seq(read(0, rspDead, 100, rspDeadKey)),
		seq(atomic(wire.OpFetchAdd, 0, rspDead, rspDeadKey)),
		seq(write(wire.OpRDMAWriteOnly, 0, rspLive, 100, rspLiveKey^0x100, 100)),
		seq(write(wire.OpRDMAWriteOnly, 0, 0, 100, rspLiveKey, 100)),
		seq(write(wire.OpRDMAWriteOnly, 0, -rspRegion, 100, rspLiveKey, 100)),
		// Middles and lasts without a first, firsts twice.
		seq(mid(wire.OpRDMAWriteMiddle, 0, 1024), mid(wire.OpSendLast, 1, 4)),
		seq(mid(wire.OpSendFirst, 0, 1024), mid(wire.OpSendFirst, 1, 1024), mid(wire.OpSendOnly, 2, 4)),
		seq(write(wire.OpRDMAWriteFirst, 0, rspLive, 3000, rspLiveKey, 1024), mid(wire.OpSendMiddle, 1, 1024)),
		// PSNs: ahead, behind (duplicates), far away.
		seq(mid(wire.OpSendOnly, 3, 8), mid(wire.OpSendOnly, 0, 8), mid(wire.OpSendOnly, 0, 8)),
		seq(atomic(wire.OpFetchAdd, 0, rspLive, rspLiveKey), atomic(wire.OpFetchAdd, 0, rspLive, rspLiveKey), read(0, rspLive, 8, rspLiveKey)),
		seq(read(0, rspLive, 3000, rspLiveKey), read(1, rspLive, 3000, rspLiveKey), read(0, rspLive+1024, 100, rspLiveKey)),
		seq(write(wire.OpRDMAWriteOnly, 0x800000, rspLive, 8, rspLiveKey, 8)),
		seq(write(wire.OpRDMAWriteOnly, wire.Mask24, rspLive, 8, rspLiveKey, 8)),
	}
	// Responses and a CNP sent to a responder, and garbage.
	ack := pk(wire.OpAcknowledge, 0)
	ack.AckReq = false
	seeds = append(seeds, seq(ack), seq(wire.Packet{BTH: wire.BTH{OpCode: wire.OpCNP, BECN: true}}),
		[]byte{ctlRawICRC, 0, 16, 4, 0, 0xff, 0xff, 0, 0, 0, 0x11, 0x80, 0, 0, 0, 1, 2, 3, 4})
	// The same valid SEND with a bad ICRC.
	bad := seq(mid(wire.OpSendOnly, 0, 100))
	bad[0] = ctlRawICRC
	return append(seeds, bad)
}

func FuzzResponder(f *testing.F) {
	for _, s := range responderSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newFuzzRig(t, rspPSN, 12)
		mem := newGuarded(rspTotal)
		live, err := r.s.pd.RegisterMR(mem.buf[rspLive:rspLive+rspRegion], rdma.AccessLocalWrite|rdma.AccessRemoteWrite|rdma.AccessRemoteRead|rdma.AccessRemoteAtomic)
		if err != nil {
			t.Fatal(err)
		}
		dead, err := r.s.pd.RegisterMR(mem.buf[rspDead:rspDead+rspRegion], rdma.AccessLocalWrite|rdma.AccessRemoteWrite|rdma.AccessRemoteRead|rdma.AccessRemoteAtomic)
		if err != nil {
			t.Fatal(err)
		}
		if live.RKey() != rspLiveKey || dead.RKey() != rspDeadKey {
			t.Fatalf("keys %#x %#x, the seeds expect %#x %#x", live.RKey(), dead.RKey(), rspLiveKey, rspDeadKey)
		}
		if err := dead.Deregister(); err != nil {
			t.Fatal(err)
		}
		r.vaBase = live.Addr() - rspLive
		// Where receives land: id -> (buffer, offset).
		where := map[uint64][]byte{}
		for i := range rspRecvs {
			off := rspLive + i*rspRecvLen
			postRecv(t, r.s.qp, rdma.RecvWR{ID: uint64(i + 1), SGL: []rdma.SGE{{Addr: r.vaBase + uint64(off), Length: rspRecvLen, LKey: live.LKey()}}})
			where[uint64(i+1)] = mem.buf[off : off+rspRecvLen]
		}

		r.send(t, splitFuzzInput(data))
		r.syncEngine(t)

		// A normal SEND still gets through, unless the QP is in error.
		attr, err := r.s.qp.Query()
		if err != nil {
			t.Fatal(err)
		}
		if attr.State == rdma.QPSRTS {
			const checkID = 99
			postRecv(t, r.s.qp, rdma.RecvWR{ID: checkID, SGL: sge(r.s, 0, rspCheckLen)})
			where[checkID] = r.s.buf[:rspCheckLen]
			payload := bytes.Repeat([]byte{0xc7}, rspCheckLen)
			p := wire.Packet{BTH: wire.BTH{OpCode: wire.OpSendOnly, PKey: 0xFFFF, PSN: wire.PSNAdd(attr.RQPSN, wire.Mask24-rspPSN+1), AckReq: true}, Payload: payload}
			r.send(t, []fuzzRecord{{pkt: encodeRecord(t, p)}})
			var answer *wire.Packet
			r.drain(5*time.Second, func(p *wire.Packet) bool {
				if p.OpCode == wire.OpAcknowledge && p.DestQP == fuzzPeerQPN && p.PSN == attr.RQPSN {
					answer = new(wire.Packet)
					*answer = *p
					return false
				}
				return true
			})
			switch {
			case answer == nil:
				t.Fatalf("no answer within 5 s to a SEND at the expected PSN %#x", attr.RQPSN)
			case answer.AETH.Syndrome.IsACK():
				wcs := make([]rdma.WC, 64)
				n, _ := r.s.rcq.Poll(wcs)
				ok := false
				for _, wc := range wcs[:n] {
					if wc.Status == rdma.WCSuccess && wc.Opcode == rdma.WCRecv && wc.ByteLen == rspCheckLen && where[wc.ID] != nil && bytes.Equal(where[wc.ID][:rspCheckLen], payload) {
						ok = true
					}
				}
				if !ok {
					t.Fatalf("SEND acknowledged but no receive completion holds it: %+v", wcs[:n])
				}
			case answer.AETH.Syndrome == wire.NAKInvalidRequest:
				// Legitimate: the fuzz left a SEND unfinished.
			default:
				t.Fatalf("a SEND at the expected PSN with a receive posted was answered %s", answer.AETH.Syndrome)
			}
		}
		r.dev.Close()
		mem.check(t, "responder memory", [2]int{rspLive, rspRegion})
	})
}

// encodeRecord encodes p for fuzzRig.send (PSN relative, DestQP filled in).
func encodeRecord(t *testing.T, p wire.Packet) []byte {
	b := make([]byte, p.WireLen())
	n, err := wire.Encode(b, &p)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

// The requester's memory: one registered region (so that nothing but the
// engine's own bookkeeping keeps a stray write out) holding the READ and
// atomic destinations between guard bytes.
const (
	reqPSN    = 0xFFFFF8 // the requester's first PSN: its requests straddle the 24-bit wrap
	reqRead1  = 256      // 3000 bytes: READ responses FIRST, MIDDLE, LAST at path MTU 1024
	reqRead1N = 3000
	reqRead2  = 3584 // 100 bytes: READ response ONLY
	reqRead2N = 100
	reqAtom1  = 4096 // FETCH_ADD result
	reqAtom2  = 4160 // CMP_SWAP result
	reqTotal  = 4608
	reqMemKey = 0x301 // after the QP's and the sync QP's buffers
)

// reqRequests are the outstanding requests, in PSN order relative to
// reqPSN: WRITE 0-2, READ 3-5, FETCH_ADD 6, CMP_SWAP 7, SEND 8, READ 9.
func reqRequests(s *side, mem rdma.MR) []rdma.SendWR {
	at := func(off, n int) []rdma.SGE {
		return []rdma.SGE{{Addr: mem.Addr() + uint64(off), Length: uint32(n), LKey: mem.LKey()}}
	}
	return []rdma.SendWR{
		{ID: 1, Opcode: rdma.WRRDMAWrite, SGL: sge(s, 0, 3000), RemoteAddr: 0x10000, RKey: 0x55},
		{ID: 2, Opcode: rdma.WRRDMARead, SGL: at(reqRead1, reqRead1N), RemoteAddr: 0x20000, RKey: 0x55},
		{ID: 3, Opcode: rdma.WRAtomicFetchAndAdd, SGL: at(reqAtom1, 8), RemoteAddr: 0x30000, RKey: 0x55, CompareAdd: 1},
		{ID: 4, Opcode: rdma.WRAtomicCmpAndSwp, SGL: at(reqAtom2, 8), RemoteAddr: 0x30008, RKey: 0x55, CompareAdd: 0, Swap: 1},
		{ID: 5, Opcode: rdma.WRSend, SGL: sge(s, 0, 100)},
		{ID: 6, Opcode: rdma.WRRDMARead, SGL: at(reqRead2, reqRead2N), RemoteAddr: 0x40000, RKey: 0x55},
	}
}

// requesterSeeds are responses to reqRequests: the right ones in order,
// then NAKs of every kind, wrong lengths, duplicates, reordering and PSNs
// outside the window.
func requesterSeeds() [][]byte {
	aeth := func(op wire.OpCode, psn uint32, syn wire.Syndrome) wire.Packet {
		return wire.Packet{BTH: wire.BTH{OpCode: op, PKey: 0xFFFF, PSN: psn & wire.Mask24}, AETH: wire.AETH{Syndrome: syn, MSN: 1}}
	}
	ack := func(psn uint32) wire.Packet {
		return aeth(wire.OpAcknowledge, psn, wire.ACKSyndrome(wire.CreditInvalid))
	}
	nak := func(psn uint32, syn wire.Syndrome) wire.Packet { return aeth(wire.OpAcknowledge, psn, syn) }
	resp := func(op wire.OpCode, psn uint32, n int) wire.Packet {
		p := aeth(op, psn, wire.ACKSyndrome(wire.CreditInvalid))
		p.Payload = bytes.Repeat([]byte{byte(psn) | 0x80}, n)
		return p
	}
	atomicAck := func(psn uint32, orig uint64) wire.Packet {
		p := aeth(wire.OpAtomicAcknowledge, psn, wire.ACKSyndrome(wire.CreditInvalid))
		p.AtomicAck = orig
		return p
	}
	seq := func(ps ...wire.Packet) []byte {
		var b []byte
		for _, p := range ps {
			b = appendFuzzRecord(b, 0, p)
		}
		return b
	}
	first := resp(wire.OpRDMAReadResponseFirst, 3, 1024)
	middle := resp(wire.OpRDMAReadResponseMiddle, 4, 1024)
	last := resp(wire.OpRDMAReadResponseLast, 5, 952)
	only := resp(wire.OpRDMAReadResponseOnly, 9, reqRead2N)
	all := []wire.Packet{ack(2), first, middle, last, atomicAck(6, 40), atomicAck(7, 0), ack(8), only}
	// No ACK for the middle response in the midst of the atomics either.
	seeds := [][]byte{
		seq(all...),
		seq(ack(9), first, middle, last, atomicAck(6, 1), atomicAck(7, 2), only),
		seq(ack(2), first, first, middle, middle, last, last, atomicAck(6, 40), atomicAck(6, 41), atomicAck(7, 0), only, only),
		seq(ack(2), last, middle, first, only),
		seq(ack(2), first, resp(wire.OpRDMAReadResponseMiddle, 4, 1023)),
		seq(ack(2), first, middle, resp(wire.OpRDMAReadResponseLast, 5, 953)),
		seq(ack(2), first, middle, resp(wire.OpRDMAReadResponseLast, 5, 1024)),
		seq(ack(2), resp(wire.OpRDMAReadResponseOnly, 3, 1024)),
		seq(ack(2), resp(wire.OpRDMAReadResponseOnly, 3, 1028)),
		seq(ack(2), resp(wire.OpRDMAReadResponseFirst, 3, 1028), middle, last),
		seq(resp(wire.OpRDMAReadResponseOnly, 9, reqRead2N+1)),
		seq(resp(wire.OpRDMAReadResponseOnly, 9, 0)),
		seq(atomicAck(3, 5), atomicAck(9, 5), atomicAck(8, 5)),
		seq(ack(1), nak(2, wire.NAKPSNSequenceError), nak(0, wire.NAKPSNSequenceError)),
		seq(nak(0, wire.RNRNAKSyndrome(1)), nak(0, wire.RNRNAKSyndrome(31)), ack(2)),
		seq(ack(2), nak(3, wire.NAKRemoteAccessError)),
		seq(nak(0, wire.NAKInvalidRequest)),
		seq(ack(7), nak(8, wire.NAKRemoteOperationalError)),
		seq(nak(9, wire.NAKInvalidRDRequest)),
		seq(ack(2), nak(4, wire.Syndrome(0x4f))), // reserved syndrome kind
		seq(ack(10), ack(0x7FFFFF), ack(0x800000), ack(wire.Mask24)),
		seq(ack(2), resp(wire.OpRDMAReadResponseFirst, 3, 1024), ack(9), resp(wire.OpRDMAReadResponseMiddle, 4, 1024)),
		// Requests arriving at the requester, and a CNP.
		seq(wire.Packet{BTH: wire.BTH{OpCode: wire.OpCNP, BECN: true}}),
		seq(wire.Packet{BTH: wire.BTH{OpCode: wire.OpSendOnly, PKey: 0xFFFF, AckReq: true}, Payload: []byte{1, 2, 3, 4}}),
	}
	// The right responses with a broken ICRC on the READ's first.
	bad := seq(all...)
	bad[len(appendFuzzRecord(nil, 0, ack(2)))] = ctlRawICRC
	return append(seeds, bad)
}

func FuzzRequester(f *testing.F) {
	for _, s := range requesterSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newFuzzRig(t, reqPSN, 0) // no retransmission timer: what happens is what the fuzzer sends
		fill(r.s.buf, 0x21)
		src := bytes.Clone(r.s.buf)
		mem := newGuarded(reqTotal)
		mr, err := r.s.pd.RegisterMR(mem.buf, rdma.AccessLocalWrite)
		if err != nil {
			t.Fatal(err)
		}
		if mr.LKey() != reqMemKey {
			t.Fatalf("key %#x, want %#x", mr.LKey(), reqMemKey)
		}
		r.vaBase = mr.Addr()
		wrs := reqRequests(r.s, mr)
		for i := range wrs {
			wrs[i].Signaled = true
		}
		post(t, r.s.qp, wrs...)
		r.send(t, splitFuzzInput(data))
		r.syncEngine(t)
		r.dev.Close() // flushes what is left

		// Every request completes exactly once, in order.
		wcs := make([]rdma.WC, 16)
		n, err := r.s.scq.Poll(wcs)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(wrs) {
			t.Fatalf("%d completions for %d requests: %+v", n, len(wrs), wcs[:n])
		}
		for i, wc := range wcs[:n] {
			if wc.ID != wrs[i].ID {
				t.Fatalf("completion %d is of request %d, want %d: %+v", i, wc.ID, wrs[i].ID, wcs[:n])
			}
			if wc.Status == rdma.WCSuccess && wrs[i].Opcode == rdma.WRRDMARead && wc.ByteLen != wrs[i].SGL[0].Length {
				t.Fatalf("READ %d succeeded with %d bytes, want %d", wc.ID, wc.ByteLen, wrs[i].SGL[0].Length)
			}
		}
		mem.check(t, "requester memory", [2]int{reqRead1, reqRead1N}, [2]int{reqRead2, reqRead2N}, [2]int{reqAtom1, 8}, [2]int{reqAtom2, 8})
		if i := firstDiff(r.s.buf, src); i >= 0 {
			t.Fatalf("source byte %d of the WRITE and SEND was written", i)
		}
	})
}
