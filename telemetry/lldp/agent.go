package lldp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often an Agent sends its LLDPDU (802.1AB
// msgTxInterval).
const DefaultInterval = 30 * time.Second

// txHold is 802.1AB's msgTxHold: TTL = interval × txHold.
const txHold = 4

// ErrClosed is returned by operations on a closed Agent.
var ErrClosed = errors.New("lldp agent closed")

// AgentOptions configure NewAgent. Owned by the caller; NewAgent copies
// what it keeps.
type AgentOptions struct {
	// Interfaces are the names of the interfaces to run LLDP on, in the
	// network namespace current when NewAgent runs. Required.
	Interfaces []string
	// Interval between LLDPDUs; the first goes out at start. Default
	// DefaultInterval.
	Interval time.Duration
	// TTL advertised; default 4 × Interval, rounded up to whole seconds,
	// capped at 65535 s.
	TTL time.Duration
	// SystemName; default the host name.
	SystemName string
	// SystemDescription; default "onetdp".
	SystemDescription string
	// ChassisID; default the MAC of the first interface (subtype MAC).
	ChassisID ID
	// ManagementAddresses advertised on every interface; default each
	// interface's own first global IPv4 and IPv6 address (read at
	// NewAgent), if any.
	ManagementAddresses []netip.Addr
	// Capabilities advertised (system and enabled); default CapStation.
	Capabilities uint16
	// ReceiveOnly disables sending.
	ReceiveOnly bool
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// AgentStats are the agent's counters, updated with atomics by its
// goroutines; read them from any goroutine.
type AgentStats struct {
	// Sent counts LLDPDUs sent.
	Sent atomic.Uint64
	// SendErrors counts failed sends.
	SendErrors atomic.Uint64
	// Received counts valid LLDPDUs received.
	Received atomic.Uint64
	// Malformed counts frames dropped because they did not decode.
	Malformed atomic.Uint64
	// Expired counts neighbours removed after their TTL ran out, or by a
	// shutdown LLDPDU (TTL 0).
	Expired atomic.Uint64
}

// Neighbor is one remote LLDP agent heard on a local interface. A value
// returned by Neighbors is a copy the caller owns.
type Neighbor struct {
	Ifindex int    `json:"ifindex"`
	Ifname  string `json:"ifname"`
	// SrcMAC is the source MAC of the last frame.
	SrcMAC    string `json:"src_mac"`
	ChassisID string `json:"chassis_id"`
	PortID    string `json:"port_id"`
	// PDU is the last LLDPDU received.
	PDU       LLDPDU    `json:"pdu"`
	LastSeen  time.Time `json:"last_seen"`
	ExpiresAt time.Time `json:"expires_at"`
}

type neighborKey struct {
	ifindex       int
	chassis, port string
}

// Agent sends our LLDPDU on its interfaces every interval and keeps the
// table of neighbours heard on them. Its methods are safe for concurrent
// use.
type Agent struct {
	opts  AgentOptions
	conns []*packetConn
	stats AgentStats

	mu        sync.Mutex
	neighbors map[neighborKey]*Neighbor

	closing chan struct{}
	closed  atomic.Bool
	wg      sync.WaitGroup
}

// NewAgent opens the interfaces' sockets, sends the first LLDPDU on each
// and starts the send and receive goroutines. It needs CAP_NET_RAW.
func NewAgent(opts AgentOptions) (*Agent, error) {
	if len(opts.Interfaces) == 0 {
		return nil, errors.New("lldp agent: no interfaces")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.TTL <= 0 {
		opts.TTL = txHold * opts.Interval
	}
	// TTL goes on the wire in whole seconds: round up, so that a short
	// interval never advertises 0 (which means shutdown).
	opts.TTL = (opts.TTL + time.Second - 1).Truncate(time.Second)
	if opts.TTL > 65535*time.Second {
		opts.TTL = 65535 * time.Second
	}
	if opts.SystemName == "" {
		opts.SystemName, _ = os.Hostname()
	}
	if opts.SystemDescription == "" {
		opts.SystemDescription = "onetdp"
	}
	if opts.Capabilities == 0 {
		opts.Capabilities = CapStation
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Agent{opts: opts, neighbors: map[neighborKey]*Neighbor{}, closing: make(chan struct{})}
	for _, name := range opts.Interfaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			a.closeConns()
			return nil, fmt.Errorf("lldp agent on %s: %w", name, err)
		}
		if len(ifi.HardwareAddr) != 6 {
			a.closeConns()
			return nil, fmt.Errorf("lldp agent: %s has no ethernet address", name)
		}
		c, err := openPacketConn(ifi)
		if err != nil {
			a.closeConns()
			return nil, err
		}
		c.mgmt = opts.ManagementAddresses
		if len(c.mgmt) == 0 {
			c.mgmt = interfaceAddrs(ifi)
		}
		a.conns = append(a.conns, c)
	}
	if len(a.opts.ChassisID.Value) == 0 {
		a.opts.ChassisID = MACID(ChassisMAC, a.conns[0].mac)
	}
	// Check the PDU encodes before starting anything.
	if _, err := a.pdu(a.conns[0], uint16(a.opts.TTL/time.Second)).Encode(); err != nil {
		a.closeConns()
		return nil, fmt.Errorf("lldp agent: %w", err)
	}
	for _, c := range a.conns {
		a.wg.Add(1)
		go a.receive(c)
	}
	if !opts.ReceiveOnly {
		a.sendAll(uint16(a.opts.TTL / time.Second))
		a.wg.Add(1)
		go a.sendLoop()
	}
	return a, nil
}

// pdu builds the LLDPDU we send on c.
func (a *Agent) pdu(c *packetConn, ttl uint16) *LLDPDU {
	p := &LLDPDU{
		ChassisID:           a.opts.ChassisID,
		PortID:              TextID(PortIfName, c.ifname),
		TTL:                 ttl,
		PortDescription:     c.ifname,
		SystemName:          a.opts.SystemName,
		SystemDescription:   a.opts.SystemDescription,
		HasCapabilities:     true,
		Capabilities:        a.opts.Capabilities,
		EnabledCapabilities: a.opts.Capabilities,
	}
	for _, m := range c.mgmt {
		p.ManagementAddresses = append(p.ManagementAddresses, IPManagementAddress(m, c.ifindex))
	}
	return p
}

func (a *Agent) sendAll(ttl uint16) {
	for _, c := range a.conns {
		frame, err := AppendFrame(nil, c.mac, a.pdu(c, ttl))
		if err == nil {
			err = c.send(frame)
		}
		if err != nil {
			a.stats.SendErrors.Add(1)
			continue
		}
		a.stats.Sent.Add(1)
	}
}

func (a *Agent) sendLoop() {
	defer a.wg.Done()
	t := time.NewTicker(a.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-a.closing:
			return
		case <-t.C:
			a.sendAll(uint16(a.opts.TTL / time.Second))
			a.expire()
		}
	}
}

func (a *Agent) receive(c *packetConn) {
	defer a.wg.Done()
	buf := make([]byte, 9216)
	for {
		n, err := c.recv(buf)
		if err != nil {
			if a.closed.Load() {
				return
			}
			// A transient error (the interface went down): back off a
			// little rather than spin.
			select {
			case <-a.closing:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if n > len(buf) {
			a.stats.Malformed.Add(1)
			continue
		}
		src, p, err := DecodeFrame(buf[:n])
		if err != nil {
			a.stats.Malformed.Add(1)
			continue
		}
		a.stats.Received.Add(1)
		a.learn(c, src, p)
	}
}

func (a *Agent) learn(c *packetConn, src net.HardwareAddr, p *LLDPDU) {
	k := neighborKey{ifindex: c.ifindex, chassis: p.ChassisID.ChassisString(), port: p.PortID.PortString()}
	a.mu.Lock()
	defer a.mu.Unlock()
	if p.TTL == 0 {
		if _, ok := a.neighbors[k]; ok {
			delete(a.neighbors, k)
			a.stats.Expired.Add(1)
		}
		return
	}
	now := a.opts.Now()
	a.neighbors[k] = &Neighbor{
		Ifindex: c.ifindex, Ifname: c.ifname, SrcMAC: src.String(),
		ChassisID: k.chassis, PortID: k.port, PDU: *p,
		LastSeen: now, ExpiresAt: now.Add(time.Duration(p.TTL) * time.Second),
	}
}

func (a *Agent) expire() {
	now := a.opts.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, n := range a.neighbors {
		if !now.Before(n.ExpiresAt) {
			delete(a.neighbors, k)
			a.stats.Expired.Add(1)
		}
	}
}

// Neighbors returns the live neighbours (expired ones are removed first),
// sorted by interface index, chassis and port.
func (a *Agent) Neighbors() []Neighbor {
	a.expire()
	a.mu.Lock()
	out := make([]Neighbor, 0, len(a.neighbors))
	for _, n := range a.neighbors {
		out = append(out, *n)
	}
	a.mu.Unlock()
	sortNeighbors(out)
	return out
}

// Stats returns the agent's counters.
func (a *Agent) Stats() *AgentStats { return &a.stats }

// SendNow sends the LLDPDU on every interface at once (also in
// ReceiveOnly mode).
func (a *Agent) SendNow() error {
	if a.closed.Load() {
		return ErrClosed
	}
	a.sendAll(uint16(a.opts.TTL / time.Second))
	return nil
}

// Close sends a shutdown LLDPDU (TTL 0) unless ReceiveOnly, stops the
// goroutines and closes the sockets. It is safe to call more than once
// and from any goroutine.
func (a *Agent) Close() error {
	if !a.closed.CompareAndSwap(false, true) {
		return nil
	}
	if !a.opts.ReceiveOnly {
		a.sendAll(0)
	}
	close(a.closing)
	err := a.closeConns()
	a.wg.Wait()
	return err
}

func (a *Agent) closeConns() error {
	var errs []error
	for _, c := range a.conns {
		if err := c.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// interfaceAddrs returns ifi's first global unicast IPv4 and IPv6 address.
func interfaceAddrs(ifi *net.Interface) []netip.Addr {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var v4, v6 netip.Addr
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok || !ip.IsGlobalUnicast() {
			continue
		}
		ip = ip.Unmap()
		if ip.Is4() && !v4.IsValid() {
			v4 = ip
		} else if ip.Is6() && !v6.IsValid() {
			v6 = ip
		}
	}
	var out []netip.Addr
	for _, a := range []netip.Addr{v4, v6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}
