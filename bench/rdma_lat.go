package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/opennetworks/onetdp/rdma"
)

// RDMALatResult is one row of an RDMA latency run: perftest's latency
// figures (one-way for write and send, round trip/2; the whole READ for
// read, as ib_read_lat reports it).
type RDMALatResult struct {
	// Test is the tool name: write_lat, send_lat, read_lat (or a peer's).
	Test string `json:"test"`
	LatResult
	// CRC32 is the checksum of the last transfer, checked at both ends.
	CRC32 uint32 `json:"crc32"`
	// Note says how a peer row was measured (empty for our rows).
	Note string `json:"note,omitempty"`
}

// latRecvDepth is the RECVs each side of send_lat keeps posted.
const latRecvDepth = 16

// RDMALatency measures opts.Op one message at a time as ib_write_lat,
// ib_send_lat and ib_read_lat do. write_lat: each side writes Size bytes
// into the other's buffer and the other polls the last byte for the
// iteration's counter before answering; send_lat: SEND ping-pong with RECVs
// kept posted; read_lat: the client READs and waits for the completion.
// Warmup round trips go first, unmeasured. The last transfer of each size is
// checked byte for byte (ErrDataMismatch).
func RDMALatency(ctx context.Context, transport string, client, server RDMASide, opts RDMAOptions) ([]RDMALatResult, error) {
	if err := opts.setDefaults(false); err != nil {
		return nil, err
	}
	p, err := connectPair(ctx, client, server, opts, 16, latRecvDepth, 1)
	if err != nil {
		return nil, err
	}
	defer p.close()
	var rows []RDMALatResult
	for _, size := range opts.Sizes {
		r, err := p.latency(ctx, size)
		r.Transport = transport
		if err != nil {
			return rows, fmt.Errorf("bench %s_lat %d B over %s: %w", opts.Op, size, transport, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// latEnd is one side's state in a ping-pong: its source and destination
// (the final slots of the layout), its counter, its send completions owed.
type latEnd struct {
	e       *rdmaEnd
	l       layout
	wr      [1]rdma.SendWR
	sge     [1]rdma.SGE
	rwr     [1]rdma.RecvWR
	rsge    [1]rdma.SGE
	unacked int // signaled sends not yet reaped
	recvs   int // RECVs completed
	lastRcv rdma.WC
}

func (p *rdmaPair) newLatEnd(e *rdmaEnd, l layout) *latEnd {
	le := &latEnd{e: e, l: l}
	le.sge[0] = e.sge(l.finalSrc(), l.size)
	wr := &le.wr[0]
	*wr = rdma.SendWR{Signaled: true, SGL: le.sge[:]}
	switch p.opts.Op {
	case RDMAWrite:
		wr.Opcode, wr.RemoteAddr, wr.RKey = rdma.WRRDMAWrite, e.remote.Addr+uint64(l.finalDst()), e.remote.RKey
	case RDMASend:
		wr.Opcode = rdma.WRSend
	case RDMARead:
		le.sge[0] = e.sge(l.finalDst(), l.size)
		wr.Opcode, wr.RemoteAddr, wr.RKey = rdma.WRRDMARead, e.remote.Addr+uint64(l.finalSrc()), e.remote.RKey
	}
	le.rsge[0] = e.sge(p.recvs.finalDst(), p.recvs.size)
	le.rwr[0] = rdma.RecvWR{SGL: le.rsge[:]}
	return le
}

func (p *rdmaPair) latency(ctx context.Context, size int) (RDMALatResult, error) {
	o := &p.opts
	res := RDMALatResult{Test: o.Op.String() + "_lat"}
	res.Size = size
	l := newLayout(size, 1)
	p.fillSources(l)
	ctx, wd := newWatchdog(ctx, o.Timeout)
	defer wd.stop()
	c, s := p.newLatEnd(&p.c, l), p.newLatEnd(&p.s, l)
	if o.Op == RDMASend {
		for i, le := range []*latEnd{c, s} {
			for ; p.recvNext[i] < latRecvDepth; p.recvNext[i]++ { // once per connection
				if err := le.postRecv(); err != nil {
					return res, err
				}
			}
		}
	}

	srvCtx, stopServer := context.WithCancel(ctx)
	srvDone := make(chan error, 1)
	switch o.Op {
	case RDMAWrite, RDMASend:
		go func() { srvDone <- p.latServer(srvCtx, s, wd) }()
	default:
		srvDone <- nil // READ: the server's engine answers alone
	}

	samples := make([]time.Duration, 0, o.Iterations)
	var start time.Time
	var endAt time.Time
	err := func() error {
		for k := 1; ; k++ {
			measured := k > o.Warmup
			if measured && start.IsZero() {
				start = time.Now()
				if o.Duration > 0 {
					endAt = start.Add(o.Duration)
				}
			}
			if measured && (o.Duration > 0 && time.Now().After(endAt) || o.Duration <= 0 && len(samples) == o.Iterations) {
				return nil
			}
			t0 := time.Now()
			if err := p.latRound(ctx, c, k); err != nil {
				return fmt.Errorf("round trip %d: %w", k, err)
			}
			d := time.Since(t0)
			wd.tick()
			if measured {
				if o.Op != RDMARead {
					d /= 2
				}
				samples = append(samples, d)
			}
		}
	}()
	stopServer()
	if serr := <-srvDone; err == nil && serr != nil {
		err = serr
	}
	if err == nil {
		err = c.reap(ctx, &p.opts, 0)
	}
	res.LatResult = summarize(samples)
	res.Transport, res.Size = "", size
	if err != nil {
		return res, err
	}
	res.CRC32, err = p.checkLat(c, s)
	return res, err
}

// latRound is the client's half of round trip k.
func (p *rdmaPair) latRound(ctx context.Context, c *latEnd, k int) error {
	o := &p.opts
	switch o.Op {
	case RDMAWrite:
		if err := c.send(ctx, o, k); err != nil {
			return err
		}
		return c.awaitByte(ctx, o, k)
	case RDMASend:
		if err := c.send(ctx, o, k); err != nil {
			return err
		}
		return c.awaitRecv(ctx, o)
	default:
		if err := c.send(ctx, o, k); err != nil {
			return err
		}
		return c.reap(ctx, o, 0)
	}
}

// latServer answers each arrival in kind until ctx ends.
func (p *rdmaPair) latServer(ctx context.Context, s *latEnd, wd *watchdog) error {
	o := &p.opts
	for k := 1; ; k++ {
		var err error
		if o.Op == RDMAWrite {
			err = s.awaitByte(ctx, o, k)
		} else {
			err = s.awaitRecv(ctx, o)
		}
		if ctx.Err() != nil {
			return nil // the client is done (or failed and says why)
		}
		if err != nil {
			return fmt.Errorf("server, round trip %d: %w", k, err)
		}
		if err := s.send(ctx, o, k); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("server, round trip %d: %w", k, err)
		}
		wd.tick()
	}
}

// send posts the side's one request for round k, after reaping the previous
// one's completion (its source must not change while it may be resent).
func (le *latEnd) send(ctx context.Context, o *RDMAOptions, k int) error {
	if err := le.reap(ctx, o, 0); err != nil {
		return err
	}
	if o.Op == RDMAWrite {
		le.e.buf[le.l.finalSrc()+le.l.size-1] = byte(k)
	}
	le.wr[0].ID = uint64(k)
	if _, err := le.e.qp.PostSend(le.wr[:]); err != nil {
		return fmt.Errorf("post %v: %w", o.Op, err)
	}
	le.unacked++
	return nil
}

// reap waits until at most keep signaled sends are outstanding.
func (le *latEnd) reap(ctx context.Context, o *RDMAOptions, keep int) error {
	for le.unacked > keep {
		n, err := waitCQ(ctx, le.e.scq, le.e.wcs, o.BusyPoll)
		if err != nil {
			return fmt.Errorf("poll send cq: %w", err)
		}
		for j := 0; j < n; j++ {
			if wc := &le.e.wcs[j]; wc.Status != rdma.WCSuccess {
				return wcError("send completion", wc)
			}
		}
		le.unacked -= n
	}
	return nil
}

// awaitRecv waits for one RECV completion and posts a RECV in its place.
func (le *latEnd) awaitRecv(ctx context.Context, o *RDMAOptions) error {
	n, err := waitCQ(ctx, le.e.rcq, le.e.wcs[:1], o.BusyPoll)
	if err != nil {
		return fmt.Errorf("poll recv cq: %w", err)
	}
	if n != 1 {
		return fmt.Errorf("poll recv cq: %d completions", n)
	}
	if wc := &le.e.wcs[0]; wc.Status != rdma.WCSuccess {
		return wcError("receive", wc)
	}
	le.lastRcv = le.e.wcs[0]
	le.recvs++
	return le.postRecv()
}

func (le *latEnd) postRecv() error {
	le.rwr[0].ID = uint64(le.recvs)
	if _, err := le.e.qp.PostRecv(le.rwr[:]); err != nil {
		return fmt.Errorf("post recv: %w", err)
	}
	return nil
}

// awaitByte polls the last byte of the destination until it holds byte(k),
// as ib_write_lat does. The engine writes that memory from its own
// goroutine; the load is atomic (on the aligned word around the byte) so it
// is not hoisted out of the loop.
func (le *latEnd) awaitByte(ctx context.Context, o *RDMAOptions, k int) error {
	off := le.l.finalDst() + le.l.size - 1
	word := (*uint32)(unsafe.Pointer(&le.e.buf[off&^3]))
	want := byte(k)
	var b [4]byte
	for spins := 1; ; spins++ {
		binary.NativeEndian.PutUint32(b[:], atomic.LoadUint32(word))
		if b[off&3] == want {
			return nil
		}
		if !o.BusyPoll || spins&255 == 0 {
			if err := ctx.Err(); err != nil {
				return runError(ctx, err)
			}
			runtime.Gosched()
		}
	}
}

// checkLat verifies the last transfer in each direction.
func (p *rdmaPair) checkLat(c, s *latEnd) (uint32, error) {
	l := c.l
	switch p.opts.Op {
	case RDMARead:
		return checkTransfer("last read", &p.s, l.finalSrc(), &p.c, l.finalDst(), l.size)
	case RDMASend:
		if int(s.lastRcv.ByteLen) != l.size || int(c.lastRcv.ByteLen) != l.size {
			return 0, fmt.Errorf("last receives hold %d and %d bytes, sent %d: %w", s.lastRcv.ByteLen, c.lastRcv.ByteLen, l.size, ErrDataMismatch)
		}
	}
	dst := l.finalDst()
	if p.opts.Op == RDMASend {
		dst = p.recvs.finalDst()
	}
	sum, err := checkTransfer("last client → server transfer", &p.c, l.finalSrc(), &p.s, dst, l.size)
	if err != nil {
		return sum, err
	}
	_, err = checkTransfer("last server → client transfer", &p.s, l.finalSrc(), &p.c, dst, l.size)
	return sum, err
}
