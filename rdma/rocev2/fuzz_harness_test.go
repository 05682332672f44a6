package rocev2_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/rocev2"
	"github.com/opennetworks/onetdp/rdma/rocev2/wire"
)

// The fuzz harness: one engine with one RC QP in RTS whose peer is a raw
// porttest port that the fuzzer drives packet by packet.
//
// A fuzz input is a sequence of records, each
//
//	ctl byte | length (2 bytes, big endian) | that many bytes of RoCEv2 (BTH to ICRC)
//
// and the harness, unless ctl says otherwise, makes a packet that decodes
// land where it matters: DestQP becomes the engine's QP number, the PSN is
// taken relative to the QP's first PSN, the VA of a RETH or AtomicETH
// relative to the start of the harness's memory (so that the fuzzer can aim
// at a region, its edges and the guard bytes around it though Go heap
// addresses change from run to run), and the ICRC is made right.
const (
	ctlRawICRC  = 1 << 0 // send the ICRC bytes as given
	ctlRawQP    = 1 << 1 // keep DestQP
	ctlRawPSN   = 1 << 2 // keep the PSN as given
	ctlRawVA    = 1 << 3 // keep the VA as given
	fuzzMaxPkts = 32
)

var (
	fuzzEngineAddr = netip.MustParseAddrPort("198.18.0.1:4791")
	fuzzPeerAddr   = netip.MustParseAddrPort("198.18.0.2:4791")
)

// fuzzPeerQPN is the QP number the engine's QP is connected to;
// fuzzSyncQPN the one its second QP, which only the harness talks to, is.
const (
	fuzzPeerQPN = 0x77
	fuzzSyncQPN = 0x78
)

// fuzzRecord is one packet of a fuzz input.
type fuzzRecord struct {
	ctl byte
	pkt []byte
}

// splitFuzzInput cuts data into records (at most fuzzMaxPkts; a short last
// record takes what is left).
func splitFuzzInput(data []byte) []fuzzRecord {
	var rs []fuzzRecord
	for len(data) >= 3 && len(rs) < fuzzMaxPkts {
		ctl, n := data[0], int(binary.BigEndian.Uint16(data[1:3]))
		data = data[3:]
		n = min(n, len(data))
		rs = append(rs, fuzzRecord{ctl: ctl, pkt: data[:n]})
		data = data[n:]
	}
	return rs
}

// appendFuzzRecord encodes p (DestQP and PSN as the harness reads them:
// PSN relative, VA relative) as a record, for seeds.
func appendFuzzRecord(dst []byte, ctl byte, p wire.Packet) []byte {
	b := make([]byte, p.WireLen())
	n, err := wire.Encode(b, &p)
	if err != nil {
		panic("seed packet does not encode: " + err.Error())
	}
	dst = append(dst, ctl, byte(n>>8), byte(n))
	return append(dst, b[:n]...)
}

// fuzzRig is the engine under test and the raw port that plays its peer.
type fuzzRig struct {
	net     *porttest.Network
	raw     *porttest.Port
	dev     *rocev2.Device
	s       *side  // the QP (connected to the raw port) and a registered buffer
	sync    *side  // a second QP, for sync; no receive is ever posted on it
	psn0    uint32 // the first PSN: the responder's expected PSN (FuzzResponder) or the requester's first (FuzzRequester)
	vaBase  uint64 // what a relative VA is added to
	rxAtEnd uint64 // packets the engine had received when the last record was sent
}

// newFuzzRig starts an engine and moves a QP to RTS aimed at the raw port.
func newFuzzRig(t *testing.T, psn0 uint32, timeout uint8) *fuzzRig {
	r := &fuzzRig{net: porttest.NewNetwork(porttest.NetworkOptions{MTU: 1500, QueueLen: 4096}), psn0: psn0}
	port, err := r.net.NewPort(fuzzEngineAddr)
	if err != nil {
		t.Fatal(err)
	}
	if r.raw, err = r.net.NewPort(fuzzPeerAddr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.raw.Close() })
	r.dev = openDevice(t, port, rocev2.Options{})
	o := pairOptions{bufSize: 4096, depth: 64}
	o.defaults()
	r.s = newSide(t, r.dev, o, psn0) // its buffer's key is 0x101 (first region of a fresh engine)
	r.sync = newSide(t, r.dev, o, 0) // 0x201
	toRTS(t, r.s.qp, fuzzPeerQPN, psn0, timeout)
	toRTS(t, r.sync.qp, fuzzSyncQPN, 0, 0)
	return r
}

// toRTS connects qp to the raw port's QP dest, with psn as both first PSNs.
func toRTS(t *testing.T, qp rdma.QP, dest, psn uint32, timeout uint8) {
	rtr := rdma.QPAttr{State: rdma.QPSRTR, AV: rdma.AddressVector{DGID: rdma.GIDFromAddr(fuzzPeerAddr.Addr())}, PathMTU: rdma.MTU1024,
		DestQPN: dest, RQPSN: psn, MaxDestRdAtomic: 16, MinRNRTimer: 1}
	if err := qp.Modify(&rtr, rdma.AttrState|rdma.AttrAV|rdma.AttrPathMTU|rdma.AttrDestQPN|rdma.AttrRQPSN|rdma.AttrMaxDestRdAtomic|rdma.AttrMinRNRTimer); err != nil {
		t.Fatal(err)
	}
	rts := rdma.QPAttr{State: rdma.QPSRTS, SQPSN: psn, Timeout: timeout, RetryCnt: 7, RNRRetry: 7, MaxRdAtomic: 16}
	if err := qp.Modify(&rts, rdma.AttrState|rdma.AttrSQPSN|rdma.AttrTimeout|rdma.AttrRetryCnt|rdma.AttrRNRRetry|rdma.AttrMaxRdAtomic); err != nil {
		t.Fatal(err)
	}
}

// syncEngine waits until the engine has processed everything sent so far:
// it sends a SEND to the sync QP, which has no receive posted, and waits
// for the RNR NAK. The receive goroutine handles packets in order and sends
// the NAKs of a batch in order, so what the raw port received before that
// NAK includes every NAK the earlier packets caused. Everything the raw
// port received up to the sentinel's answer is dropped.
func (r *fuzzRig) syncEngine(t *testing.T) {
	var p wire.Packet
	p.OpCode, p.PKey, p.DestQP, p.PSN, p.AckReq = wire.OpSendOnly, 0xFFFF, r.sync.qp.QPN(), 0, true
	b := make([]byte, p.WireLen())
	n, _ := wire.Encode(b, &p)
	wire.PutICRCFromParts(fuzzPeerAddr, fuzzEngineAddr, 0, b[:n])
	if _, err := r.raw.Send([]dataplane.Packet{{Buf: b[:n], Addr: fuzzEngineAddr}}); err != nil {
		t.Fatal(err)
	}
	found := false
	r.drain(5*time.Second, func(p *wire.Packet) bool {
		found = p.OpCode == wire.OpAcknowledge && p.DestQP == fuzzSyncQPN && p.AETH.Syndrome.IsRNRNAK()
		return !found
	})
	if !found {
		t.Fatal("the engine did not answer the sync QP's SEND with an RNR NAK within 5 s")
	}
}

// send hands the records to the engine from the raw port, fixed up as the
// record's ctl says, and waits until the engine has received them all.
func (r *fuzzRig) send(t *testing.T, recs []fuzzRecord) {
	st := r.dev.Stats()
	before := st.RxPackets.Load()
	pkts := make([]dataplane.Packet, 0, len(recs))
	for _, rec := range recs {
		b := append([]byte(nil), rec.pkt...)
		var p wire.Packet
		if wire.Decode(b, &p) == nil {
			qpn := r.s.qp.QPN()
			if rec.ctl&ctlRawQP != 0 {
				qpn = p.DestQP
				if qpn == r.sync.qp.QPN() {
					qpn ^= 0x800000 // the sync QP belongs to the harness
				}
			}
			b[5], b[6], b[7] = byte(qpn>>16), byte(qpn>>8), byte(qpn)
			if rec.ctl&ctlRawPSN == 0 {
				psn := wire.PSNAdd(r.psn0, p.PSN)
				b[9], b[10], b[11] = byte(psn>>16), byte(psn>>8), byte(psn)
			}
			if rec.ctl&ctlRawVA == 0 && (p.OpCode.HasRETH() || p.OpCode.HasAtomicETH()) {
				binary.BigEndian.PutUint64(b[wire.BTHLen:], r.vaBase+binary.BigEndian.Uint64(b[wire.BTHLen:]))
			}
		}
		if rec.ctl&ctlRawICRC == 0 {
			wire.PutICRCFromParts(fuzzPeerAddr, fuzzEngineAddr, 0, b) // fails only on packets too short to carry one
		}
		pkts = append(pkts, dataplane.Packet{Buf: b, Addr: fuzzEngineAddr})
	}
	// Datagrams the port cannot carry (empty, too long) are refused one by
	// one; the rest go.
	sent := 0
	for len(pkts) > 0 {
		n, err := r.raw.Send(pkts)
		sent += n
		pkts = pkts[n:]
		if err != nil {
			pkts = pkts[1:]
		}
	}
	r.rxAtEnd = before + uint64(sent)
	deadline := time.Now().Add(5 * time.Second)
	for st.RxPackets.Load() < r.rxAtEnd {
		if time.Now().After(deadline) {
			t.Fatalf("engine received %d of %d packets in 5 s", st.RxPackets.Load()-before, sent)
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// drain takes what the engine sent to the raw port so far, waiting up to d
// for the first packet, and calls fn on each packet that decodes.
func (r *fuzzRig) drain(d time.Duration, fn func(p *wire.Packet) bool) {
	pkts := make([]dataplane.Packet, 64)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 0, 1500)
	}
	r.raw.SetRecvTimeout(d)
	for {
		n, err := r.raw.Recv(pkts)
		if err != nil {
			return
		}
		var p wire.Packet
		for _, pk := range pkts[:n] {
			if wire.Decode(pk.Buf, &p) == nil && !fn(&p) {
				return
			}
		}
	}
}

// guarded is a buffer with a pattern that must survive, except where the
// test allows writes.
type guarded struct {
	buf []byte
}

func newGuarded(n int) *guarded {
	g := &guarded{buf: make([]byte, n)}
	for i := range g.buf {
		g.buf[i] = byte(i*7) ^ 0xA5
	}
	return g
}

// check fails t if a byte outside the allowed [off, off+len) spans changed.
func (g *guarded) check(t *testing.T, what string, allowed ...[2]int) {
	t.Helper()
next:
	for i, v := range g.buf {
		if v == byte(i*7)^0xA5 {
			continue
		}
		for _, a := range allowed {
			if i >= a[0] && i < a[0]+a[1] {
				continue next
			}
		}
		t.Fatalf("%s: byte %d written (%#x) outside the spans the engine may write %v", what, i, v, allowed)
	}
}
