package rocev2_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// side is one end of a connected RC pair: device, PD, CQs, QP and a
// registered buffer.
type side struct {
	dev *rocev2.Device
	pd  rdma.PD
	scq rdma.CQ
	rcq rdma.CQ
	qp  rdma.QP
	buf []byte
	mr  rdma.MR
	psn uint32
	// pport is the port when the pair was made with pairOptions.poll.
	pport *porttest.PollPort
}

type pairOptions struct {
	mtu      rdma.MTU
	bufSize  int
	access   rdma.AccessFlags // QP responder access
	timeout  uint8
	retry    uint8
	rnrRetry uint8
	depth    int
	engine   rocev2.Options
	poll     bool // ports are porttest.PollPorts (dataplane.Pollers)
	noSpin   bool // ... that refuse spinning from the start
}

func (o *pairOptions) defaults() {
	if o.mtu == 0 {
		o.mtu = rdma.MTU1024
	}
	if o.bufSize == 0 {
		o.bufSize = 1 << 20
	}
	if o.access == 0 {
		o.access = rdma.AccessRemoteWrite | rdma.AccessRemoteRead | rdma.AccessRemoteAtomic
	}
	if o.timeout == 0 {
		o.timeout = 12 // 16.8 ms
	}
	if o.retry == 0 {
		o.retry = 7
	}
	if o.depth == 0 {
		o.depth = 4096
	}
}

// openDevice starts an engine on port.
func openDevice(t testing.TB, port dataplane.Port, eo rocev2.Options) *rocev2.Device {
	t.Helper()
	eo.Port = port
	d, err := rocev2.Open(eo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// newSide makes PD, CQs, a QP in INIT and a registered buffer on dev.
func newSide(t testing.TB, dev *rocev2.Device, o pairOptions, psn uint32) *side {
	t.Helper()
	s := &side{dev: dev, psn: psn}
	var err error
	must := func(e error) {
		t.Helper()
		if e != nil {
			t.Fatal(e)
		}
	}
	s.pd, err = dev.AllocPD()
	must(err)
	s.scq, err = dev.CreateCQ(o.depth)
	must(err)
	s.rcq, err = dev.CreateCQ(o.depth)
	must(err)
	s.qp, err = s.pd.CreateQP(rdma.QPInitAttr{SendCQ: s.scq, RecvCQ: s.rcq, Cap: rdma.QPCap{MaxSendWR: o.depth, MaxRecvWR: o.depth, MaxSendSGE: 4, MaxRecvSGE: 4}})
	must(err)
	s.buf = make([]byte, o.bufSize)
	s.mr, err = s.pd.RegisterMR(s.buf, rdma.AccessLocalWrite|rdma.AccessRemoteWrite|rdma.AccessRemoteRead|rdma.AccessRemoteAtomic)
	must(err)
	must(s.qp.Modify(&rdma.QPAttr{State: rdma.QPSInit, AccessFlags: o.access, Port: 1},
		rdma.AttrState|rdma.AttrPKeyIndex|rdma.AttrPort|rdma.AttrAccessFlags))
	return s
}

// connect moves both QPs to RTS aimed at each other.
func connect(t testing.TB, a, b *side, o pairOptions) {
	t.Helper()
	for _, x := range [][2]*side{{a, b}, {b, a}} {
		me, peer := x[0], x[1]
		rtr := rdma.QPAttr{
			State:           rdma.QPSRTR,
			AV:              rdma.AddressVector{DGID: peer.dev.GIDs()[0]},
			PathMTU:         o.mtu,
			DestQPN:         peer.qp.QPN(),
			RQPSN:           peer.psn,
			MaxDestRdAtomic: 16,
			MinRNRTimer:     1, // 10 µs
		}
		if err := me.qp.Modify(&rtr, rdma.AttrState|rdma.AttrAV|rdma.AttrPathMTU|rdma.AttrDestQPN|rdma.AttrRQPSN|rdma.AttrMaxDestRdAtomic|rdma.AttrMinRNRTimer); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*side{a, b} {
		rts := rdma.QPAttr{State: rdma.QPSRTS, SQPSN: s.psn, Timeout: o.timeout, RetryCnt: o.retry, RNRRetry: o.rnrRetry, MaxRdAtomic: 16}
		if err := s.qp.Modify(&rts, rdma.AttrState|rdma.AttrSQPSN|rdma.AttrTimeout|rdma.AttrRetryCnt|rdma.AttrRNRRetry|rdma.AttrMaxRdAtomic); err != nil {
			t.Fatal(err)
		}
	}
}

// fakePair connects two engines over an in-memory network.
func fakePair(t testing.TB, no porttest.NetworkOptions, o pairOptions) (*porttest.Network, *side, *side) {
	t.Helper()
	o.defaults()
	if no.MTU == 0 {
		no.MTU = 4200
	}
	if no.QueueLen == 0 {
		no.QueueLen = 8192
	}
	n := porttest.NewNetwork(no)
	var sides [2]*side
	for i, ip := range []string{"198.18.0.1", "198.18.0.2"} {
		addr := netip.AddrPortFrom(netip.MustParseAddr(ip), rocev2.UDPPort)
		var port dataplane.Port
		var pport *porttest.PollPort
		var err error
		if o.poll {
			pport, err = n.NewPollPort(addr)
			if err == nil {
				pport.SetSpin(!o.noSpin)
			}
			port = pport
		} else {
			port, err = n.NewPort(addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		dev := openDevice(t, port, o.engine)
		sides[i] = newSide(t, dev, o, uint32(0xFFFF00+i*7)) // PSNs near the 24-bit wrap
		sides[i].pport = pport
	}
	connect(t, sides[0], sides[1], o)
	return n, sides[0], sides[1]
}

// waitWC polls cq until it has n completions or the deadline passes.
func waitWC(t testing.TB, cq rdma.CQ, n int, d time.Duration) []rdma.WC {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out := make([]rdma.WC, 0, n)
	buf := make([]rdma.WC, 64)
	for len(out) < n {
		k, err := cq.Wait(ctx, buf[:min(len(buf), n-len(out))])
		if err != nil {
			t.Fatalf("waiting for %d completions, have %d: %v", n, len(out), err)
		}
		out = append(out, buf[:k]...)
	}
	return out
}

func sge(s *side, off, n int) []rdma.SGE {
	return []rdma.SGE{{Addr: s.mr.Addr() + uint64(off), Length: uint32(n), LKey: s.mr.LKey()}}
}

func post(t testing.TB, qp rdma.QP, wrs ...rdma.SendWR) {
	t.Helper()
	if n, err := qp.PostSend(wrs); err != nil || n != len(wrs) {
		t.Fatalf("post send: %d of %d: %v", n, len(wrs), err)
	}
}

func postRecv(t testing.TB, qp rdma.QP, wrs ...rdma.RecvWR) {
	t.Helper()
	if n, err := qp.PostRecv(wrs); err != nil || n != len(wrs) {
		t.Fatalf("post recv: %d of %d: %v", n, len(wrs), err)
	}
}

func fill(b []byte, seed byte) {
	for i := range b {
		b[i] = byte(i*31) ^ seed
	}
}
