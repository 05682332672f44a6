package dataplane

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/internal/spin"
)

// spinCheckEvery is how many empty busy-poll rounds pass between checks of
// the clock (time.Now costs more than a look at the rings); the spinning
// goroutine also gives way there (spin.Idle), so that other goroutines,
// and after a while other processes of its CPU, run.
const spinCheckEvery = 64

// DefaultBusyPollBudget is how long a busy-polling Recv spins on empty rings
// before it parks, when AFXDPOptions.BusyPollBudget is zero.
const DefaultBusyPollBudget = 200 * time.Microsecond

// Recv implements Port. It takes what the rx rings hold; when they are
// empty it spins on them for the busy-poll budget (BusyPoll mode, no system
// call), then parks in the Go netpoller on an epoll set of the sockets and
// Close's eventfd, so that a waiting Recv holds no OS thread or P.
func (p *AFXDPPort) Recv(pkts []Packet) (int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if len(pkts) == 0 {
		return 0, nil
	}
	var deadline, spinFrom time.Time
	spinning := false
	defer func() {
		if spinning {
			spinners.Add(-1)
		}
	}()
	for spins := 0; ; spins++ {
		if p.closed.Load() {
			return 0, ErrClosed
		}
		if n := p.drain(pkts); n > 0 {
			return n, nil
		}
		if p.opts.BusyPoll || p.opts.BusyPollAuto && (spinning || takeSpinSlot()) {
			spinning = !p.opts.BusyPoll
			if spins%spinCheckEvery != 0 {
				continue
			}
			forever := p.opts.BusyPollBudget < 0
			now := time.Now()
			if spinFrom.IsZero() {
				spinFrom = now
				if p.timeout > 0 {
					deadline = now.Add(p.timeout)
				}
			}
			idle := now.Sub(spinFrom)
			if !forever {
				spin.Idle(idle)
			}
			if !deadline.IsZero() && now.After(deadline) {
				return 0, ErrTimeout
			}
			if forever || idle < p.opts.BusyPollBudget {
				continue
			}
		}
		if spinning {
			spinning = false
			spinners.Add(-1)
		}
		if err := p.wait(&deadline); err != nil {
			return 0, err
		}
	}
}

// TryRecv implements Poller: what the rx rings hold, without waiting.
func (p *AFXDPPort) TryRecv(pkts []Packet) (int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	return p.drain(pkts), nil
}

// WaitRecv implements Poller: it parks in the netpoller (never spins)
// until an rx ring has descriptors, the receive timeout passes or the port
// closes.
func (p *AFXDPPort) WaitRecv() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var deadline time.Time
	for {
		if p.closed.Load() {
			return ErrClosed
		}
		for _, q := range p.queues {
			if q.sock.NumReceived() > 0 {
				return nil
			}
		}
		if err := p.wait(&deadline); err != nil {
			return err
		}
	}
}

// TakeSpin implements Poller: always with BusyPoll; with BusyPollAuto
// while this is the process's one such port and nobody else spins on it.
func (p *AFXDPPort) TakeSpin() bool {
	if p.opts.BusyPoll {
		return true
	}
	return p.opts.BusyPollAuto && takeSpinSlot()
}

// DropSpin implements Poller.
func (p *AFXDPPort) DropSpin() {
	if !p.opts.BusyPoll && p.opts.BusyPollAuto {
		spinners.Add(-1)
	}
}

// A goroutine that spins keeps a run queue busy, and the Go scheduler then
// polls the network only from sysmon: in a process with several ports (a
// lab's ranks in one process) the receivers parked in the netpoller wake
// hundreds of microseconds late (2 ranks on 2 cores: an 8 B broadcast
// over RoCEv2 took 5x as long with one of them spinning; 16 ranks on 16
// cores: 8 B allreduce 1.5x). So only a process that holds a single
// busy-polling port (one rank per process, as launchers start them)
// spins; every other Recv parks at once. GOMAXPROCS does not matter: the
// spinning goroutine yields every few polls, and a launched rank spins
// best on one thread (8 B allreduce, 16 launched ranks on 16 cores:
// GOMAXPROCS=1 and spinning 130 µs, parked 290 µs; GOMAXPROCS=16 and
// spinning 1.3 ms, every process's second thread fighting for the cores).
var (
	spinners  atomic.Int32 // Recv calls spinning now
	busyPorts atomic.Int32 // open ports with BusyPollAuto (and not BusyPoll)
	// spinOff: EnvBusyPoll says off, read when a BusyPollAuto port opens.
	spinOff atomic.Bool
)

// EnvBusyPoll overrides the rule of BusyPollAuto ports, read when one
// opens: "off" never spins (a waiter then holds no core; spinners give way
// to the processes sharing theirs after spin.YieldAfter, so even ranks that
// outnumber their cores gain from spinning: 4 launched ranks on 2 cores, 8
// B allreduce 430-540 µs parked, 115-177 µs spinning); anything else keeps
// the rule. With a RoCEv2 engine on the port the spinning goroutine is the
// one waiting for a message, which processes the packets itself
// (rdma.Poller): one thread, no hand-offs (other goroutines of the process
// that wait on sockets are then served only between spins).
const EnvBusyPoll = "ONET_BUSY_POLL"

func noteSpinEnv() { spinOff.Store(os.Getenv(EnvBusyPoll) == "off") }

func takeSpinSlot() bool {
	if busyPorts.Load() != 1 || spinOff.Load() {
		return false
	}
	if spinners.Add(1) <= maxSpinners {
		return true
	}
	spinners.Add(-1)
	return false
}

// maxSpinners bounds the Recv calls of the one BusyPollAuto port that spin
// at once (concurrent Recv calls on one port are rare).
const maxSpinners = 1

// wait parks until a socket or the wake eventfd is readable, or the
// deadline (set from the port's timeout on first use) passes.
func (p *AFXDPPort) wait(deadline *time.Time) error {
	if deadline.IsZero() && p.timeout > 0 {
		*deadline = time.Now().Add(p.timeout)
	}
	if err := p.epFile.SetReadDeadline(*deadline); err != nil {
		return fmt.Errorf("af_xdp: set receive deadline: %w", err)
	}
	err := p.epConn.Read(p.readyFn)
	switch {
	case err == nil:
		return nil
	case p.closed.Load():
		return ErrClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	}
	return fmt.Errorf("af_xdp: wait for rx rings of %s: %w", p.opts.Ifname, err)
}

// ready is called by the netpoller with the epoll fd: it consumes the
// pending events and says whether there is anything to look at.
func (p *AFXDPPort) ready(fd uintptr) bool {
	n, _ := unix.EpollWait(int(fd), p.events[:], 0)
	return n > 0 || p.closed.Load()
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
			q.noteRx(0)
			continue
		}
		seen := avail
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
		q.noteRx(seen)
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
