package rdmatransport

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/rdma"
)

// New connects this rank to every other rank of the group: it makes the
// queue pairs and slots, exchanges endpoints through opts.Store and moves
// the queue pairs to RTS. Every rank of the group calls New with the same
// Size and Prefix; New returns once all of them are connected, or fails
// when ctx ends first (the error then wraps collective.ErrTimeout or the
// context's error).
func New(ctx context.Context, opts Options) (*Transport, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	t := &Transport{
		opts:         opts,
		slotSize:     hdrLen + opts.EagerMax,
		reserve:      max(2, opts.Slots/4),
		dev:          opts.Device,
		progressDone: make(chan struct{}),
	}
	if err := t.setup(ctx); err != nil {
		close(t.progressDone)
		t.release()
		return nil, fmt.Errorf("rdmatransport: rank %d of %d on %s: %w", opts.Rank, opts.Size, opts.Device.Name(), err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go t.progress(pctx)
	return t, nil
}

func (t *Transport) setup(ctx context.Context) error {
	o := &t.opts
	var err error
	if t.pd, err = o.Device.AllocPD(); err != nil {
		return fmt.Errorf("alloc pd: %w", err)
	}
	sendSlots := o.Slots + 4
	perPeer := sendSlots + o.MaxWrites*maxChunks + o.Slots
	if t.cq, err = o.Device.CreateCQ(max(1, (o.Size-1)*perPeer+64)); err != nil {
		return fmt.Errorf("create cq: %w", err)
	}
	if p, ok := o.Device.(rdma.Poller); ok {
		if rc, ok := t.cq.(rdma.ReadyCQ); ok {
			t.poller, t.readyCQ = p, rc
		}
	}
	t.mrc = newMRCache(t.pd, o.MRCache)
	t.peers = make([]*peer, o.Size)
	local := endpoint{gid: o.Device.GIDs()[0], mtu: o.MTU, host: o.Host, qpn: make([]uint32, o.Size), psn: make([]uint32, o.Size)}
	for i := range o.Size {
		if i == o.Rank {
			continue
		}
		p, err := t.newPeer(i, sendSlots)
		if err != nil {
			return err
		}
		t.peers[i] = p
		local.qpn[i], local.psn[i] = p.qp.QPN(), p.psn
	}
	key := func(what string, rank int) string { return o.Prefix + "/" + what + "/" + strconv.Itoa(rank) }
	if err := o.Store.Set(ctx, key("ep", o.Rank), local.encode()); err != nil {
		return fmt.Errorf("publish endpoint: %w", err)
	}
	t.hosts = make([]string, o.Size)
	t.hosts[o.Rank] = o.Host
	for i, p := range t.peers {
		if p == nil {
			continue
		}
		b, err := o.Store.Get(ctx, key("ep", i))
		if err != nil {
			return fmt.Errorf("endpoint of rank %d: %w", i, err)
		}
		e, err := decodeEndpoint(b, o.Size)
		if err != nil {
			return fmt.Errorf("endpoint of rank %d: %w", i, err)
		}
		t.hosts[i] = e.host
		if err := t.connect(p, e.gid, e.qpn[o.Rank], e.psn[o.Rank], min(o.MTU, e.mtu)); err != nil {
			return err
		}
	}
	// Meet once more so nobody sends before every peer's QP is in RTR.
	if err := o.Store.Set(ctx, key("ready", o.Rank), []byte{1}); err != nil {
		return fmt.Errorf("publish ready: %w", err)
	}
	for i, p := range t.peers {
		if p == nil {
			continue
		}
		if _, err := o.Store.Get(ctx, key("ready", i)); err != nil {
			return fmt.Errorf("wait for rank %d: %w", i, err)
		}
	}
	return nil
}

// newPeer makes the QP (in INIT, receives posted) and slots for rank i.
func (t *Transport) newPeer(i, sendSlots int) (*peer, error) {
	o := &t.opts
	p := &peer{rank: i, credits: o.Slots, reported: uint64(o.Slots), tags: map[collective.Tag]*tagQueue{}}
	var err error
	p.qp, err = t.pd.CreateQP(rdma.QPInitAttr{SendCQ: t.cq, RecvCQ: t.cq, Cap: rdma.QPCap{
		MaxSendWR: sendSlots + o.MaxWrites*maxChunks, MaxRecvWR: o.Slots, MaxSendSGE: 1, MaxRecvSGE: 1}})
	if err != nil {
		return nil, fmt.Errorf("create qp for rank %d: %w", i, err)
	}
	// t.peers[i] is set by the caller; until then release() cannot see p,
	// so clean up here on failure.
	fail := func(err error) (*peer, error) {
		_ = p.qp.Destroy()
		for _, mr := range []rdma.MR{p.recvMR, p.sendMR} {
			if mr != nil {
				_ = mr.Deregister()
			}
		}
		return nil, err
	}
	if p.recvMR, err = t.pd.RegisterMR(make([]byte, o.Slots*t.slotSize), rdma.AccessLocalWrite); err != nil {
		return fail(fmt.Errorf("register receive slots for rank %d: %w", i, err))
	}
	if p.sendMR, err = t.pd.RegisterMR(make([]byte, sendSlots*t.slotSize), rdma.AccessLocalWrite); err != nil {
		return fail(fmt.Errorf("register send slots for rank %d: %w", i, err))
	}
	p.freeSend = make([]int32, sendSlots)
	for s := range p.freeSend {
		p.freeSend[s] = int32(sendSlots - 1 - s)
	}
	p.recvSGE = make([]rdma.SGE, o.Slots)
	p.recvWR = make([]rdma.RecvWR, o.Slots)
	for s := range p.recvWR {
		p.recvSGE[s] = rdma.SGE{Addr: p.recvMR.Addr() + uint64(s*t.slotSize), Length: uint32(t.slotSize), LKey: p.recvMR.LKey()}
		p.recvWR[s] = rdma.RecvWR{ID: wrID(wrRecv, i, uint32(s)), SGL: p.recvSGE[s : s+1]}
	}
	err = p.qp.Modify(&rdma.QPAttr{State: rdma.QPSInit, Port: 1, AccessFlags: rdma.AccessRemoteWrite},
		rdma.AttrState|rdma.AttrPKeyIndex|rdma.AttrPort|rdma.AttrAccessFlags)
	if err != nil {
		return fail(fmt.Errorf("qp %#x for rank %d to INIT: %w", p.qp.QPN(), i, err))
	}
	if n, err := p.qp.PostRecv(p.recvWR); err != nil || n != len(p.recvWR) {
		return fail(fmt.Errorf("post %d receives for rank %d: %w", len(p.recvWR), i, err))
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	p.psn = binary.LittleEndian.Uint32(b[:]) & (1<<24 - 1)
	return p, nil
}

// connect moves p's QP to RTR and RTS aimed at the peer's QP, as perftest
// does.
func (t *Transport) connect(p *peer, gid rdma.GID, qpn, psn uint32, mtu rdma.MTU) error {
	if qpn < 2 || qpn > 1<<24-1 || psn > 1<<24-1 {
		return fmt.Errorf("rank %d published qp %#x psn %#x: %w", p.rank, qpn, psn, collective.ErrInvalidArgument)
	}
	rtr := rdma.QPAttr{
		State:           rdma.QPSRTR,
		AV:              rdma.AddressVector{DGID: gid},
		PathMTU:         mtu,
		DestQPN:         qpn,
		RQPSN:           psn,
		MaxDestRdAtomic: 16,
		MinRNRTimer:     1, // 10 µs: credits make RNR rare, a goodbye may meet one
	}
	if err := p.qp.Modify(&rtr, rdma.AttrState|rdma.AttrAV|rdma.AttrPathMTU|rdma.AttrDestQPN|rdma.AttrRQPSN|rdma.AttrMaxDestRdAtomic|rdma.AttrMinRNRTimer); err != nil {
		return fmt.Errorf("qp %#x for rank %d to RTR: %w", p.qp.QPN(), p.rank, err)
	}
	rts := rdma.QPAttr{State: rdma.QPSRTS, SQPSN: p.psn, Timeout: t.opts.Timeout, RetryCnt: t.opts.RetryCnt, RNRRetry: 7, MaxRdAtomic: 16}
	if err := p.qp.Modify(&rts, rdma.AttrState|rdma.AttrSQPSN|rdma.AttrTimeout|rdma.AttrRetryCnt|rdma.AttrRNRRetry|rdma.AttrMaxRdAtomic); err != nil {
		return fmt.Errorf("qp %#x for rank %d to RTS: %w", p.qp.QPN(), p.rank, err)
	}
	return nil
}
