package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/cm"
)

// RDMAOp is the verb a perftest-style RDMA benchmark measures.
type RDMAOp uint8

// The measured verbs, as perftest names its tools.
const (
	RDMAWrite RDMAOp = iota // ib_write_bw, ib_write_lat
	RDMASend                // ib_send_bw, ib_send_lat
	RDMARead                // ib_read_bw, ib_read_lat
)

func (o RDMAOp) String() string {
	switch o {
	case RDMAWrite:
		return "write"
	case RDMASend:
		return "send"
	case RDMARead:
		return "read"
	}
	return fmt.Sprintf("RDMAOp(%d)", uint8(o))
}

// title is perftest's banner word for the verb ("RDMA_Write BW Test").
func (o RDMAOp) title() string {
	switch o {
	case RDMAWrite:
		return "RDMA_Write"
	case RDMARead:
		return "RDMA_Read"
	}
	return "Send"
}

// Errors a caller can act on.
var (
	// ErrDataMismatch: the bytes that arrived are not the bytes that were
	// sent (the end-of-run check of the last transfer, or of the cycle
	// buffer, failed). The run's figures are worthless.
	ErrDataMismatch = errors.New("bench: data check failed: transferred bytes differ from the source")
	// ErrStalled: no completion arrived within RDMAOptions.Timeout.
	ErrStalled = errors.New("bench: no progress")
)

// RDMASide is one end of an RDMA benchmark: a device and the out-of-band
// exchange that connects it to the peer. The measurement code touches only
// the rdma contract, so any Device (the software RoCEv2 engine, a verbs
// NIC) works.
type RDMASide struct {
	// Device is where the side's PD, CQs, QP and buffer are made. The
	// benchmark does not close it.
	Device rdma.Device
	// Connect swaps endpoints with the peer, running opts.OnRemote (which
	// moves the QP to RTR) before it reports ready: cm.Listen on the
	// server, cm.Dial on the client, each from inside its host's network
	// namespace. It is called once per run, from its own goroutine.
	Connect func(ctx context.Context, local cm.Endpoint, opts cm.Options) (cm.Endpoint, error)
}

// RDMAOptions configure RDMABandwidth and RDMALatency. Zero fields take
// perftest's defaults.
type RDMAOptions struct {
	// Op is the verb: write, send or read.
	Op RDMAOp
	// Sizes are the message sizes in bytes, each measured in turn on the
	// same connection; default {65536} for bandwidth, {2} for latency (as
	// perftest). AllSizes gives perftest -a's sweep.
	Sizes []int
	// Iterations per size; default 5000 for bandwidth, 1000 for latency.
	Iterations int
	// Duration, when set, runs each size for this long instead of
	// Iterations.
	Duration time.Duration
	// Warmup latency round trips run first and are not measured; default 100.
	Warmup int
	// TxDepth is the most outstanding send-queue requests (perftest -t);
	// default 128 for bandwidth. Latency runs keep one outstanding.
	TxDepth int
	// RxDepth is the RECVs the receiver of send_bw keeps posted (perftest
	// -r); default 512.
	RxDepth int
	// CQMod: one request in CQMod is signaled (perftest -Q, cq_mod);
	// default 100, at most TxDepth.
	CQMod int
	// MTU is the path MTU; default 1024.
	MTU rdma.MTU
	// Timeout bounds the wait for any one completion (and the connection
	// setup); default 10s. Running past it fails with ErrStalled.
	Timeout time.Duration
	// QPTimeout is the QP's ACK timeout exponent (4.096 µs × 2^n before a
	// resend); default 14 (67 ms), perftest's -u default.
	QPTimeout uint8
	// BusyPoll spins on the CQ (and on memory, for write_lat) instead of
	// blocking in CQ.Wait; default false: the engine shares the CPU with
	// the poller.
	BusyPoll bool
	// OnConnected, if set, hears the client's own and the server's
	// endpoint once the QPs are connected (perftest prints them).
	OnConnected func(local, remote cm.Endpoint)
}

// AllSizes returns perftest -a's sizes: 2 bytes to 8 MiB by powers of two.
func AllSizes() []int {
	var s []int
	for n := 2; n <= 8<<20; n <<= 1 {
		s = append(s, n)
	}
	return s
}

func (o *RDMAOptions) setDefaults(bw bool) error {
	if o.Op > RDMARead {
		return fmt.Errorf("bench rdma: unknown verb %v", o.Op)
	}
	if len(o.Sizes) == 0 {
		if bw {
			o.Sizes = []int{65536}
		} else {
			o.Sizes = []int{2}
		}
	}
	for _, s := range o.Sizes {
		if s < 1 || s > 1<<30 {
			return fmt.Errorf("bench rdma: size %d outside 1 B..1 GiB", s)
		}
		if !bw && o.Op == RDMAWrite && s < 2 {
			return fmt.Errorf("bench rdma: write_lat size %d: needs 2 bytes (the last one is the polled counter)", s)
		}
	}
	if o.Iterations == 0 {
		o.Iterations = 1000
		if bw {
			o.Iterations = 5000
		}
	}
	if o.Iterations < 1 && o.Duration <= 0 {
		return fmt.Errorf("bench rdma: %d iterations", o.Iterations)
	}
	if o.Warmup == 0 {
		o.Warmup = 100
	}
	if o.TxDepth <= 0 {
		o.TxDepth = 128
	}
	if o.RxDepth <= 0 {
		o.RxDepth = 512
	}
	if o.CQMod <= 0 {
		o.CQMod = 100
	}
	o.CQMod = min(o.CQMod, o.TxDepth)
	if o.MTU == 0 {
		o.MTU = rdma.MTU1024
	}
	if o.MTU.Bytes() == 0 {
		return fmt.Errorf("bench rdma: path mtu %v is not one of 256..4096", o.MTU)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.QPTimeout == 0 {
		o.QPTimeout = 14
	}
	if o.QPTimeout > 31 {
		return fmt.Errorf("bench rdma: qp timeout %d above 31", o.QPTimeout)
	}
	return nil
}

// maxCycleBytes bounds the cycle buffer: the slots that the messages of a
// run rotate through (perftest's cycle buffer).
const maxCycleBytes = 16 << 20

// layout places a run's slots in a side's buffer, for one message size:
// [src slots][final src][dst slots][final dst]. Messages rotate through the
// slots; the last message of a run goes from the final source slot (filled
// with fresh random bytes) to the final destination slot (zeroed), so the
// end-of-run check sees exactly the last transfer.
type layout struct {
	size, slots int
}

func newLayout(size, depth int) layout {
	return layout{size: size, slots: max(1, min(depth, maxCycleBytes/size))}
}

func (l layout) src(i int) int  { return (i % l.slots) * l.size }
func (l layout) finalSrc() int  { return l.slots * l.size }
func (l layout) dst(i int) int  { return (l.slots+1)*l.size + (i%l.slots)*l.size }
func (l layout) finalDst() int  { return (2*l.slots + 1) * l.size }
func (l layout) bytes() int     { return (2*l.slots + 2) * l.size }
func (l layout) srcRegion() int { return l.slots * l.size }

// bufferBytes is the buffer a side needs for every size of a run, plus
// slack for a misplaced transfer to land in (and be caught) rather than
// fault.
func bufferBytes(sizes []int, depth int) int {
	n := 0
	for _, s := range sizes {
		n = max(n, newLayout(s, depth).bytes())
	}
	return n + 64
}

// rdmaEnd is one side's verbs resources for a run.
type rdmaEnd struct {
	side   RDMASide
	pd     rdma.PD
	scq    rdma.CQ
	rcq    rdma.CQ
	qp     rdma.QP
	mr     rdma.MR
	buf    []byte
	psn    uint32
	remote cm.Endpoint
	wcs    []rdma.WC
}

func (e *rdmaEnd) open(sendDepth, recvDepth, bufLen int) error {
	d := e.side.Device
	if d == nil {
		return errors.New("no device")
	}
	if len(d.GIDs()) == 0 {
		return fmt.Errorf("device %s has no GID", d.Name())
	}
	var err error
	if e.pd, err = d.AllocPD(); err != nil {
		return fmt.Errorf("alloc pd on %s: %w", d.Name(), err)
	}
	if e.scq, err = d.CreateCQ(sendDepth + 16); err != nil {
		return fmt.Errorf("create send cq on %s: %w", d.Name(), err)
	}
	if e.rcq, err = d.CreateCQ(recvDepth + 16); err != nil {
		return fmt.Errorf("create recv cq on %s: %w", d.Name(), err)
	}
	e.qp, err = e.pd.CreateQP(rdma.QPInitAttr{SendCQ: e.scq, RecvCQ: e.rcq,
		Cap: rdma.QPCap{MaxSendWR: sendDepth, MaxRecvWR: recvDepth, MaxSendSGE: 1, MaxRecvSGE: 1}})
	if err != nil {
		return fmt.Errorf("create qp on %s: %w", d.Name(), err)
	}
	e.buf = make([]byte, bufLen)
	e.mr, err = e.pd.RegisterMR(e.buf, rdma.AccessLocalWrite|rdma.AccessRemoteWrite|rdma.AccessRemoteRead)
	if err != nil {
		return fmt.Errorf("register %d B on %s: %w", bufLen, d.Name(), err)
	}
	err = e.qp.Modify(&rdma.QPAttr{State: rdma.QPSInit, Port: 1, AccessFlags: rdma.AccessRemoteWrite | rdma.AccessRemoteRead},
		rdma.AttrState|rdma.AttrPKeyIndex|rdma.AttrPort|rdma.AttrAccessFlags)
	if err != nil {
		return fmt.Errorf("qp %#x to INIT: %w", e.qp.QPN(), err)
	}
	e.psn = randomPSN()
	e.wcs = make([]rdma.WC, 64)
	return nil
}

func (e *rdmaEnd) close() {
	if e.qp != nil {
		_ = e.qp.Destroy()
	}
	if e.mr != nil {
		_ = e.mr.Deregister()
	}
	for _, cq := range []rdma.CQ{e.scq, e.rcq} {
		if cq != nil {
			_ = cq.Close()
		}
	}
	if e.pd != nil {
		_ = e.pd.Dealloc()
	}
}

func (e *rdmaEnd) endpoint(mtu rdma.MTU) cm.Endpoint {
	return cm.Endpoint{GID: e.side.Device.GIDs()[0], QPN: e.qp.QPN(), PSN: e.psn, MTU: uint16(mtu.Bytes()),
		Addr: e.mr.Addr(), RKey: e.mr.RKey(), Len: uint64(e.mr.Len())}
}

// toRTR aims the QP at the peer's endpoint; the path MTU is the smaller of
// the two sides'.
func (e *rdmaEnd) toRTR(remote cm.Endpoint, mtu rdma.MTU) error {
	e.remote = remote
	attr := rdma.QPAttr{
		State:           rdma.QPSRTR,
		AV:              rdma.AddressVector{DGID: rdma.GID(remote.GID)},
		PathMTU:         min(mtu, rdma.MTUFromBytes(int(remote.MTU))),
		DestQPN:         remote.QPN,
		RQPSN:           remote.PSN,
		MaxDestRdAtomic: 16,
		MinRNRTimer:     1, // 10 µs: a send_bw receiver re-posts quickly
	}
	err := e.qp.Modify(&attr, rdma.AttrState|rdma.AttrAV|rdma.AttrPathMTU|rdma.AttrDestQPN|rdma.AttrRQPSN|rdma.AttrMaxDestRdAtomic|rdma.AttrMinRNRTimer)
	if err != nil {
		return fmt.Errorf("qp %#x to RTR: %w", e.qp.QPN(), err)
	}
	return nil
}

func (e *rdmaEnd) toRTS(timeout uint8) error {
	// perftest's defaults: 7 retries, RNR retry 7 (forever), 16
	// outstanding reads.
	attr := rdma.QPAttr{State: rdma.QPSRTS, SQPSN: e.psn, Timeout: timeout, RetryCnt: 7, RNRRetry: 7, MaxRdAtomic: 16}
	if err := e.qp.Modify(&attr, rdma.AttrState|rdma.AttrSQPSN|rdma.AttrTimeout|rdma.AttrRetryCnt|rdma.AttrRNRRetry|rdma.AttrMaxRdAtomic); err != nil {
		return fmt.Errorf("qp %#x to RTS: %w", e.qp.QPN(), err)
	}
	return nil
}

func randomPSN() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:]) & cm.MaxPSN
}

// rdmaPair is a connected client (who measures) and server.
type rdmaPair struct {
	c, s rdmaEnd
	opts RDMAOptions
	// recvs is the receive layout: RECVs stay posted from one size to the
	// next, so they are sized for the largest message and placed by a
	// layout of that size. recvNext counts the RECVs posted per side.
	recvs    layout
	recvNext [2]int
}

// connectPair makes both sides' resources and connects them: the server's
// Connect on its own goroutine, the client's on this one; both QPs reach
// RTR inside the exchange and RTS after it.
// slotDepth is the layouts' depth (newLayout).
func connectPair(ctx context.Context, client, server RDMASide, opts RDMAOptions, sendDepth, recvDepth, slotDepth int) (*rdmaPair, error) {
	p := &rdmaPair{c: rdmaEnd{side: client}, s: rdmaEnd{side: server}, opts: opts,
		recvs: newLayout(slices.Max(opts.Sizes), slotDepth)}
	bufLen := bufferBytes(opts.Sizes, slotDepth)
	for _, e := range []*rdmaEnd{&p.c, &p.s} {
		if err := e.open(sendDepth, recvDepth, bufLen); err != nil {
			p.close()
			return nil, fmt.Errorf("bench rdma: %w", err)
		}
	}
	if client.Connect == nil || server.Connect == nil {
		p.close()
		return nil, errors.New("bench rdma: a side has no Connect")
	}
	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	srvErr := make(chan error, 1)
	go func() {
		_, err := server.Connect(cctx, p.s.endpoint(opts.MTU), cm.Options{Timeout: opts.Timeout,
			OnRemote: func(r cm.Endpoint) error { return p.s.toRTR(r, opts.MTU) }})
		if err != nil {
			cancel() // the client stops waiting for a server that is gone
		}
		srvErr <- err
	}()
	_, cerr := client.Connect(cctx, p.c.endpoint(opts.MTU), cm.Options{Timeout: opts.Timeout,
		OnRemote: func(r cm.Endpoint) error { return p.c.toRTR(r, opts.MTU) }})
	if cerr != nil {
		cancel()
	}
	serr := <-srvErr
	if err := errors.Join(serr, cerr); err != nil {
		p.close()
		return nil, fmt.Errorf("bench rdma: connect: %w", err)
	}
	for _, e := range []*rdmaEnd{&p.s, &p.c} {
		if err := e.toRTS(opts.QPTimeout); err != nil {
			p.close()
			return nil, fmt.Errorf("bench rdma: %w", err)
		}
	}
	if opts.OnConnected != nil {
		opts.OnConnected(p.c.endpoint(opts.MTU), p.c.remote)
	}
	return p, nil
}

func (p *rdmaPair) close() {
	p.c.close()
	p.s.close()
}

// fillSources writes the pattern into both sides' source slots for a
// layout and zeroes the destination slots; the final source slot gets
// fresh random bytes so a stale copy cannot pass the check.
func (p *rdmaPair) fillSources(l layout) {
	for _, e := range []*rdmaEnd{&p.c, &p.s} {
		b := e.buf
		for i := 0; i < l.srcRegion(); i++ {
			b[i] = byte(i*7 + i>>8)
		}
		_, _ = rand.Read(b[l.finalSrc() : l.finalSrc()+l.size])
		clear(b[l.dst(0) : l.finalDst()+l.size])
	}
}

// sge is one scatter/gather element of e's buffer.
func (e *rdmaEnd) sge(off, n int) rdma.SGE {
	return rdma.SGE{Addr: e.mr.Addr() + uint64(off), Length: uint32(n), LKey: e.mr.LKey()}
}

// checkTransfer compares n bytes at srcOff of from with n bytes at dstOff of
// to, and returns the CRC-32 of the source.
func checkTransfer(what string, from *rdmaEnd, srcOff int, to *rdmaEnd, dstOff, n int) (uint32, error) {
	want := crc32.ChecksumIEEE(from.buf[srcOff : srcOff+n])
	got := crc32.ChecksumIEEE(to.buf[dstOff : dstOff+n])
	if want != got {
		return want, fmt.Errorf("%s: %d bytes at offset %d have crc32 %#08x, the source's is %#08x: %w", what, n, dstOff, got, want, ErrDataMismatch)
	}
	return want, nil
}

// waitCQ takes at least one completion from cq into wcs, spinning or
// blocking as the options say, until ctx (a watched run's context) ends.
func waitCQ(ctx context.Context, cq rdma.CQ, wcs []rdma.WC, busy bool) (int, error) {
	n, err := cq.Poll(wcs)
	if n > 0 || err != nil {
		return n, err
	}
	if !busy {
		n, err = cq.Wait(ctx, wcs)
		return n, runError(ctx, err)
	}
	for spins := 1; ; spins++ {
		if n, err := cq.Poll(wcs); n > 0 || err != nil {
			return n, err
		}
		if spins&255 == 0 {
			if ctx.Err() != nil {
				return 0, runError(ctx, ctx.Err())
			}
			runtime.Gosched()
		}
	}
}

// watchdog cancels a run's context with ErrStalled when its progress counter
// stays still for a whole timeout. The run calls tick (cheap: one atomic
// add) whenever something completes, and stop when it is done.
type watchdog struct {
	progress atomic.Uint64
	stop     func()
}

func newWatchdog(ctx context.Context, timeout time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{}
	done := make(chan struct{})
	w.stop = func() { close(done); cancel(nil) }
	go func() {
		t := time.NewTicker(timeout / 4)
		defer t.Stop()
		last, still := w.progress.Load(), time.Duration(0)
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if p := w.progress.Load(); p != last {
				last, still = p, 0
				continue
			}
			if still += timeout / 4; still >= timeout {
				cancel(fmt.Errorf("nothing completed for %v: %w", timeout, ErrStalled))
				return
			}
		}
	}()
	return ctx, w
}

func (w *watchdog) tick() { w.progress.Add(1) }

// runError prefers the cause of a cancelled run (ErrStalled) to the bare
// context error.
func runError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
		return c
	}
	return err
}

// wcError turns a failed completion into an error naming the run.
func wcError(where string, wc *rdma.WC) error {
	return fmt.Errorf("%s: %w", where, wc.Err())
}
