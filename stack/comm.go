package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/rendezvous"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/transport/rdmatransport"
	"github.com/opennetworks/onetdp/transport/tcp"
)

// Defaults of CommOptions.
const (
	// DefaultConnectTimeout bounds the rendezvous and building the
	// transport when CommOptions.ConnectTimeout is 0.
	DefaultConnectTimeout = 2 * time.Minute
	// DefaultCloseTimeout bounds the barrier Comm.Close runs before
	// tearing down, when CommOptions.CloseTimeout is 0.
	DefaultCloseTimeout = 10 * time.Second
	// EnvTransport names the transport kind when CommOptions.Transport is
	// empty.
	EnvTransport = "ONET_TRANSPORT"
	// DefaultCommTransport is the kind used when neither
	// CommOptions.Transport nor ONET_TRANSPORT says.
	DefaultCommTransport = TransportTCP
)

// CommOptions configure OpenCommunicator. Filled by the caller before the
// call and not touched after.
type CommOptions struct {
	// Rank and Size place this process in the job; Rank < 0 or Size <= 0
	// read both from the launcher's environment (rendezvous.Detect:
	// ONET_RANK/ONET_SIZE, torchrun, Open MPI, Slurm).
	Rank, Size int
	// MasterAddr and MasterPort are where rank 0 serves the TCP store;
	// empty / 0 read ONET_MASTER, MASTER_ADDR and MASTER_PORT. A
	// single-rank job serves nothing: it uses an in-memory store unless
	// StoreURL or ONET_STORE names one.
	MasterAddr string
	MasterPort int
	// Store, when set, is used instead of joining one (the caller keeps
	// owning it: Close does not close it). StoreURL picks the store to
	// join ("tcp://host:port", "file:///dir"); empty reads ONET_STORE.
	Store    collective.Store
	StoreURL string
	// Prefix namespaces this communicator's store keys, so that several
	// communicators can share one store.
	Prefix string
	// Transport is the kind (tcp, rocev2, adaptive); empty reads
	// ONET_TRANSPORT, then DefaultCommTransport.
	Transport TransportKind
	// Addr is the local IP address the data transport uses; invalid means
	// the source address of the route to the master (loopback when the
	// master is a loopback address).
	Addr netip.Addr
	// PortTransport is rocev2's packet I/O (auto, af_xdp, udp).
	PortTransport dataplane.Transport
	// SharedMemory carries same-host traffic through shared memory
	// (TransportOptions.SharedMemory).
	SharedMemory bool
	// NoBusyPoll: rocev2's AF_XDP receiver parks at once instead of
	// busy-polling (TransportOptions.NoBusyPoll).
	NoBusyPoll bool
	// Timeout bounds each operation (collective.Options.Timeout; 0 is
	// collective.DefaultTimeout).
	Timeout time.Duration
	// ConnectTimeout bounds the rendezvous, the transport's connection and
	// the communicator's start-up (DefaultConnectTimeout when 0).
	ConnectTimeout time.Duration
	// CloseTimeout bounds Close's barrier (DefaultCloseTimeout when 0).
	CloseTimeout time.Duration
	// Algorithm forces algorithms per operation (collective.Options).
	Algorithm map[collective.OpKind]string
	// Lookup reads the environment; nil means os.LookupEnv.
	Lookup rendezvous.Lookup
	// Collective holds further communicator settings; its Timeout and
	// Algorithm are set from the fields above when those are set.
	Collective collective.Options
	// TCP and RoCEv2 hold further transport settings (TransportOptions).
	TCP    tcp.Options
	RoCEv2 rdmatransport.Options
}

// Comm is a communicator opened by OpenCommunicator with the transport
// and store under it. Its methods are the collective.Communicator's and
// are safe for concurrent use; Close and Abort end it. The exported
// fields are set by OpenCommunicator and only read after, from any
// goroutine.
type Comm struct {
	*collective.Communicator
	// Launch is where this process sits in the job (rank, size, master).
	Launch rendezvous.Launch
	// Addr is the local data address the transport uses.
	Addr netip.Addr
	// Kind is the transport kind; TransportName the transport's own name
	// ("tcp", "rocev2/af_xdp", ...).
	Kind          TransportKind
	TransportName string

	release       func(cause error) error // lets go of the store (joinStore)
	releaseDevice func() error            // lets go of the shared RoCEv2 engine; nil for tcp
	closeTimeout  time.Duration

	aborted   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// OpenCommunicator is the one way from a launch to a communicator: it
// resolves rank, size and master (options, then the launcher's
// environment), joins the store (rank 0 serves it), opens the transport
// (OpenTransport) on the local data address and builds the communicator.
// Every rank of the job calls it at about the same time. On error nothing
// stays open.
func OpenCommunicator(ctx context.Context, o CommOptions) (*Comm, error) {
	lookup := o.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	l, err := resolveLaunch(o, lookup)
	if err != nil {
		return nil, fmt.Errorf("open communicator: %w", err)
	}
	kind := o.Transport
	if kind == "" {
		if v, _ := lookup(EnvTransport); v != "" {
			kind = TransportKind(v)
		} else {
			kind = DefaultCommTransport
		}
	}
	if !validKind(kind) {
		return nil, fmt.Errorf("open communicator: transport %q (want tcp, rocev2 or adaptive): %w", kind, collective.ErrNotSupported)
	}
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := o.Addr
	if !addr.IsValid() {
		if addr, err = LocalAddrFor(ctx, l.MasterAddr); err != nil {
			return nil, fmt.Errorf("open communicator, rank %d: %w", l.Rank, err)
		}
	}
	store, release, nth, err := joinStore(ctx, o, l, lookup, timeout)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("open communicator, rank 0: %w (something else, torch's own TCPStore for one, serves %s: "+
			"give onet its own port, ONET_MASTER=host:port, or a store with ONET_STORE)", err, l.MasterHostPort())
	}
	if err != nil {
		return nil, fmt.Errorf("open communicator, rank %d: %w", l.Rank, err)
	}
	c := &Comm{Launch: l, Addr: addr, Kind: kind, release: release, closeTimeout: o.CloseTimeout}
	prefix := o.Prefix
	if prefix == "" && nth > 1 {
		prefix = "comm" + strconv.Itoa(nth) // every rank opens its communicators in the same order
	}
	if c.closeTimeout <= 0 {
		c.closeTimeout = DefaultCloseTimeout
	}
	to := o.TCP
	if to.Timeout <= 0 {
		to.Timeout = timeout
	}
	topts := TransportOptions{Kind: kind, Store: store, Rank: l.Rank, Size: l.Size,
		Prefix: prefix, RDMA: RDMAOptions{Addr: addr, Transport: o.PortTransport},
		RoCEv2: o.RoCEv2, TCP: to, SharedMemory: o.SharedMemory, NoBusyPoll: o.NoBusyPoll}
	if kind == TransportRoCEv2 || kind == TransportAdaptive {
		dev, release, err := acquireDevice(addr, o.PortTransport, o.NoBusyPoll)
		if err != nil {
			err = fmt.Errorf("open communicator, rank %d: %w", l.Rank, err)
			return nil, errors.Join(err, c.closeStore(err))
		}
		topts.Device, c.releaseDevice = dev, release
	}
	t, err := OpenTransport(ctx, topts)
	if err != nil {
		err = fmt.Errorf("open communicator, rank %d: %w", l.Rank, err)
		return nil, errors.Join(err, c.closeDevice(), c.closeStore(err))
	}
	c.TransportName = string(kind)
	if d, ok := t.(collective.Describer); ok && d.Info().Name != "" {
		c.TransportName = d.Info().Name
	}
	co := o.Collective
	if o.Timeout > 0 {
		co.Timeout = o.Timeout
	}
	if o.Algorithm != nil {
		co.Algorithm = o.Algorithm
	}
	comm, err := collective.NewCommunicator(ctx, t, co)
	if err != nil {
		err = fmt.Errorf("open communicator: %w", err)
		return nil, errors.Join(err, t.Close(), c.closeDevice(), c.closeStore(err))
	}
	c.Communicator = comm
	return c, nil
}

func validKind(k TransportKind) bool {
	for _, v := range TransportKinds {
		if k == v {
			return true
		}
	}
	return false
}

// resolveLaunch fills rank, size and master from o and, for what o leaves
// open, the environment.
func resolveLaunch(o CommOptions, lookup rendezvous.Lookup) (rendezvous.Launch, error) {
	explicit := o.Rank >= 0 && o.Size > 0
	if explicit && o.Rank >= o.Size {
		return rendezvous.Launch{}, fmt.Errorf("rank %d of %d: %w", o.Rank, o.Size, collective.ErrInvalidArgument)
	}
	if o.MasterPort < 0 || o.MasterPort > 65535 {
		return rendezvous.Launch{}, fmt.Errorf("master port %d: %w", o.MasterPort, collective.ErrInvalidArgument)
	}
	env := func(k string) (string, bool) {
		switch k {
		case "ONET_RANK":
			if explicit {
				return strconv.Itoa(o.Rank), true
			}
		case "ONET_SIZE":
			if explicit {
				return strconv.Itoa(o.Size), true
			}
		case "ONET_LOCAL_RANK", "ONET_LOCAL_SIZE":
			if explicit {
				return "", false
			}
		case "ONET_MASTER":
			if o.MasterAddr != "" || o.MasterPort > 0 {
				return "", false // the explicit parts win; the rest from MASTER_*
			}
		case "MASTER_ADDR":
			if o.MasterAddr != "" {
				return o.MasterAddr, true
			}
		case "MASTER_PORT":
			if o.MasterPort > 0 {
				return strconv.Itoa(o.MasterPort), true
			}
		}
		return lookup(k)
	}
	l, err := rendezvous.Detect(env)
	if err != nil {
		return rendezvous.Launch{}, err
	}
	if explicit {
		l.Source = "explicit"
	}
	return l, nil
}

// LocalAddrFor returns the local address this host uses to reach host
// (an IP address or a name): the source address of the route to it, found
// by connecting a UDP socket (nothing is sent). A loopback master gives
// the same loopback address.
func LocalAddrFor(ctx context.Context, host string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return netip.Addr{}, fmt.Errorf("local address toward master %q: resolve: %w", host, errors.Join(err, collective.ErrInvalidArgument))
		}
		ip = ips[0]
		for _, a := range ips {
			if a.Is4() { // prefer IPv4, as the lab and most clusters run
				ip = a
				break
			}
		}
	}
	ip = ip.Unmap()
	if ip.IsLoopback() {
		if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
			// A host name that resolves to loopback is this machine under
			// Debian's "127.0.1.1 <hostname>": peers elsewhere cannot reach
			// that, so use an interface address when there is one.
			if a, ok := firstGlobalAddr(ip.Is4()); ok {
				return a, nil
			}
		}
		return ip, nil
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 9)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("local address toward master %v: no route: %w", ip, err)
	}
	defer conn.Close()
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	if ip.Is6() && ip.IsLinkLocalUnicast() {
		local = local.WithZone(ip.Zone())
	}
	return local, nil
}

// firstGlobalAddr is the first global unicast address (of the family
// want4 says, else any) on an up, non-loopback interface.
func firstGlobalAddr(want4 bool) (netip.Addr, bool) {
	ifs, err := net.Interfaces()
	if err != nil {
		return netip.Addr{}, false
	}
	var other netip.Addr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil || !pfx.Addr().IsGlobalUnicast() {
				continue
			}
			if pfx.Addr().Is4() == want4 {
				return pfx.Addr(), true
			}
			if !other.IsValid() {
				other = pfx.Addr()
			}
		}
	}
	return other, other.IsValid()
}

// Abort fails every pending and later operation here and on every peer
// (collective.Communicator.Abort); Close then skips its barrier.
func (c *Comm) Abort(err error) {
	c.aborted.Store(true)
	c.Communicator.Abort(err)
}

// Close ends the communicator, its transport, the RoCEv2 engine (when no
// other communicator of this process shares it) and the store, in that
// order. Unless aborted it first runs a barrier bounded by CloseTimeout,
// so that rank 0, which serves the TCP store, closes it only once every
// peer is done (or gone). Calling it again returns the first result.
func (c *Comm) Close() error {
	c.closeOnce.Do(func() {
		if !c.aborted.Load() && c.Size() > 1 {
			// Best effort: a lost peer ends it early, and waiting with the
			// deadline bounds it even if the barrier never gets to run
			// (queued behind an operation that never ends).
			ctx, cancel := context.WithTimeout(context.Background(), c.closeTimeout)
			if h, err := c.Communicator.IBarrier(ctx); err == nil {
				h.Wait(ctx)
			}
			cancel()
		}
		c.closeErr = errors.Join(c.Communicator.Close(), c.closeDevice(), c.closeStore(nil))
	})
	return c.closeErr
}

func (c *Comm) closeDevice() error {
	if c.releaseDevice == nil {
		return nil
	}
	return c.releaseDevice()
}

// closeStore lets go of the store; cause is why the communicator failed
// to open (nil on Close).
func (c *Comm) closeStore(cause error) error {
	if err := c.release(cause); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}
