package porttest

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
)

// PollPort is a Port that is also a dataplane.Poller, so that tests reach
// the run-to-completion paths of its users (a waiter polling the rings)
// without an AF_XDP socket. Spinning is allowed unless SetSpin(false);
// SendCalls counts Send calls, so a test can tell how many packets went
// per call (per system call, on a real port).
type PollPort struct {
	*Port
	noSpin    atomic.Bool
	sendCalls atomic.Uint64
}

var _ dataplane.Poller = (*PollPort)(nil)

// NewPollPort is NewPort for a PollPort.
func (n *Network) NewPollPort(addr netip.AddrPort) (*PollPort, error) {
	p, err := n.NewPort(addr)
	if err != nil {
		return nil, err
	}
	return &PollPort{Port: p}, nil
}

// Send is Port.Send, counted.
func (p *PollPort) Send(pkts []dataplane.Packet) (int, error) {
	p.sendCalls.Add(1)
	return p.Port.Send(pkts)
}

// SendCalls reports how many times Send was called.
func (p *PollPort) SendCalls() uint64 { return p.sendCalls.Load() }

// TryRecv takes what is queued without waiting.
func (p *PollPort) TryRecv(pkts []dataplane.Packet) (int, error) {
	if p.closed.Load() {
		return 0, dataplane.ErrClosed
	}
	return p.drain(pkts), nil
}

// WaitRecv waits until datagrams are queued (it takes none), the receive
// timeout passes (dataplane.ErrTimeout) or the port closes.
func (p *PollPort) WaitRecv() error {
	var expired <-chan time.Time
	if p.timeout > 0 {
		t := time.NewTimer(p.timeout)
		defer t.Stop()
		expired = t.C
	}
	for {
		if p.closed.Load() {
			return dataplane.ErrClosed
		}
		if p.Queued() > 0 {
			return nil
		}
		select {
		case <-p.notify:
		case <-p.done:
			return dataplane.ErrClosed
		case <-expired:
			return dataplane.ErrTimeout
		}
	}
}

// SetSpin decides what TakeSpin answers (true at first).
func (p *PollPort) SetSpin(on bool) { p.noSpin.Store(!on) }

// TakeSpin reports whether the caller may spin on the port.
func (p *PollPort) TakeSpin() bool { return !p.noSpin.Load() }

// DropSpin gives back what TakeSpin granted (nothing to do here).
func (p *PollPort) DropSpin() {}
