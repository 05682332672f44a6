package stack

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/rdma/rocev2"
	"github.com/opennetworks/onetdp/transport/adaptive"
	"github.com/opennetworks/onetdp/transport/rdmatransport"
	"github.com/opennetworks/onetdp/transport/route"
	"github.com/opennetworks/onetdp/transport/shm"
	"github.com/opennetworks/onetdp/transport/tcp"
)

// TransportKind names the collective transport OpenTransport builds.
type TransportKind string

const (
	// TransportRoCEv2: a dataplane port (AF_XDP or kernel UDP, as
	// RDMAOptions.Transport says), the software RoCEv2 engine on it, and
	// transport/rdmatransport over the engine.
	TransportRoCEv2 TransportKind = "rocev2"
	// TransportTCP: kernel TCP between the ranks (transport/tcp), listening
	// on RDMA.Addr.
	TransportTCP TransportKind = "tcp"
	// TransportAdaptive: both, with each message sent over the one that is
	// faster for its size (transport/adaptive, the seed's adaptive
	// protocol selection): rocev2 below the threshold, tcp from it on. The
	// threshold is measured when the group starts unless
	// Adaptive.Threshold is set.
	TransportAdaptive TransportKind = "adaptive"
)

// TransportKinds lists the kinds OpenTransport builds.
var TransportKinds = []TransportKind{TransportRoCEv2, TransportTCP, TransportAdaptive}

// TransportOptions configure OpenTransport.
type TransportOptions struct {
	// Kind picks the transport; default rocev2.
	Kind TransportKind
	// Store is the job's rendezvous store; Rank and Size place this
	// process in the group; Prefix namespaces the store keys (default
	// per transport).
	Store      collective.Store
	Rank, Size int
	Prefix     string
	// RDMA opens the port and engine under the rocev2 transport: Addr
	// (required), the port transport (auto, af_xdp, udp) and further port
	// and engine settings.
	RDMA RDMAOptions
	// NoBusyPoll parks the AF_XDP receiver of a rocev2 engine this opens
	// as soon as its rings are empty. By default it busy-polls them
	// (dataplane.AFXDPOptions.BusyPollAuto: at most DefaultBusyPollBudget
	// per wait, and only while it is the process's one such port), which
	// cuts small-message latency; kernel-UDP ports are not affected.
	NoBusyPoll bool
	// Device, when set, is the RoCEv2 engine the rocev2 transport (and
	// adaptive's rocev2 half) runs on instead of opening one from RDMA:
	// several transports can share one engine (one port per address), each
	// under its own Prefix. The caller keeps owning it: the transport's
	// Close does not close it.
	Device *rocev2.Device
	// RoCEv2 holds further settings of the rocev2 transport (path MTU,
	// eager limit, slots, timeouts). Its Device, Store, Rank, Size and
	// Prefix are set from the fields above, and its Name, when empty, to
	// "rocev2/<port kind>" ("rocev2/af_xdp", "rocev2/udp").
	RoCEv2 rdmatransport.Options
	// TCP holds further settings of the tcp transport; its Store, Rank,
	// Size and Prefix are set from the fields above, and its ListenAddr,
	// when empty, to RDMA.Addr with a free port.
	TCP tcp.Options
	// Adaptive holds the adaptive transport's threshold and measured
	// sizes; its Small and Large are the rocev2 and tcp transports.
	Adaptive adaptive.Options
	// SharedMemory carries messages between ranks on one host through
	// shared memory (transport/shm), the rest over Kind's transport
	// (transport/route); which ranks share a host comes from the network
	// transport's Info (tcp: hostname and network namespace).
	SharedMemory bool
	// SHM holds further shm settings; its Store is set from Store and its
	// Prefix, when empty and Prefix is set, to Prefix+"/shm/".
	SHM shm.Options
}

// OpenTransport builds a connected collective transport for this rank:
// for rocev2, the port, the RoCEv2 engine and the RDMA transport, with the
// device closed when the transport closes. Like OpenRDMA it must run in
// the network namespace of RDMA.Addr; it returns once every rank of the
// group is connected, or fails when ctx ends first.
func OpenTransport(ctx context.Context, o TransportOptions) (collective.Transport, error) {
	t, err := openNetwork(ctx, o)
	if err != nil || !o.SharedMemory {
		return t, err
	}
	so := o.SHM
	so.Store = o.Store
	if so.Prefix == "" && o.Prefix != "" {
		so.Prefix = o.Prefix + "/shm/"
	}
	rt, err := route.OverSharedMemory(ctx, t, so)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open transport: shared memory: %w", err), t.Close())
	}
	return rt, nil
}

// openNetwork opens the transport that Kind names.
func openNetwork(ctx context.Context, o TransportOptions) (collective.Transport, error) {
	switch o.Kind {
	case "", TransportRoCEv2:
		t, err := openRoCEv2(ctx, o)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return t, nil
	case TransportTCP:
		t, err := openTCP(ctx, o)
		if err != nil {
			return nil, err
		}
		return t, nil
	case TransportAdaptive:
		return openAdaptive(ctx, o)
	default:
		return nil, fmt.Errorf("open transport: kind %q (want rocev2, tcp or adaptive): %w", o.Kind, collective.ErrNotSupported)
	}
}

func openTCP(ctx context.Context, o TransportOptions) (*tcp.Transport, error) {
	to := o.TCP
	to.Store, to.Rank, to.Size = o.Store, o.Rank, o.Size
	if o.Prefix != "" {
		to.Prefix = o.Prefix
	}
	if to.ListenAddr == "" && to.Listener == nil {
		if !o.RDMA.Addr.IsValid() {
			return nil, fmt.Errorf("open tcp transport, rank %d: no address: %w", o.Rank, collective.ErrInvalidArgument)
		}
		to.ListenAddr = netip.AddrPortFrom(o.RDMA.Addr, 0).String()
	}
	t, err := tcp.New(ctx, to)
	if err != nil {
		return nil, fmt.Errorf("open tcp transport: %w", err)
	}
	return t, nil
}

// openAdaptive opens rocev2 and tcp under distinct store prefixes and
// joins them; on failure nothing stays open.
func openAdaptive(ctx context.Context, o TransportOptions) (collective.Transport, error) {
	base := o.Prefix
	if base == "" {
		base = "adaptive"
	}
	ro, to := o, o
	ro.Prefix, to.Prefix = base+"/rocev2", base+"/tcp"
	small, err := openRoCEv2(ctx, ro)
	if err != nil {
		return nil, err
	}
	large, err := openTCP(ctx, to)
	if err != nil {
		small.Close()
		return nil, err
	}
	ao := o.Adaptive
	ao.Small, ao.Large = small, large
	t, err := adaptive.New(ctx, ao)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open adaptive transport: %w", err), small.Close(), large.Close())
	}
	return t, nil
}

// RoCEv2Transport is the rocev2 transport with the device under it; Close
// closes both. The Device is for its statistics and settings: the
// transport owns it.
type RoCEv2Transport struct {
	*rdmatransport.Transport
	Engine *rocev2.Device

	ownsEngine bool // false when TransportOptions.Device lent the engine
}

var (
	_ collective.Transport = (*RoCEv2Transport)(nil)
	_ collective.Describer = (*RoCEv2Transport)(nil)
)

// Close closes the transport, then the engine and its port unless the
// engine was lent (TransportOptions.Device).
func (t *RoCEv2Transport) Close() error {
	if !t.ownsEngine {
		return t.Transport.Close()
	}
	return errors.Join(t.Transport.Close(), t.Engine.Close())
}

func openRoCEv2(ctx context.Context, o TransportOptions) (*RoCEv2Transport, error) {
	dev, owns := o.Device, false
	if dev == nil {
		ro := o.RDMA
		ro.Port.AFXDP.BusyPollAuto = ro.Port.AFXDP.BusyPollAuto || !o.NoBusyPoll
		var err error
		if dev, err = OpenRDMA(ro); err != nil {
			return nil, fmt.Errorf("open rocev2 transport, rank %d: %w", o.Rank, err)
		}
		owns = true
	}
	ro := o.RoCEv2
	ro.Device, ro.Store, ro.Rank, ro.Size, ro.Prefix = dev, o.Store, o.Rank, o.Size, o.Prefix
	if ro.Name == "" {
		ro.Name = "rocev2/" + dev.Caps().Kind
	}
	tr, err := rdmatransport.New(ctx, ro)
	if err != nil {
		if owns {
			dev.Close()
		}
		return nil, fmt.Errorf("open rocev2 transport: %w", err)
	}
	return &RoCEv2Transport{Transport: tr, Engine: dev, ownsEngine: owns}, nil
}
