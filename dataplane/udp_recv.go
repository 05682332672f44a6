//go:build linux

package dataplane

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// udpRx is the Recv goroutine's preallocated state. recvmmsg fills port-owned
// 64 KiB slots (any datagram, coalesced by GRO or not, fits one), and Recv
// copies datagrams or GRO segments out to the caller's packets. What the
// caller has no room for stays here for the next Recv.
type udpRx struct {
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names [][sockaddrLen]byte
	oob   []byte
	bufs  []byte

	// recvFn is p.recvOnFD, bound once so that RawConn.Read does not
	// allocate; it leaves its result in count/errno.
	recvFn func(fd uintptr) bool
	errno  unix.Errno

	// Messages received and not yet fully delivered: msgs[next:count], the
	// current one from byte segOff on.
	count  int
	next   int
	segOff int
	meta   rxMeta // of msgs[next], valid when parsed
	parsed bool

	groSplits uint64 // coalesced datagrams split (for tests)
}

func (r *udpRx) init(batch int) {
	r.msgs = make([]unix.Mmsghdr, batch)
	r.iovs = make([]unix.Iovec, batch)
	r.names = make([][sockaddrLen]byte, batch)
	r.oob = make([]byte, batch*rxOOBLen)
	r.bufs = make([]byte, batch*rxSlotStride)
	for i := range r.msgs {
		r.iovs[i].Base = &r.bufs[i*rxSlotStride]
		r.iovs[i].SetLen(rxSlotSize)
		h := &r.msgs[i].Hdr
		h.Name = &r.names[i][0]
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.oob[i*rxOOBLen]
	}
}

func (p *UDPPort) recvOnFD(fd uintptr) bool {
	r := &p.rx
	for i := range r.msgs {
		h := &r.msgs[i].Hdr
		h.Namelen = sockaddrLen
		h.SetControllen(rxOOBLen)
		h.Flags = 0
	}
	for {
		n, errno := recvmmsg(fd, r.msgs)
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // park in the netpoller until readable
		}
		r.count, r.errno = n, errno
		if errno != 0 {
			r.count = 0
		}
		r.next, r.segOff, r.parsed = 0, 0, false
		return true
	}
}

// Recv waits for datagrams and fills up to len(pkts) of them.
func (p *UDPPort) Recv(pkts []Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	r := &p.rx
	deadlineSet := false
	for {
		if p.closed.Load() {
			return 0, ErrClosed
		}
		if r.next < r.count {
			if n := p.deliver(pkts); n > 0 {
				return n, nil
			}
			continue // everything pending was too long for the caller
		}
		if p.timeout > 0 && !deadlineSet {
			if err := p.conn.SetReadDeadline(time.Now().Add(p.timeout)); err != nil {
				return 0, mapConnErr(err)
			}
			deadlineSet = true
		}
		if err := p.rc.Read(r.recvFn); err != nil {
			return 0, mapConnErr(err)
		}
		if r.errno != 0 {
			if r.errno == unix.EBADF {
				return 0, ErrClosed
			}
			return 0, fmt.Errorf("udp port %v: recvmmsg: %w", p.local, r.errno)
		}
	}
}

// deliver copies pending datagrams (GRO segments one by one) into pkts and
// returns how many it filled.
func (p *UDPPort) deliver(pkts []Packet) int {
	r := &p.rx
	n := 0
	var rxBytes, rxCE, truncated uint64
	for n < len(pkts) && r.next < r.count {
		i := r.next
		h := &r.msgs[i]
		if !r.parsed {
			r.meta = parseRxCmsgs(r.oob[i*rxOOBLen : i*rxOOBLen+int(h.Hdr.Controllen)])
			r.parsed = true
			if r.meta.gsoSize > 0 && int(h.Len) > r.meta.gsoSize {
				r.groSplits++
			}
		}
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			// Cannot happen with 64 KiB slots, but never deliver a short one.
			truncated++
			r.advance()
			continue
		}
		length := int(h.Len)
		seg := length - r.segOff
		if g := r.meta.gsoSize; g > 0 && seg > g {
			seg = g
		}
		off := i*rxSlotStride + r.segOff
		data := r.bufs[off : off+seg]
		r.segOff += seg
		if r.segOff >= length {
			r.advance()
		}
		pkt := &pkts[n]
		if seg > cap(pkt.Buf) {
			truncated++
			continue
		}
		pkt.Buf = pkt.Buf[:seg]
		copy(pkt.Buf, data)
		pkt.Addr = getSockaddr(&r.names[i], h.Hdr.Namelen)
		pkt.TOS = r.meta.tos
		rxBytes += uint64(seg)
		if pkt.TOS&ECNMask == ECNCE {
			rxCE++
		}
		n++
	}
	if n > 0 {
		p.stats.RxPackets.Add(uint64(n))
		p.stats.RxBytes.Add(rxBytes)
	}
	if rxCE > 0 {
		p.stats.RxCE.Add(rxCE)
	}
	if truncated > 0 {
		p.stats.RxTruncated.Add(truncated)
	}
	return n
}

// advance moves to the next pending message.
func (r *udpRx) advance() {
	r.next++
	r.segOff = 0
	r.parsed = false
}
