package collective

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// call is one operation's validated arguments.
type call struct {
	kind OpKind
	// send and recv are the buffers; in place they alias. Operations that
	// read only (Send) or write only (Recv) use send or recv alone.
	send, recv []byte
	dt         DType
	op         Op
	root       int    // Broadcast, Reduce
	peer       int    // Send, Recv
	tag        uint64 // Send, Recv: the caller's tag
	bytes      int    // the size selection looks at (see bytesOf)
	// posted, for a non-blocking Send/Recv, is closed once its transport
	// request is posted, so that ISend/IRecv return in posting order.
	posted chan struct{}
}

// exec is what an algorithm runs with: the call, where it is, and
// messaging helpers that tag, track and time out its messages. One exec
// serves one operation; its helpers may be used from several goroutines
// the algorithm starts (scratch and wait are safe for that).
type exec struct {
	c *Communicator
	call
	ctx        *opCtx
	t          Transport
	seq        uint64
	rank, size int
	alg        string

	scratch [][]byte  // taken from the communicator (under its scratchMu), returned by release
	held    [4][]byte // scratch's first backing array
}

// xreq is a transport request with the peer it talks to, for diagnostics.
type xreq struct {
	r    Request
	peer int
	recv bool
}

// tag is this operation's tag for step.
func (x *exec) tag(step int) Tag {
	if x.kind.ordered() {
		return collTag(x.seq, step)
	}
	return p2pTag(x.call.tag)
}

// isend starts sending b to peer under step's tag.
func (x *exec) isend(peer, step int, b []byte) (xreq, error) {
	r, err := x.t.Isend(peer, x.tag(step), b)
	x.markPosted()
	if err != nil {
		return xreq{}, x.transportErr(fmt.Errorf("send %d bytes to rank %d: %w", len(b), peer, err))
	}
	return xreq{r: r, peer: peer}, nil
}

// irecv starts receiving from peer under step's tag into b.
func (x *exec) irecv(peer, step int, b []byte) (xreq, error) {
	r, err := x.t.Irecv(peer, x.tag(step), b)
	x.markPosted()
	if err != nil {
		return xreq{}, x.transportErr(fmt.Errorf("receive %d bytes from rank %d: %w", len(b), peer, err))
	}
	return xreq{r: r, peer: peer, recv: true}, nil
}

// markPosted closes posted (once).
func (x *exec) markPosted() {
	if x.posted != nil {
		close(x.posted)
		x.posted = nil
	}
}

// wait waits for every request in order. When the deadline passes it
// fails with ErrTimeout naming the ranks still outstanding; when the
// communicator is aborted, with the abort cause.
func (x *exec) wait(reqs ...xreq) error {
	for i, q := range reqs {
		if q.r == nil {
			continue
		}
		if err := q.r.Wait(x.ctx); err != nil {
			if x.ctx.Err() != nil {
				return x.ctxErr(reqs[i:])
			}
			dir := "send to"
			if q.recv {
				dir = "receive from"
			}
			return x.transportErr(fmt.Errorf("%s rank %d: %w", dir, q.peer, err))
		}
	}
	return nil
}

// sendrecv sends sb to sendPeer and receives rb from recvPeer, both under
// step, and waits for both.
func (x *exec) sendrecv(sendPeer int, sb []byte, recvPeer int, rb []byte, step int) error {
	r, err := x.irecv(recvPeer, step, rb)
	if err != nil {
		return err
	}
	s, err := x.isend(sendPeer, step, sb)
	if err != nil {
		return err
	}
	return x.wait(r, s)
}

// transportErr prefers the abort cause when the communicator was aborted
// (a peer that aborted closes its transport, which shows here as a lost
// peer).
func (x *exec) transportErr(err error) error {
	if cause := x.ctx.Cause(); cause != nil && errors.Is(cause, ErrAborted) {
		return fmt.Errorf("%w (%w)", cause, err)
	}
	return err
}

func (x *exec) ctxErr(pending []xreq) error {
	cause := x.ctx.Cause()
	if errors.Is(cause, context.DeadlineExceeded) {
		var recvs, sends []int
		for _, q := range pending {
			if q.r == nil {
				continue
			}
			if done, _ := q.r.Test(); done {
				continue
			}
			if q.recv {
				recvs = append(recvs, q.peer)
			} else {
				sends = append(sends, q.peer)
			}
		}
		slices.Sort(recvs)
		recvs = slices.Compact(recvs)
		slices.Sort(sends)
		sends = slices.Compact(sends)
		if len(sends) > 0 {
			return fmt.Errorf("ranks %v never arrived (sends to ranks %v unfinished): %w: %w", recvs, sends, ErrTimeout, cause)
		}
		return fmt.Errorf("ranks %v never arrived: %w: %w", recvs, ErrTimeout, cause)
	}
	return cause
}

// buf returns a scratch buffer of n bytes, reused across operations. Its
// contents are undefined.
func (x *exec) buf(n int) []byte {
	c := x.c
	c.scratchMu.Lock()
	defer c.scratchMu.Unlock()
	best := -1
	for i, b := range c.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(c.free[best])) {
			best = i
		}
	}
	var b []byte
	if best >= 0 {
		b = c.free[best][:n]
		c.free = slices.Delete(c.free, best, best+1)
	} else {
		b = make([]byte, n)
	}
	if x.scratch == nil {
		x.scratch = x.held[:0]
	}
	x.scratch = append(x.scratch, b)
	return b
}

// release hands the scratch buffers back; after a failure they are
// dropped, since a transport may still write into them.
func (x *exec) release(ok bool) {
	if !ok {
		x.scratch = nil
		return
	}
	c := x.c
	c.scratchMu.Lock()
	for _, b := range x.scratch {
		if len(c.free) < 8 {
			c.free = append(c.free, b[:0])
		}
	}
	c.scratchMu.Unlock()
	x.scratch = nil
}

// local runs an operation on a single rank: a copy.
func (x *exec) local() error {
	switch x.kind {
	case OpAllReduce, OpReduce, OpReduceScatter, OpAllGather, OpAllToAll, OpBroadcast:
		if x.recv != nil && x.send != nil {
			copy(x.recv, x.send)
		}
		if x.kind == OpAllReduce || x.kind == OpReduce || x.kind == OpReduceScatter {
			if x.recv != nil {
				return Finish(x.recv, x.dt, x.op, 1)
			}
		}
		return nil
	case OpBarrier:
		return nil
	}
	return fmt.Errorf("%v with a single rank: %w", x.kind, ErrInvalidArgument)
}

// reduceCanon sets dst = lo op hi where lo came from the lower rank: an
// order every rank agrees on, so ranks that compute the same element get
// the same bits. dst may alias lo or hi.
func (x *exec) reduceCanon(dst, lo, hi []byte) error {
	return ReduceOut(dst, lo, hi, x.dt, x.op)
}

// aliased reports whether a and b start at the same byte.
func aliased(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}
