package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/opennetworks/onetdp/rdma"
)

// RDMABWResult is one row of an RDMA bandwidth run, in perftest's units:
// MB is 2^20 bytes, as perftest reports by default.
type RDMABWResult struct {
	// Test is the tool name: write_bw, send_bw, read_bw (or a peer's name).
	Test       string `json:"test"`
	Transport  string `json:"transport"`
	Size       int    `json:"bytes"`
	Iterations int    `json:"iterations"`
	// PeakMBps is the best rate over any run of consecutive messages
	// (perftest's BW peak); AvgMBps is bytes over the time from the first
	// post to the last completion.
	PeakMBps float64 `json:"bw_peak_mb_s"`
	AvgMBps  float64 `json:"bw_average_mb_s"`
	// MsgRateMpps is millions of messages per second.
	MsgRateMpps float64 `json:"msg_rate_mpps"`
	// Gbps is AvgMBps in Gbit/s (10^9 bits), for comparing with iperf3.
	Gbps    float64       `json:"bw_average_gbit_s"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// CRC32 is the checksum of the last transfer, checked at both ends.
	CRC32 uint32 `json:"crc32"`
	// Note says how a peer row was measured (empty for our rows).
	Note string `json:"note,omitempty"`
}

// RDMABandwidth measures client → server throughput of opts.Op as ib_write_bw,
// ib_send_bw and ib_read_bw do: up to TxDepth outstanding requests of Size
// bytes, one in CQMod signaled, Iterations of them (or for Duration), timed
// from the first post to the last completion at the client. For send_bw the
// server keeps RxDepth RECVs posted. Each size ends with a data check of the
// last transfer (and of every cycle slot): wrong bytes fail the run with
// ErrDataMismatch. The rows come back in size order, labelled transport.
func RDMABandwidth(ctx context.Context, transport string, client, server RDMASide, opts RDMAOptions) ([]RDMABWResult, error) {
	if err := opts.setDefaults(true); err != nil {
		return nil, err
	}
	recvDepth := 1
	if opts.Op == RDMASend {
		recvDepth = opts.RxDepth
	}
	p, err := connectPair(ctx, client, server, opts, opts.TxDepth, recvDepth, max(opts.TxDepth, opts.RxDepth))
	if err != nil {
		return nil, err
	}
	defer p.close()
	var rows []RDMABWResult
	for _, size := range opts.Sizes {
		r, err := p.bandwidth(ctx, size)
		r.Transport = transport
		if err != nil {
			return rows, fmt.Errorf("bench %s_bw %d B over %s: %w", opts.Op, size, transport, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// bwRun is the client's bookkeeping for one size.
type bwRun struct {
	l       layout
	wrs     []rdma.SendWR
	sges    []rdma.SGE
	posted  []int64 // ns since start, per message
	done    []int64
	total   int // messages to send; -1 until a duration run decides
	nposted int
	ndone   int
}

func (p *rdmaPair) bandwidth(ctx context.Context, size int) (RDMABWResult, error) {
	o := &p.opts
	res := RDMABWResult{Test: o.Op.String() + "_bw", Size: size}
	l := newLayout(size, max(o.TxDepth, o.RxDepth))
	p.fillSources(l)
	ctx, wd := newWatchdog(ctx, o.Timeout)
	defer wd.stop()

	run := &bwRun{l: l, wrs: make([]rdma.SendWR, o.TxDepth), sges: make([]rdma.SGE, o.TxDepth), total: o.Iterations}
	if o.Duration > 0 {
		run.total = -1
	}
	capHint := o.Iterations
	if o.Duration > 0 {
		capHint = 1 << 16
	}
	run.posted = make([]int64, 0, capHint)
	run.done = make([]int64, 0, capHint)

	// send_bw: the server receives on its own goroutine.
	recvDone := make(chan error, 1)
	finalTotal := make(chan int, 1)
	var lastRecv rdma.WC
	if o.Op == RDMASend {
		go func() { recvDone <- p.receiveAll(ctx, l, finalTotal, &lastRecv, wd) }()
	}

	start := time.Now()
	var endAt time.Time
	if o.Duration > 0 {
		endAt = start.Add(o.Duration)
	}
	err := p.sendAll(ctx, run, start, endAt, wd)
	elapsed := time.Since(start)
	if o.Op == RDMASend {
		if err != nil {
			finalTotal <- -1
		} else {
			finalTotal <- run.total
		}
		if rerr := <-recvDone; err == nil {
			err = rerr
		}
	}
	if err != nil {
		return res, err
	}
	res.Iterations = run.total
	res.Elapsed = time.Duration(run.done[len(run.done)-1] - run.posted[0])
	if res.Elapsed <= 0 {
		res.Elapsed = elapsed
	}
	secs := res.Elapsed.Seconds()
	res.AvgMBps = float64(size) * float64(run.total) / secs / (1 << 20)
	res.MsgRateMpps = float64(run.total) / secs / 1e6
	res.Gbps = float64(size) * float64(run.total) * 8 / secs / 1e9
	res.PeakMBps = peakMBps(size, run.posted, run.done)

	res.CRC32, err = p.checkBW(l, run.total, &lastRecv)
	return res, err
}

// sendAll posts the client's requests, keeping up to TxDepth outstanding,
// and reaps the signaled completions.
func (p *rdmaPair) sendAll(ctx context.Context, run *bwRun, start time.Time, endAt time.Time, wd *watchdog) error {
	o := &p.opts
	c := &p.c
	for run.total < 0 || run.ndone < run.total {
		// Post as many as the depth allows, in one call.
		k := 0
		for (run.total < 0 || run.nposted+k < run.total) && run.nposted+k-run.ndone < o.TxDepth {
			i := run.nposted + k
			last := run.total >= 0 && i == run.total-1
			if run.total < 0 && k == 0 && time.Now().After(endAt) {
				// A duration run decides its length here: this is the last.
				run.total = i + 1
				last = true
			}
			p.buildWR(&run.wrs[k], run.sges[k:k+1], run.l, i, last, last || (i+1)%o.CQMod == 0)
			k++
			if last {
				break
			}
		}
		if k > 0 {
			now := time.Since(start).Nanoseconds()
			posted := 0
			for posted < k {
				n, err := c.qp.PostSend(run.wrs[posted:k])
				for j := 0; j < n; j++ {
					run.posted = append(run.posted, now)
				}
				posted += n
				if err != nil {
					return fmt.Errorf("post send (message %d): %w", run.nposted+posted, err)
				}
			}
			run.nposted += k
		}
		if run.total >= 0 && run.ndone >= run.total {
			break
		}
		// Reap: spin while the queue has room, block when it is full.
		var n int
		var err error
		if run.nposted-run.ndone < o.TxDepth && (run.total < 0 || run.nposted < run.total) {
			n, err = c.scq.Poll(c.wcs)
		} else {
			n, err = waitCQ(ctx, c.scq, c.wcs, o.BusyPoll)
		}
		if err != nil {
			return fmt.Errorf("poll send cq after %d of %d completions: %w", run.ndone, run.nposted, err)
		}
		now := time.Since(start).Nanoseconds()
		for j := 0; j < n; j++ {
			wc := &c.wcs[j]
			if wc.Status != rdma.WCSuccess {
				return wcError(fmt.Sprintf("message %d", wc.ID), wc)
			}
			// RC completes in order: every message up to this one is done.
			for run.ndone <= int(wc.ID) {
				run.done = append(run.done, now)
				run.ndone++
			}
		}
		if n > 0 {
			wd.tick()
		}
	}
	return nil
}

// buildWR fills message i's request.
func (p *rdmaPair) buildWR(wr *rdma.SendWR, sgl []rdma.SGE, l layout, i int, last, signaled bool) {
	c := &p.c
	srcOff, dstOff := l.src(i), l.dst(i)
	if last {
		srcOff, dstOff = l.finalSrc(), l.finalDst()
	}
	*wr = rdma.SendWR{ID: uint64(i), Signaled: signaled}
	switch p.opts.Op {
	case RDMAWrite:
		sgl[0] = c.sge(srcOff, l.size)
		wr.Opcode, wr.RemoteAddr, wr.RKey = rdma.WRRDMAWrite, c.remote.Addr+uint64(dstOff), c.remote.RKey
	case RDMARead:
		// The server's source lands in the client's destination slot.
		sgl[0] = c.sge(dstOff, l.size)
		wr.Opcode, wr.RemoteAddr, wr.RKey = rdma.WRRDMARead, c.remote.Addr+uint64(srcOff), c.remote.RKey
	case RDMASend:
		sgl[0] = c.sge(srcOff, l.size)
		wr.Opcode = rdma.WRSend
	}
	wr.SGL = sgl
}

// receiveAll is send_bw's server: it keeps RxDepth RECVs posted (RECV j
// into slot j of the receive layout) and counts arrivals until the client's total
// (sent on finalTotal when it knows it) has arrived; last gets the final
// RECV's completion.
func (p *rdmaPair) receiveAll(ctx context.Context, l layout, finalTotal <-chan int, last *rdma.WC, wd *watchdog) error {
	o := &p.opts
	s := &p.s
	wrs := make([]rdma.RecvWR, o.RxDepth)
	sges := make([]rdma.SGE, o.RxDepth)
	next := &p.recvNext[1] // RECVs posted so far, over every size
	post := func(n int) error {
		for j := 0; j < n; j++ {
			sges[j] = s.sge(p.recvs.dst(*next+j), p.recvs.size)
			wrs[j] = rdma.RecvWR{ID: uint64(*next + j), SGL: sges[j : j+1]}
		}
		for off := 0; off < n; {
			k, err := s.qp.PostRecv(wrs[off:n])
			off += k
			if err != nil {
				return fmt.Errorf("server: post recv %d: %w", *next+off, err)
			}
		}
		*next += n
		return nil
	}
	if *next == 0 {
		if err := post(o.RxDepth); err != nil {
			return err
		}
	}
	total, got := -1, 0
	for total < 0 || got < total {
		if total < 0 {
			select {
			case t := <-finalTotal:
				if t < 0 {
					return nil // the client failed; it reports why
				}
				total = t
				continue
			default:
			}
		}
		n, err := s.rcq.Poll(s.wcs)
		if n == 0 && err == nil {
			if total < 0 {
				// Do not block: the client's total may arrive meanwhile.
				wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
				n, err = s.rcq.Wait(wctx, s.wcs)
				cancel()
				if err != nil && wctx.Err() != nil && ctx.Err() == nil {
					n, err = 0, nil
				}
			} else {
				n, err = waitCQ(ctx, s.rcq, s.wcs, o.BusyPoll)
			}
		}
		if err != nil {
			return fmt.Errorf("server: poll recv cq after %d receives: %w", got, runError(ctx, err))
		}
		for j := 0; j < n; j++ {
			wc := &s.wcs[j]
			if wc.Status != rdma.WCSuccess {
				return wcError("server receive", wc)
			}
			*last = *wc
		}
		got += n
		if n > 0 {
			wd.tick()
			if err := post(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkBW verifies the last transfer (from the final source slot) and every
// cycle slot the run used.
func (p *rdmaPair) checkBW(l layout, total int, lastRecv *rdma.WC) (uint32, error) {
	used := min(total-1, l.slots) // messages before the last, by slot
	switch p.opts.Op {
	case RDMAWrite:
		sum, err := checkTransfer("last write", &p.c, l.finalSrc(), &p.s, l.finalDst(), l.size)
		if err != nil || used <= 0 {
			return sum, err
		}
		_, err = checkTransfer("cycle slots", &p.c, l.src(0), &p.s, l.dst(0), used*l.size)
		return sum, err
	case RDMARead:
		sum, err := checkTransfer("last read", &p.s, l.finalSrc(), &p.c, l.finalDst(), l.size)
		if err != nil || used <= 0 {
			return sum, err
		}
		_, err = checkTransfer("cycle slots", &p.s, l.src(0), &p.c, l.dst(0), used*l.size)
		return sum, err
	default: // send: the last SEND landed in the slot of the last RECV
		if int(lastRecv.ByteLen) != l.size {
			return 0, fmt.Errorf("last receive holds %d bytes, sent %d: %w", lastRecv.ByteLen, l.size, ErrDataMismatch)
		}
		return checkTransfer("last send", &p.c, l.finalSrc(), &p.s, p.recvs.dst(int(lastRecv.ID)), l.size)
	}
}

// peakMBps is perftest's BW peak: the best rate over any run of consecutive
// messages i..j, (j-i+1) messages in done[j]-posted[i]. Long runs are
// sampled on a stride so the search stays near 16 million steps.
func peakMBps(size int, posted, done []int64) float64 {
	n := min(len(posted), len(done))
	if n == 0 {
		return 0
	}
	stride := 1
	for (n/stride)*(n/stride) > 16<<20 {
		stride++
	}
	best := -1.0 // ns per message
	for i := 0; i < n; i += stride {
		for j := i; j < n; j += stride {
			t := float64(done[j]-posted[i]) / float64(j-i+1)
			if t > 0 && (best < 0 || t < best) {
				best = t
			}
		}
	}
	if best <= 0 {
		return 0
	}
	return float64(size) / (best / 1e9) / (1 << 20)
}
