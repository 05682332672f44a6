package dataplane

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// spinCheckEvery is how many empty busy-poll rounds pass between checks of
// the clock (time.Now costs more than a look at the rings).
const spinCheckEvery = 256

// Recv implements Port. In busy-poll mode it spins on the rx rings; otherwise
// it sleeps in poll(2) on the sockets and Close's eventfd.
func (p *AFXDPPort) Recv(pkts []Packet) (int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if len(pkts) == 0 {
		return 0, nil
	}
	var deadline time.Time
	if p.timeout > 0 {
		deadline = time.Now().Add(p.timeout)
	}
	for spins := 0; ; spins++ {
		if p.closed.Load() {
			return 0, ErrClosed
		}
		if n := p.drain(pkts); n > 0 {
			return n, nil
		}
		if p.opts.BusyPoll {
			if spins%spinCheckEvery == 0 && !deadline.IsZero() && time.Now().After(deadline) {
				return 0, ErrTimeout
			}
			continue
		}
		ms := -1
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return 0, ErrTimeout
			}
			ms = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		if _, err := unix.Poll(p.pollFDs, ms); err != nil && err != unix.EINTR {
			return 0, fmt.Errorf("af_xdp: poll rx rings of %s: %w", p.opts.Ifname, err)
		}
	}
}

// drain takes what the rx rings hold, round-robin across queues, into pkts,
// and gives the frames straight back to the fill rings.
func (p *AFXDPPort) drain(pkts []Packet) int {
	got := 0
	nq := len(p.queues)
	for i := 0; i < nq && got < len(pkts); i++ {
		q := p.queues[(p.next+i)%nq]
		avail := q.sock.NumReceived()
		if avail == 0 {
			continue
		}
		if avail > len(pkts)-got {
			avail = len(pkts) - got
		}
		descs := q.sock.Receive(avail)
		for _, d := range descs {
			if p.deliver(q.sock.GetFrame(d), &pkts[got]) {
				got++
			}
		}
		q.sock.Fill(descs)
	}
	p.next++
	return got
}

// deliver parses one frame into pk; false when the frame was dropped (and
// counted).
func (p *AFXDPPort) deliver(frame []byte, pk *Packet) bool {
	f := &p.frame
	if err := ParseUDPFrame(frame, f); err != nil {
		p.stats.RxDropped.Add(1)
		return false
	}
	if f.Dst.Port() != p.local.Port() || f.Dst.Addr() != p.local.Addr() {
		p.stats.RxDropped.Add(1)
		return false
	}
	if f.PayloadLen > cap(pk.Buf) {
		p.stats.RxTruncated.Add(1)
		return false
	}
	pk.Buf = pk.Buf[:f.PayloadLen]
	copy(pk.Buf, frame[f.PayloadOff:f.PayloadOff+f.PayloadLen])
	pk.Addr = f.Src
	pk.TOS = f.TOS
	pk.IPID = f.IPID
	pk.SrcPort = 0
	p.stats.RxPackets.Add(1)
	p.stats.RxBytes.Add(uint64(f.PayloadLen))
	if f.TOS&ECNMask == ECNCE {
		p.stats.RxCE.Add(1)
	}
	return true
}

// SetRecvTimeout implements Port.
func (p *AFXDPPort) SetRecvTimeout(d time.Duration) { p.timeout = d }
