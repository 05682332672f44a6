package tcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/internal/spin"
)

// The receive side of a connection is a resumable, non-blocking parser
// (rxState, advanced by progress) that whoever holds peer.rxmu may drive:
// the peer's reader goroutine, which parks in the netpoller between
// bytes, or a goroutine waiting for one of this peer's receives, which
// polls the socket itself for a short while (request.Wait) so that a
// small message reaches its receiver without a goroutine hand-off.
//
// Liveness: the reader goroutine reads until EAGAIN after every
// readiness edge, taking rxmu (waiting for a polling goroutine to let go
// if need be), so bytes are never left in the socket with nobody about to
// read them. A stall (a header whose message has neither a posted receive
// nor room in the unexpected budget) is waited out by the reader goroutine
// on peer.cond until a receive or room comes; a poller that runs into one
// leaves it to the reader and, so as not to rely on the reader's pending
// readiness edge alone, kicks it out of the netpoller (a read deadline in
// the past).

// stageLen is the staging buffer: headers and small payloads arrive
// through it, several per read; payloads of stageLen/2 and more are read
// straight into their buffer.
const stageLen = 8 << 10

// rxPhase is where the parser is in the stream.
type rxPhase uint8

const (
	rxHeader  rxPhase = iota // skipping padding, then reading a header
	rxPlace                  // header read: find the message a buffer
	rxPayload                // reading the payload into dst (discard when dst is nil)
)

// rxState is the parser; peer.rxmu guards it.
type rxState struct {
	fd     int  // the socket, valid while !closed
	closed bool // set by fail before the connection closes

	stage      [stageLen]byte
	sr, sw     int // unread bytes are stage[sr:sw]
	skip       int // padding still to drop before the next header
	phase      rxPhase
	tag        Tag
	size, got  int
	dst        []byte   // the payload's destination (nil: discard)
	req        *request // the posted receive being filled, if any
	unexpected bool     // dst is a buffer for an unexpected message
	mismatch   error    // the posted receive completes with this instead
}

// rxStatus is what progress stopped at.
type rxStatus uint8

const (
	rxAgain   rxStatus = iota // the socket has nothing more now
	rxStalled                 // a message waits for a receive or room
	rxFailed                  // the connection failed (err returned)
	rxClosed                  // the peer already failed
)

// progress reads what the socket has and dispatches it; p.rxmu is held.
// It returns the bytes read. On rxFailed the caller calls p.fail with
// the error once it let go of rxmu.
func (p *peer) progress() (int, rxStatus, error) {
	rx := &p.rx
	if rx.closed {
		return 0, rxClosed, nil
	}
	total := 0
	for {
		switch rx.phase {
		case rxHeader:
			if rx.sw-rx.sr < rx.skip+headerLen {
				n, err := p.fill()
				total += n
				if err != nil {
					return total, rxFailed, err
				}
				if n == 0 {
					return total, rxAgain, nil
				}
				continue
			}
			rx.sr += rx.skip
			hdr := rx.stage[rx.sr : rx.sr+headerLen]
			rx.sr += headerLen
			rx.tag = Tag(binary.BigEndian.Uint64(hdr[0:8]))
			size := binary.BigEndian.Uint64(hdr[8:16])
			if size > maxMessage {
				err := fmt.Errorf("message header says %d bytes", size)
				return total, rxFailed, err
			}
			rx.size, rx.got, rx.skip = int(size), 0, padLen(int(size))
			rx.phase = rxPlace
		case rxPlace:
			if !p.place() {
				return total, rxStalled, nil
			}
			rx.phase = rxPayload
		case rxPayload:
			if k := min(rx.sw-rx.sr, rx.size-rx.got); k > 0 {
				if rx.dst != nil {
					copy(rx.dst[rx.got:], rx.stage[rx.sr:rx.sr+k])
				}
				rx.sr += k
				rx.got += k
			}
			if rx.got < rx.size {
				var n int
				var err error
				if rx.dst != nil && rx.size-rx.got >= stageLen/2 {
					n, err = p.readInto(rx.dst[rx.got:rx.size])
					rx.got += n
				} else {
					n, err = p.fill()
				}
				total += n
				if err != nil {
					return total, rxFailed, err
				}
				if n == 0 {
					return total, rxAgain, nil
				}
				continue
			}
			p.delivered()
			rx.phase = rxHeader
		}
	}
}

// fill reads into the staging buffer, after moving what is unread to its
// front. It returns 0, nil when the socket has nothing.
func (p *peer) fill() (int, error) {
	rx := &p.rx
	if rx.sr == rx.sw {
		rx.sr, rx.sw = 0, 0
	} else if rx.sr > 0 && rx.sw == stageLen {
		rx.sw = copy(rx.stage[:], rx.stage[rx.sr:rx.sw])
		rx.sr = 0
	}
	n, err := p.readInto(rx.stage[rx.sw:])
	rx.sw += n
	return n, err
}

// readInto is one non-blocking read: 0, nil when the socket has nothing,
// io.ErrUnexpectedEOF when the peer closed.
func (p *peer) readInto(b []byte) (int, error) {
	for {
		n, err := unix.Read(p.rx.fd, b)
		switch {
		case err == nil && n > 0:
			return n, nil
		case err == nil:
			return 0, io.ErrUnexpectedEOF
		case err == unix.EAGAIN:
			return 0, nil
		case err == unix.EINTR:
			continue
		default:
			return 0, os.NewSyscallError("read", err)
		}
	}
}

// place decides where the current message's payload goes: its posted
// receive, a new buffer within the unexpected budget, or nowhere yet
// (false: a stall, recorded in p.stalled for the reader goroutine).
func (p *peer) place() bool {
	rx := &p.rx
	p.mu.Lock()
	defer p.mu.Unlock()
	rx.req, rx.dst, rx.unexpected, rx.mismatch = nil, nil, false, nil
	if r := p.popPosted(rx.tag); r != nil {
		rx.req = r
		if rx.size != len(r.buf) {
			rx.mismatch = p.mismatch(rx.tag, rx.size, len(r.buf))
		} else {
			rx.dst = r.buf[:rx.size]
		}
		p.stalled = false
		return true
	}
	if p.unexpBytes+rx.size <= p.maxUnexp || p.lost != nil {
		p.unexpBytes += rx.size
		rx.dst = getBuf(rx.size)
		rx.unexpected = true
		p.stalled = false
		return true
	}
	p.stalled, p.stallTag, p.stallSize, p.stallPosted = true, rx.tag, rx.size, false
	return false
}

// placeable reports whether a stalled message could now be placed; p.mu
// is held.
func (p *peer) placeable() bool {
	return p.stallPosted || p.unexpBytes+p.stallSize <= p.maxUnexp
}

// delivered completes the current message.
func (p *peer) delivered() {
	rx := &p.rx
	r, data := rx.req, rx.dst
	rx.req, rx.dst = nil, nil
	switch {
	case r != nil:
		r.Complete(rx.mismatch)
		rx.mismatch = nil
	case rx.unexpected:
		rx.unexpected = false
		p.mu.Lock()
		if rr := p.popPosted(rx.tag); rr != nil { // posted while we read
			p.unexpBytes -= len(data)
			p.cond.Broadcast()
			p.mu.Unlock()
			err := p.deliver(rx.tag, data, rr.buf)
			putBuf(data)
			rr.Complete(err)
			return
		}
		p.unexpected.Push(rx.tag, message{data: data})
		p.mu.Unlock()
	}
}

// failRx ends the parser after an error: the receive being filled fails
// with the connection's error. p.rxmu is held.
func (p *peer) failRx(err error) {
	if r := p.rx.req; r != nil {
		p.rx.req, p.rx.dst = nil, nil
		r.Complete(err)
	}
}

// readLoop is the peer's reader goroutine: it drives the parser whenever
// the socket is readable and waits out stalls.
func (p *peer) readLoop() {
	defer p.t.wg.Done()
	var st rxStatus
	var rerr error
	f := func(uintptr) bool {
		p.rxmu.Lock()
		_, st, rerr = p.progress()
		if st == rxFailed {
			p.failRx(p.lostError(rerr))
		}
		p.rxmu.Unlock()
		return st != rxAgain
	}
	for {
		err := p.raw.Read(f)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) { // kicked: a poller left a stall
				_ = p.conn.SetReadDeadline(time.Time{})
				if !p.waitStall() {
					return
				}
				continue
			}
			p.fail(p.lostError(err))
			return
		}
		switch st {
		case rxFailed:
			if errors.Is(rerr, io.EOF) {
				rerr = io.ErrUnexpectedEOF
			}
			p.fail(p.lostError(rerr))
			return
		case rxClosed:
			return
		case rxStalled:
			if !p.waitStall() {
				return
			}
		}
	}
}

// waitStall waits until a stalled message can be placed (or there is no
// stall); false when the peer failed.
func (p *peer) waitStall() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.lost == nil && p.stalled && !p.placeable() {
		p.cond.Wait()
	}
	return p.lost == nil
}

// poll is a waiting receiver driving the parser itself: at most
// Options.PollIdle without any byte arriving, at most pollMax in all, and
// no longer than ctx; then it returns and the caller parks. Only one
// goroutine per transport polls at a time (the others park at once), and
// it yields the processor between reads, since ranks share few cores.
func (p *peer) poll(ctx context.Context, r *request) {
	t := p.t
	if t.pollIdle < 0 || !t.polling.CompareAndSwap(false, true) {
		return
	}
	defer t.polling.Store(false)
	start := time.Now()
	idleSince := start
	for {
		if done, _ := r.Test(); done {
			return
		}
		busy := false
		if p.rxmu.TryLock() {
			n, st, err := p.progress()
			if st == rxFailed {
				p.failRx(p.lostError(err))
			}
			p.rxmu.Unlock()
			switch st {
			case rxFailed:
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				p.fail(p.lostError(err))
				return
			case rxClosed:
				return
			case rxStalled:
				// The reader goroutine waits for the receive or room.
				_ = p.conn.SetReadDeadline(time.Unix(1, 0))
				return
			}
			if n > 0 {
				idleSince = time.Now()
				busy = true
			}
		}
		if done, _ := r.Test(); done {
			return
		}
		now := time.Now()
		if now.Sub(idleSince) > t.pollIdle || now.Sub(start) > pollMax || ctx.Err() != nil {
			return
		}
		if writersWaiting.Load() > 0 && now.Sub(start) > DefaultPollIdle {
			// A writer waits for room, woken by the netpoller, which a
			// spinning goroutine on the one thread would keep from running.
			return
		}
		if !busy {
			spin.Idle(now.Sub(idleSince))
		}
	}
}

// DefaultPollIdle bounds how long a waiting receiver polls its socket
// without a byte arriving before it parks (Options.PollIdle).
const DefaultPollIdle = 50 * time.Microsecond

// OneThreadPollIdle is Options.PollIdle's default where the Go runtime
// has one thread (GOMAXPROCS=1, as launched ranks run: stack.LaunchedProcs):
// the poller then keeps no other thread of its process from a core, and
// gives way to the processes sharing its own (spin.Idle). 8 B allreduce,
// 4 launched ranks on 2 cores: 320-490 µs polling 50 µs, 85-125 µs
// polling 2 ms; 16 ranks on 16 cores: 200-320 µs and 67-106 µs.
const OneThreadPollIdle = 2 * time.Millisecond

// pollMax bounds one poll even while bytes keep arriving (for messages
// other than the one waited for, say): after it the reader goroutine
// takes over and the waiter parks.
const pollMax = 2 * time.Millisecond
