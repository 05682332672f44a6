package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asavie/xdp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/bpf"
)

// ZeroCopyMode selects whether AF_XDP sockets bind in zero-copy mode.
type ZeroCopyMode int

const (
	// ZeroCopyAuto tries zero-copy and falls back to copy mode, reporting why
	// in Caps().Reason (veth supports only copy mode).
	ZeroCopyAuto ZeroCopyMode = iota
	// ZeroCopyOff binds in copy mode.
	ZeroCopyOff
	// ZeroCopyRequire fails when the driver cannot do zero-copy.
	ZeroCopyRequire
)

// AFXDPOptions configure NewAFXDPPort. The zero value of every field but
// Ifname and Local picks a sane default.
type AFXDPOptions struct {
	// Ifname is the interface to attach to, in the caller's network namespace.
	Ifname string
	// Local is the IP address (one of Ifname's) and UDP port the port
	// receives on. Port 4791 receives RoCEv2; any other port is programmed
	// into the dispatcher as onetdp's own port.
	Local netip.AddrPort
	// Queues lists the rx queues to bind a socket to; empty means every rx
	// queue of the interface. The first one also transmits.
	Queues []int
	// NumFrames is the number of UMEM frames per socket, half for receive
	// and half for transmit. A power of two; default 4096.
	NumFrames int
	// FrameSize is the UMEM frame size: 2048 or 4096. Default: 2048 when the
	// MTU fits (the kernel keeps 256 bytes of headroom), else 4096.
	FrameSize int
	// RingSize is the number of descriptors of each of the fill, completion,
	// rx and tx rings. A power of two; default NumFrames/2.
	RingSize int
	// ZeroCopy selects zero-copy or copy mode (default: try zero-copy).
	ZeroCopy ZeroCopyMode
	// BusyPoll makes Recv spin on empty rx rings, with no system call, for
	// up to BusyPollBudget before it parks: the lowest latency, at the price
	// of a busy core while traffic flows. For a receiver that owns its core
	// (a packet benchmark); see BusyPollAuto for the general case.
	BusyPoll bool
	// BusyPollAuto spins like BusyPoll, but only while this is the
	// process's one BusyPollAuto port (one rank per process, as launchers
	// start them) and EnvBusyPoll is not "off": with several in one
	// process (a lab's ranks) a spinning goroutine delays the Go
	// netpoller's wake-ups of the others by hundreds of microseconds, so
	// they all park at once.
	BusyPollAuto bool
	// BusyPollBudget bounds one Recv's spinning; default
	// DefaultBusyPollBudget. Negative: spin until a packet, the timeout or
	// Close, without ever yielding the P (a dedicated core, as the packet
	// benchmarks use it).
	BusyPollBudget time.Duration
	// Attach selects native or generic XDP for the dispatcher.
	Attach bpf.AttachMode
	// PinDir pins the dispatcher's maps there (see bpf.DispatcherOptions).
	PinDir string
	// NoUDPChecksum sends IPv4 datagrams with UDP checksum 0, as RoCEv2
	// NICs do (the ICRC covers the packet): one pass less over every payload.
	// IPv6 always carries the checksum.
	NoUDPChecksum bool
	// ResolveTimeout bounds neighbour resolution of a new destination;
	// default 1s.
	ResolveTimeout time.Duration
}

// AFXDPPort is a Port over AF_XDP sockets, fed by the onetdp XDP dispatcher.
// It builds and parses the Ethernet/IP/UDP headers itself and resolves
// next hops through netlink.
type AFXDPPort struct {
	opts       AFXDPOptions
	local      netip.AddrPort
	ifindex    int
	mtu        int
	maxPayload int
	caps       Caps
	disp       *bpf.Dispatcher
	queues     []*xskQueue
	rings      []xskRings // one per queue, fixed at construction: RingStats reads them without a lock
	tx         *xskQueue
	ns         netns.NsHandle // network namespace of the interface, for neighbour resolution
	wakeFD     int            // eventfd written by Close to wake a Recv sleeping in poll

	// Owned by the Send goroutine.
	peers map[netip.Addr]*FrameSpec

	// Owned by the Recv goroutine.
	timeout time.Duration
	next    int // round-robin start over queues
	frame   UDPFrame
	epFile  *os.File        // epoll set of the sockets and wakeFD, in the Go netpoller
	epConn  syscall.RawConn // epFile's
	readyFn func(uintptr) bool
	events  [8]unix.EpollEvent

	mu     sync.RWMutex // Send/Recv hold it shared, Close exclusively
	closed atomic.Bool
	stats  PortStats
}

var _ Poller = (*AFXDPPort)(nil)

// socketFlagsMu serialises changes of asavie/xdp's package-level bind flags.
var socketFlagsMu sync.Mutex

// NewAFXDPPort attaches a dispatcher of its own to opts.Ifname, binds one
// AF_XDP socket per rx queue and registers them in the dispatcher's XSKMAP.
// An interface takes one dispatcher, so it takes one AFXDPPort at a time: a
// second NewAFXDPPort on it fails until the first is closed.
//
// It must run in the interface's network namespace: the calling goroutine's
// OS thread is the one whose namespace counts (lock it and setns first, as
// lab.Host.Do does). The returned port may then be used from any goroutine.
func NewAFXDPPort(opts AFXDPOptions) (*AFXDPPort, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	link, err := netlink.LinkByName(opts.Ifname)
	if err != nil {
		return nil, fmt.Errorf("af_xdp: find interface %s: %w", opts.Ifname, err)
	}
	attrs := link.Attrs()
	p := &AFXDPPort{
		opts:    opts,
		local:   opts.Local,
		ifindex: attrs.Index,
		mtu:     attrs.MTU,
		ns:      netns.None(),
		wakeFD:  -1,
		peers:   make(map[netip.Addr]*FrameSpec),
	}
	if err := p.checkLocal(link); err != nil {
		return nil, err
	}
	hdr := 20
	if opts.Local.Addr().Is6() {
		hdr = 40
	}
	p.maxPayload = p.mtu - hdr - 8
	if opts.FrameSize == 0 {
		opts.FrameSize = 2048
		if p.mtu+18 > 2048-256 {
			opts.FrameSize = 4096
		}
		p.opts.FrameSize = opts.FrameSize
	}
	if p.mtu+18 > opts.FrameSize-256 {
		return nil, fmt.Errorf("af_xdp: MTU %d of %s does not fit frame size %d", p.mtu, opts.Ifname, opts.FrameSize)
	}
	if len(opts.Queues) == 0 {
		n := attrs.NumRxQueues
		if n <= 0 {
			n = 1
		}
		for q := 0; q < n; q++ {
			p.opts.Queues = append(p.opts.Queues, q)
		}
	}
	ok := false
	defer func() {
		if !ok {
			p.teardown()
		}
	}()
	if p.ns, err = netns.Get(); err != nil {
		return nil, fmt.Errorf("af_xdp: open network namespace: %w", err)
	}
	if p.wakeFD, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("af_xdp: eventfd: %w", err)
	}
	onetPort := opts.Local.Port()
	if onetPort == RoCEv2Port {
		onetPort = 0
	}
	p.disp, err = bpf.Attach(p.ifindex, bpf.DispatcherOptions{OnetPort: onetPort, Mode: opts.Attach, PinDir: opts.PinDir})
	if err != nil {
		if dispatcherAttached(p.ifindex) {
			return nil, fmt.Errorf("af_xdp: %s already carries an onet XDP dispatcher (another AF_XDP port on %v? close it or use another address): %w (%v)",
				opts.Ifname, opts.Local.Addr(), ErrInUse, err)
		}
		return nil, fmt.Errorf("af_xdp: %w", err)
	}
	zcReason := ""
	p.rings = make([]xskRings, len(p.opts.Queues))
	for i, q := range p.opts.Queues {
		xq, why, err := p.openQueue(q, &p.rings[i])
		if err != nil {
			return nil, err
		}
		if why != "" {
			zcReason = why
		}
		p.queues = append(p.queues, xq)
		if err := p.disp.RegisterSocket(q, xq.sock.FD()); err != nil {
			return nil, fmt.Errorf("af_xdp: register socket of queue %d: %w", q, err)
		}
	}
	p.tx = p.queues[0]
	if err := p.initWait(); err != nil {
		return nil, err
	}
	mode, why := p.disp.Mode()
	reason := mode + " XDP"
	if why != "" {
		reason += " (" + why + ")"
	}
	if zcReason != "" {
		reason += ", copy mode (" + zcReason + ")"
	} else if p.queues[0].zeroCopy {
		reason += ", zero-copy"
	} else {
		reason += ", copy mode"
	}
	if opts.BusyPoll {
		reason += ", busy-poll"
	} else if opts.BusyPollAuto {
		reason += ", busy-poll when alone"
	}
	p.caps = Caps{Kind: "af_xdp", RxTOS: true, TxTOS: true, TxSrcPort: true, RxIPID: true, Reason: reason}
	if opts.BusyPollAuto && !opts.BusyPoll {
		noteSpinEnv()
		busyPorts.Add(1)
	}
	ok = true
	return p, nil
}

// RoCEv2Port is the IANA UDP destination port of RoCEv2.
const RoCEv2Port = 4791

func (o *AFXDPOptions) setDefaults() error {
	if o.Ifname == "" {
		return errors.New("af_xdp: no interface given")
	}
	if !o.Local.IsValid() || o.Local.Addr().IsUnspecified() || o.Local.Port() == 0 {
		return fmt.Errorf("af_xdp: local address %v must name an address of %s and a non-zero port", o.Local, o.Ifname)
	}
	o.Local = netip.AddrPortFrom(o.Local.Addr().Unmap(), o.Local.Port())
	if o.NumFrames == 0 {
		o.NumFrames = 4096
	}
	if o.RingSize == 0 {
		o.RingSize = o.NumFrames / 2
	}
	if !isPow2(o.NumFrames) || !isPow2(o.RingSize) || o.NumFrames < 16 {
		return fmt.Errorf("af_xdp: NumFrames %d and RingSize %d must be powers of two, NumFrames >= 16", o.NumFrames, o.RingSize)
	}
	if o.FrameSize != 0 && o.FrameSize != 2048 && o.FrameSize != 4096 {
		return fmt.Errorf("af_xdp: frame size %d: want 2048 or 4096", o.FrameSize)
	}
	if o.BusyPollBudget == 0 {
		o.BusyPollBudget = DefaultBusyPollBudget
	}
	if o.ResolveTimeout == 0 {
		o.ResolveTimeout = time.Second
	}
	return nil
}

// initWait builds the epoll set Recv parks on and hands it to the Go
// netpoller.
func (p *AFXDPPort) initWait() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("af_xdp: epoll: %w", err)
	}
	fds := []int{p.wakeFD}
	for _, q := range p.queues {
		fds = append(fds, q.sock.FD())
	}
	for _, fd := range fds {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(epfd)
			return fmt.Errorf("af_xdp: epoll add fd %d: %w", fd, err)
		}
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return fmt.Errorf("af_xdp: epoll nonblock: %w", err)
	}
	p.epFile = os.NewFile(uintptr(epfd), "af_xdp-epoll")
	if p.epConn, err = p.epFile.SyscallConn(); err != nil {
		return fmt.Errorf("af_xdp: epoll in the netpoller: %w", err)
	}
	p.readyFn = p.ready
	return nil
}

func isPow2(n int) bool { return n > 0 && n&(n-1) == 0 }

func (p *AFXDPPort) checkLocal(link netlink.Link) error {
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("af_xdp: list addresses of %s: %w", p.opts.Ifname, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == p.local.Addr() {
			return nil
		}
	}
	return fmt.Errorf("af_xdp: %v is not an address of %s", p.local.Addr(), p.opts.Ifname)
}

// openQueue binds one AF_XDP socket to rx queue q, trying zero-copy first
// when allowed. why is the reason zero-copy was not used ("" if it was, or
// if it was not tried).
func (p *AFXDPPort) openQueue(q int, rings *xskRings) (xq *xskQueue, why string, err error) {
	o := p.opts
	so := &xdp.SocketOptions{
		NumFrames:              o.NumFrames,
		FrameSize:              o.FrameSize,
		FillRingNumDescs:       o.RingSize,
		CompletionRingNumDescs: o.RingSize,
		RxRingNumDescs:         o.RingSize,
		TxRingNumDescs:         o.RingSize,
	}
	bind := func(flags uint16) (*xdp.Socket, error) {
		socketFlagsMu.Lock()
		defer socketFlagsMu.Unlock()
		xdp.DefaultSocketFlags = flags
		defer func() { xdp.DefaultSocketFlags = 0 }()
		// The kernel frees a closed socket's queue binding from a workqueue
		// (xp_release_deferred): a bind right after a close may find the
		// queue still busy for a moment. asavie/xdp formats the errno away,
		// hence the text match.
		for wait := time.Millisecond; ; wait *= 2 {
			s, err := xdp.NewSocket(p.ifindex, q, so)
			if err == nil || !strings.Contains(err.Error(), unix.EBUSY.Error()) || wait > 256*time.Millisecond {
				return s, err
			}
			time.Sleep(wait)
		}
	}
	var sock *xdp.Socket
	zc := false
	mode := o.ZeroCopy
	if mode == ZeroCopyAuto {
		// Probe first: a failed zero-copy bind inside asavie/xdp leaks its
		// ring mappings.
		if perr := probeZeroCopy(p.ifindex, q); perr != nil {
			mode, why = ZeroCopyOff, "zero-copy unavailable: "+perr.Error()
		}
	}
	switch mode {
	case ZeroCopyAuto, ZeroCopyRequire:
		sock, err = bind(unix.XDP_ZEROCOPY)
		if err == nil {
			zc = true
			break
		}
		if o.ZeroCopy == ZeroCopyRequire {
			return nil, "", fmt.Errorf("af_xdp: bind queue %d of %s in zero-copy mode: %w", q, o.Ifname, err)
		}
		why = "zero-copy unavailable: " + err.Error()
		fallthrough
	case ZeroCopyOff:
		if sock, err = bind(unix.XDP_COPY); err != nil {
			return nil, "", fmt.Errorf("af_xdp: bind queue %d of %s: %w", q, o.Ifname, err)
		}
	}
	xq = newXSKQueue(q, sock, o.NumFrames, o.FrameSize, o.RingSize, zc, rings)
	return xq, why, nil
}

// Send implements Port.
func (p *AFXDPPort) Send(pkts []Packet) (int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	q := p.tx
	q.reap()
	descs := q.txDescs[:0]
	room := q.txRoom()
	var bytes uint64
	var err error
	for i := range pkts {
		if len(descs) == room {
			break
		}
		pk := &pkts[i]
		if len(pk.Buf) > p.maxPayload {
			err = ErrTooBig
			break
		}
		if pk.Addr.Port() == 0 {
			err = errNoDstPort
			break
		}
		spec, e := p.peer(pk.Addr.Addr())
		if e != nil {
			err = e
			break
		}
		s := *spec
		s.Dst = netip.AddrPortFrom(s.Dst.Addr(), pk.Addr.Port())
		s.TOS = pk.TOS
		if pk.SrcPort != 0 {
			s.Src = netip.AddrPortFrom(s.Src.Addr(), pk.SrcPort)
		}
		frame := q.txFrame(len(descs))
		copy(frame[s.HeaderLen():], pk.Buf)
		n, e := WriteUDPFrame(frame, &s, len(pk.Buf))
		if e != nil {
			err = e
			break
		}
		descs = append(descs, xdp.Desc{Addr: q.txAddr(len(descs)), Len: uint32(n)})
		bytes += uint64(len(pk.Buf))
	}
	// txRoom capped descs to the free ring slots, so the ring takes them all.
	sent, terr := q.transmit(descs)
	q.noteTx()
	if errors.Is(terr, ErrClosed) {
		// The socket is of no more use (interface gone): what is on the
		// ring stays there.
		p.stats.TxDropped.Add(uint64(sent))
	} else {
		p.stats.TxPackets.Add(uint64(sent))
		p.stats.TxBytes.Add(bytes)
	}
	if terr != nil {
		return sent, terr
	}
	return sent, err
}

// errNoDstPort is Send's error for a destination without a UDP port,
// preallocated because Send must not allocate.
var errNoDstPort = fmt.Errorf("af_xdp: destination port 0: %w", ErrNoRoute)

// peer returns the frame template for destination dst, resolving the next
// hop on first use (the only allocating path of Send; a destination that
// does not resolve is tried again, for up to ResolveTimeout, on every Send).
func (p *AFXDPPort) peer(dst netip.Addr) (*FrameSpec, error) {
	dst = dst.Unmap()
	if s, ok := p.peers[dst]; ok {
		return s, nil
	}
	return p.resolvePeer(dst)
}

// dispatcherAttached reports whether interface ifindex (in the calling
// thread's network namespace) has an onet dispatcher attached.
func dispatcherAttached(ifindex int) bool {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil || l.Attrs().Xdp == nil || !l.Attrs().Xdp.Attached {
		return false
	}
	return bpf.IsDispatcher(l.Attrs().Xdp.ProgId)
}
