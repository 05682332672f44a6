package porttest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/opennetworks/onetdp/dataplane"
)

// NetworkOptions configure NewNetwork. Zero values pick the defaults.
type NetworkOptions struct {
	// MTU bounds datagrams: a port's MaxPayload is MTU minus 28 (IPv4) or
	// 48 (IPv6) bytes of headers. Default 1500.
	MTU int
	// LossPPM is the probability, in parts per million, that the network
	// drops a datagram.
	LossPPM uint32
	// CEMarkPPM is the probability, in parts per million, that a delivered
	// ECN-capable (ECT(0) or ECT(1)) datagram arrives CE-marked. Not-ECT
	// datagrams are never marked.
	CEMarkPPM uint32
	// QueueLen is each port's receive queue length in datagrams; default 1024.
	QueueLen int
	// Seed drives the loss and marking draws: one sender with the same seed
	// sees the same pattern every run.
	Seed int64
}

// NetworkStats count what happened to every datagram a Port accepted for
// sending. The network updates them from the senders' goroutines; read them
// with atomic loads at any time.
type NetworkStats struct {
	Sent       atomic.Uint64 // datagrams accepted by some port's Send
	Delivered  atomic.Uint64 // queued at their destination port
	Lost       atomic.Uint64 // dropped by the random loss draw
	QueueFull  atomic.Uint64 // dropped because the destination queue was full
	NoListener atomic.Uint64 // no open port at the destination address
	CEMarked   atomic.Uint64 // delivered with CE set by the network
}

// ErrAddrInUse is returned by NewPort for an address another open port has.
var ErrAddrInUse = errors.New("porttest: address already in use")

const (
	defaultMTU      = 1500
	defaultQueueLen = 1024
	ipv4Overhead    = 28
	ipv6Overhead    = 48
	firstEphemeral  = 32768
	ppmScale        = 1_000_000
)

// Network is an in-memory datagram network. All methods are safe for
// concurrent use.
type Network struct {
	mtu      int
	queueLen int
	stats    NetworkStats

	mu            sync.Mutex // guards everything below
	rng           *rand.Rand
	lossPPM       uint32
	cePPM         uint32
	ports         map[netip.AddrPort]*Port
	nextEphemeral uint32
}

// NewNetwork returns an empty network.
func NewNetwork(opts NetworkOptions) *Network {
	if opts.MTU <= 0 {
		opts.MTU = defaultMTU
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = defaultQueueLen
	}
	return &Network{
		mtu:           opts.MTU,
		queueLen:      opts.QueueLen,
		rng:           newRNG(opts.Seed),
		lossPPM:       opts.LossPPM,
		cePPM:         opts.CEMarkPPM,
		ports:         make(map[netip.AddrPort]*Port),
		nextEphemeral: firstEphemeral,
	}
}

// newRNG is the generator behind the loss and marking draws.
func newRNG(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x6f6e657464700000))
}

// roll draws once from rng unless ppm makes the answer certain.
func roll(rng *rand.Rand, ppm uint32) bool {
	switch {
	case ppm == 0:
		return false
	case ppm >= ppmScale:
		return true
	}
	return rng.Uint32N(ppmScale) < ppm
}

// SetLoss changes the loss probability (parts per million).
func (n *Network) SetLoss(ppm uint32) {
	n.mu.Lock()
	n.lossPPM = ppm
	n.mu.Unlock()
}

// SetCEMark changes the CE-marking probability for ECT datagrams (parts per
// million).
func (n *Network) SetCEMark(ppm uint32) {
	n.mu.Lock()
	n.cePPM = ppm
	n.mu.Unlock()
}

// Stats returns the live network counters.
func (n *Network) Stats() *NetworkStats { return &n.stats }

// NewPort opens a port at addr (port 0 picks a free one from 32768 up).
// IPv4-mapped IPv6 addresses are treated as IPv4.
func (n *Network) NewPort(addr netip.AddrPort) (*Port, error) {
	if !addr.Addr().IsValid() {
		return nil, fmt.Errorf("porttest: new port at %v: invalid address", addr)
	}
	a := addr.Addr().Unmap()
	maxPay := n.mtu - ipv4Overhead
	if a.Is6() {
		maxPay = n.mtu - ipv6Overhead
	}
	if maxPay <= 0 {
		return nil, fmt.Errorf("porttest: new port at %v: mtu %d leaves no payload", addr, n.mtu)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	local := netip.AddrPortFrom(a, addr.Port())
	if addr.Port() == 0 {
		found := false
		for range 1 << 16 {
			p := n.nextEphemeral
			n.nextEphemeral++
			if n.nextEphemeral > 0xffff {
				n.nextEphemeral = firstEphemeral
			}
			local = netip.AddrPortFrom(a, uint16(p))
			if n.ports[local] == nil {
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("porttest: new port at %v: no free port", addr)
		}
	} else if n.ports[local] != nil {
		return nil, fmt.Errorf("porttest: new port at %v: %w", local, ErrAddrInUse)
	}
	p := newPort(n, local, maxPay)
	n.ports[local] = p
	return p, nil
}

// route looks up dst and draws the datagram's fate under the network lock.
func (n *Network) route(dst netip.AddrPort, tos uint8) (to *Port, lost, markCE bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if roll(n.rng, n.lossPPM) {
		return nil, true, false
	}
	if ecn := tos & dataplane.ECNMask; ecn == dataplane.ECNECT0 || ecn == dataplane.ECNECT1 {
		markCE = roll(n.rng, n.cePPM)
	}
	return n.ports[dst], false, markCE
}

func (n *Network) remove(p *Port) {
	n.mu.Lock()
	if n.ports[p.addr] == p {
		delete(n.ports, p.addr)
	}
	n.mu.Unlock()
}
