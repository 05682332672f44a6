package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/internal/nsenter"
)

// LocalAddr implements Port.
func (p *AFXDPPort) LocalAddr() netip.AddrPort { return p.local }

// MaxPayload implements Port.
func (p *AFXDPPort) MaxPayload() int { return p.maxPayload }

// Caps implements Port.
func (p *AFXDPPort) Caps() Caps { return p.caps }

// Stats implements Port.
func (p *AFXDPPort) Stats() *PortStats { return &p.stats }

// Dispatcher is the XDP dispatcher feeding this port, for its counters,
// flows and fault injection. It is closed with the port.
func (p *AFXDPPort) Dispatcher() *bpf.Dispatcher { return p.disp }

// XDPStats sums the kernel's XDP_STATISTICS over the port's sockets: frames
// dropped for want of rx ring or fill ring space, and invalid descriptors.
func (p *AFXDPPort) XDPStats() (unix.XDPStatistics, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var sum unix.XDPStatistics
	if p.closed.Load() {
		return sum, ErrClosed
	}
	for _, q := range p.queues {
		st, err := q.sock.Stats()
		if err != nil {
			return sum, fmt.Errorf("af_xdp: statistics of queue %d: %w", q.queue, err)
		}
		k := st.KernelStats
		sum.Rx_dropped += k.Rx_dropped
		sum.Rx_invalid_descs += k.Rx_invalid_descs
		sum.Tx_invalid_descs += k.Tx_invalid_descs
		sum.Rx_ring_full += k.Rx_ring_full
		sum.Rx_fill_ring_empty_descs += k.Rx_fill_ring_empty_descs
		sum.Tx_ring_empty_descs += k.Tx_ring_empty_descs
	}
	return sum, nil
}

// AddPeer resolves dst's next hop now, so that the first Send to it does not
// wait for ARP or neighbour discovery. It writes the Send goroutine's peer
// table: call it from that goroutine, or before Send is first called.
func (p *AFXDPPort) AddPeer(dst netip.Addr) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, err := p.peer(dst)
	return err
}

// resolvePeer resolves dst's next hop in the interface's namespace and
// caches the frame template. It must run on the Send goroutine.
func (p *AFXDPPort) resolvePeer(dst netip.Addr) (*FrameSpec, error) {
	if dst.Is4() != p.local.Addr().Is4() {
		return nil, fmt.Errorf("af_xdp: destination %v is not of the local address family (%v): %w", dst, p.local.Addr(), ErrNoRoute)
	}
	var nh NextHop
	err := nsenter.Do(p.ns, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), p.opts.ResolveTimeout)
		defer cancel()
		var err error
		nh, err = ResolveNextHop(ctx, dst)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("af_xdp: resolve %v: %w", dst, err)
	}
	if nh.Ifindex != p.ifindex {
		return nil, fmt.Errorf("af_xdp: %v is reached through %s, not %s: %w", dst, nh.Ifname, p.opts.Ifname, ErrNoRoute)
	}
	s := &FrameSpec{
		SrcMAC: nh.SrcMAC,
		DstMAC: nh.DstMAC,
		Src:    p.local,
		Dst:    netip.AddrPortFrom(dst, 0),
		// RoCEv2 over IPv4 sends UDP checksum 0 (the ICRC protects it).
		NoUDPChecksum: p.opts.NoUDPChecksum && dst.Is4(),
	}
	p.peers[dst] = s
	return s, nil
}

// Close detaches the dispatcher, closes the sockets and frees the UMEM. It
// waits for a Send or Recv in progress to return (Recv is woken at once).
func (p *AFXDPPort) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	if p.opts.BusyPollAuto && !p.opts.BusyPoll {
		busyPorts.Add(-1)
	}
	if p.wakeFD >= 0 {
		var one = [8]byte{1}
		_, _ = unix.Write(p.wakeFD, one[:])
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.teardown()
}

// teardown releases everything NewAFXDPPort acquired, in reverse order.
func (p *AFXDPPort) teardown() error {
	var errs []error
	if p.disp != nil {
		for _, q := range p.queues {
			_ = p.disp.UnregisterSocket(q.queue)
		}
		if err := p.disp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("af_xdp: detach dispatcher: %w", err))
		}
		p.disp = nil
	}
	for _, q := range p.queues {
		if err := q.close(); err != nil {
			errs = append(errs, fmt.Errorf("af_xdp: close socket of queue %d: %w", q.queue, err))
		}
	}
	p.queues = nil
	if p.ns.IsOpen() {
		p.ns.Close()
	}
	if p.epFile != nil {
		p.epFile.Close()
		p.epFile = nil
	}
	if p.wakeFD >= 0 {
		unix.Close(p.wakeFD)
		p.wakeFD = -1
	}
	return errors.Join(errs...)
}
