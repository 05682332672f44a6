package tcp

import (
	"encoding/binary"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// send starts a send to the peer.
func (p *peer) send(tag Tag, b []byte) *request {
	r := newRequest(tag, b)
	if p.conn == nil {
		p.sendSelf(r)
		return r
	}
	binary.BigEndian.PutUint64(r.hdr[0:8], uint64(tag))
	binary.BigEndian.PutUint64(r.hdr[8:16], uint64(len(b)))
	inline, err := p.sq.Begin(r)
	if err != nil {
		r.Complete(err)
	}
	if !inline {
		return r
	}
	// Inline: one writev that does not wait for socket space; the writer
	// goroutine finishes what the socket did not take.
	p.writeNow(r)
	done := r.off == r.wireLen()
	if err := p.sq.EndInline(r, done); err != nil {
		r.Complete(err)
	} else if done {
		r.Complete(nil)
	}
	return r
}

// writeNow writes as much of r as the socket takes without blocking and
// advances r.off. Errors are left for the writer goroutine to find.
func (p *peer) writeNow(r *request) {
	n := 0
	iov := &p.iov
	iov[0].Base = &r.hdr[0]
	iov[0].SetLen(headerLen)
	cnt := 1
	if len(r.buf) > 0 {
		iov[1].Base = &r.buf[0]
		iov[1].SetLen(len(r.buf))
		cnt = 2
		if pad := padLen(len(r.buf)); pad > 0 {
			iov[2].Base = &zeroPad[0]
			iov[2].SetLen(pad)
			cnt = 3
		}
	}
	_ = p.raw.Write(func(fd uintptr) bool {
		m, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
		if e == 0 {
			n = int(m)
		}
		return true
	})
	iov[0].Base, iov[1].Base, iov[2].Base = nil, nil, nil
	r.off = n
}

// sendSelf matches a send to self with a posted receive, or parks it.
func (p *peer) sendSelf(r *request) {
	p.mu.Lock()
	if p.lost != nil {
		err := p.lost
		p.mu.Unlock()
		r.Complete(err)
		return
	}
	if rr := p.popPosted(r.tag); rr != nil {
		p.mu.Unlock()
		rr.Complete(p.deliver(r.tag, r.buf, rr.buf))
		r.Complete(nil)
		return
	}
	p.unexpected.Push(r.tag, message{send: r})
	p.mu.Unlock()
}

// wireLen is r's length on the wire: header, payload, padding.
func (r *request) wireLen() int { return headerLen + len(r.buf) + padLen(len(r.buf)) }

// writeLoop is the peer's writer goroutine: it writes queued sends,
// several per writev, and completes each as soon as its last byte is in
// the socket (a receiver that gates a receive on a send's completion,
// as the ring allreduce in place does, should not wait for the batch).
func (p *peer) writeLoop() {
	defer p.t.wg.Done()
	batch := make([]*request, 0, writeBatch)
	iov := make([]unix.Iovec, 0, 3*writeBatch)
	var werr error
	i := 0 // batch[i] is the first request not fully written
	waiting := false
	write := func(fd uintptr) bool {
		if waiting { // woken: the socket has room
			waiting = false
			writersWaiting.Add(-1)
		}
		for i < len(batch) {
			iov = iov[:0]
			for _, r := range batch[i:] {
				iov = appendIovecs(iov, r)
			}
			m, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			clear(iov)
			switch e {
			case 0:
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				waiting = true
				writersWaiting.Add(1)
				return false
			default:
				werr = os.NewSyscallError("writev", e)
				return true
			}
			for n := int(m); n > 0 && i < len(batch); {
				r := batch[i]
				k := min(n, r.wireLen()-r.off)
				r.off += k
				n -= k
				if r.off == r.wireLen() {
					r.Complete(nil)
					batch[i] = nil
					i++
				}
			}
		}
		return true
	}
	for {
		var ok bool
		if batch, ok = p.sq.Take(batch[:0], writeBatch); !ok {
			return
		}
		i, werr = 0, nil
		err := p.raw.Write(write)
		if waiting { // the connection failed while the writer waited
			waiting = false
			writersWaiting.Add(-1)
		}
		if err == nil {
			err = werr
		}
		p.sq.Release()
		if err != nil {
			p.fail(p.lostError(err))
			err = p.sq.Err()
			for _, r := range batch[i:] {
				r.Complete(err)
			}
			return
		}
		clear(batch)
	}
}

// appendIovecs appends what is left of r on the wire: header, payload,
// padding from r.off on.
func appendIovecs(iov []unix.Iovec, r *request) []unix.Iovec {
	iov = appendIovec(iov, r.hdr[:], r.off)
	iov = appendIovec(iov, r.buf, r.off-headerLen)
	if pad := padLen(len(r.buf)); pad > 0 {
		iov = appendIovec(iov, zeroPad[:pad], r.off-headerLen-len(r.buf))
	}
	return iov
}

// appendIovec appends b[from:] unless that is empty (from may be
// negative: all of b).
func appendIovec(iov []unix.Iovec, b []byte, from int) []unix.Iovec {
	from = max(from, 0)
	if from >= len(b) {
		return iov
	}
	v := unix.Iovec{Base: &b[from]}
	v.SetLen(len(b) - from)
	return append(iov, v)
}
