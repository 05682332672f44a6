//go:build linux

package dataplane

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// udpTx is the Send goroutine's preallocated state: one message header,
// address and control buffer per message, one iovec per packet (a segmented
// message gathers several packets' buffers, so payloads are never copied).
type udpTx struct {
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names [][sockaddrLen]byte
	oob   []byte
	// Per message: how many packets it carries and their payload bytes.
	npkts  []int
	nbytes []int

	// sendFn is p.sendOnFD, bound once so that RawConn.Write does not
	// allocate; it sends msgs[from:to] and leaves the result in sent/errno.
	sendFn   func(fd uintptr) bool
	from, to int
	sent     int
	errno    unix.Errno
}

func (t *udpTx) init(batch int) {
	t.msgs = make([]unix.Mmsghdr, batch)
	t.iovs = make([]unix.Iovec, batch)
	t.names = make([][sockaddrLen]byte, batch)
	t.oob = make([]byte, batch*txOOBLen)
	t.npkts = make([]int, batch)
	t.nbytes = make([]int, batch)
}

func (p *UDPPort) sendOnFD(fd uintptr) bool {
	t := &p.tx
	for {
		n, errno := sendmmsg(fd, t.msgs[t.from:t.to])
		if errno == unix.EINTR {
			continue
		}
		t.sent, t.errno = n, errno
		return true // never wait for writability: a full queue ends Send
	}
}

// Send transmits pkts in sendmmsg batches, coalescing runs of equal-size
// datagrams to one destination into UDP_SEGMENT sends when GSO is on. It
// returns early, without error, when the socket buffer is full.
func (p *UDPPort) Send(pkts []Packet) (int, error) {
	if p.closed.Load() {
		return 0, ErrClosed
	}
	done := 0
	for done < len(pkts) {
		consumed, nmsgs, buildErr := p.buildTx(pkts[done:])
		if nmsgs > 0 {
			accepted, retry, err := p.flushTx(pkts[done:], nmsgs)
			done += accepted
			if err != nil {
				return done, err
			}
			if retry {
				continue // GSO was just turned off: rebuild from done
			}
			if accepted < consumed {
				return done, nil // socket buffer full: caller retries the rest
			}
		}
		if buildErr != nil {
			return done, buildErr
		}
	}
	return done, nil
}

// buildTx fills the message arrays from the head of pkts. It returns how many
// packets the messages hold, how many messages it built, and the error of the
// first packet it could not take (pkts[consumed]).
func (p *UDPPort) buildTx(pkts []Packet) (consumed, nmsgs int, err error) {
	t := &p.tx
	gso := p.gso.Load()
	i := 0
	for i < len(pkts) && i < p.batch {
		first := &pkts[i]
		size := len(first.Buf)
		if size > p.maxPay {
			return i, nmsgs, ErrTooBig
		}
		name := &t.names[nmsgs]
		namelen := putSockaddr(name, p.family, first.Addr)
		if namelen == 0 || first.Addr.Port() == 0 {
			return i, nmsgs, fmt.Errorf("udp port %v: send to %v: %w", p.local, first.Addr, ErrNoRoute)
		}
		// Gather a run: same destination and TOS, all of the first one's
		// size except a shorter last one.
		count, total := 1, size
		if gso && size > 0 {
			for i+count < len(pkts) && count < maxGSOSegments && i+count < p.batch {
				q := &pkts[i+count]
				l := len(q.Buf)
				if l == 0 || l > size || q.Addr != first.Addr || q.TOS != first.TOS || total+l > maxGSOBytes {
					break
				}
				count++
				total += l
				if l < size {
					break
				}
			}
		}
		for k := 0; k < count; k++ {
			iov := &t.iovs[i+k]
			b := pkts[i+k].Buf
			if len(b) > 0 {
				iov.Base = &b[0]
			} else {
				iov.Base = nil
			}
			iov.SetLen(len(b))
		}
		oob := t.oob[nmsgs*txOOBLen : (nmsgs+1)*txOOBLen]
		oobLen := 0
		if first.TOS != 0 {
			if p.family == unix.AF_INET {
				oobLen += putCmsgInt(oob[oobLen:], unix.IPPROTO_IP, unix.IP_TOS, uint32(first.TOS))
			} else {
				oobLen += putCmsgInt(oob[oobLen:], unix.IPPROTO_IPV6, unix.IPV6_TCLASS, uint32(first.TOS))
			}
		}
		if count > 1 {
			oobLen += putCmsgUint16(oob[oobLen:], unix.SOL_UDP, unix.UDP_SEGMENT, uint16(size))
		}
		h := &t.msgs[nmsgs].Hdr
		h.Name = &name[0]
		h.Namelen = namelen
		h.Iov = &t.iovs[i]
		h.SetIovlen(count)
		if oobLen > 0 {
			h.Control = &oob[0]
		} else {
			h.Control = nil
		}
		h.SetControllen(oobLen)
		h.Flags = 0
		t.npkts[nmsgs] = count
		t.nbytes[nmsgs] = total
		nmsgs++
		i += count
	}
	return i, nmsgs, nil
}

// flushTx sends the nmsgs built messages. It returns how many of pkts were
// accepted, whether the caller must rebuild (GSO turned off), and an error
// that retrying will not clear.
func (p *UDPPort) flushTx(pkts []Packet, nmsgs int) (accepted int, retry bool, err error) {
	t := &p.tx
	var txPkts, txBytes, dropped uint64
	defer func() {
		// Do not keep the caller's buffers reachable after Send returns.
		for k := range t.iovs[:min(len(pkts), p.batch)] {
			t.iovs[k].Base = nil
		}
		p.stats.TxPackets.Add(txPkts)
		p.stats.TxBytes.Add(txBytes)
		if dropped > 0 {
			p.stats.TxDropped.Add(dropped)
		}
	}()
	m := 0
	for m < nmsgs {
		t.from, t.to = m, nmsgs
		if werr := p.rc.Write(t.sendFn); werr != nil {
			return accepted, false, mapConnErr(werr)
		}
		if t.errno == 0 {
			for k := m; k < m+t.sent; k++ {
				accepted += t.npkts[k]
				txPkts += uint64(t.npkts[k])
				txBytes += uint64(t.nbytes[k])
			}
			m += t.sent
			continue
		}
		// msgs[m] failed.
		switch t.errno {
		case unix.EAGAIN, unix.ENOBUFS:
			return accepted, false, nil
		case unix.ENETUNREACH, unix.EHOSTUNREACH, unix.EADDRNOTAVAIL, unix.EAFNOSUPPORT:
			return accepted, false, fmt.Errorf("udp port %v: send to %v: %w (%w)", p.local, pkts[accepted].Addr, ErrNoRoute, t.errno)
		case unix.EBADF:
			return accepted, false, ErrClosed
		case unix.EIO, unix.EINVAL, unix.EMSGSIZE:
			if t.npkts[m] > 1 {
				// The kernel or the device refuses segmentation offload for
				// this message (no checksum offload, path MTU below the
				// segment size): stop using it and resend the rest plainly.
				p.gso.Store(false)
				return accepted, true, nil
			}
		}
		// Any other failure loses this message as a lossy wire would.
		accepted += t.npkts[m]
		dropped += uint64(t.npkts[m])
		m++
	}
	return accepted, false, nil
}
