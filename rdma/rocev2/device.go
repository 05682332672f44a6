package rocev2

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/internal/lathist"
	"github.com/opennetworks/onetdp/rdma"
)

// UDPPort is the RoCEv2 UDP destination port.
const UDPPort = 4791

// Options configure Open. Every zero field takes its default.
type Options struct {
	// Port carries the packets. The engine owns it from Open on: it reads
	// it from its receive goroutine, sends through it, and closes it on
	// Close. Its local UDP port must be 4791.
	Port dataplane.Port
	// Name of the device; default "rocev2-<local address>".
	Name string
	// MaxQPs and MaxMRs bound the QPs and memory regions; defaults 4096
	// and 16384.
	MaxQPs, MaxMRs int
	// Window is the most unacknowledged packets one QP may have in flight;
	// default 256. Each go-back-N halves a QP's window (to at least 8) and
	// acknowledged packets open it again.
	Window int
	// AckReqEvery: the requester sets AckReq at least every this many
	// packets, besides the last packet of every message; default 64.
	AckReqEvery int
	// CNPInterval is the least time between two CNPs to one QP
	// (min_time_between_cnps, flowctl.CNPLimiter); default the DCQCN
	// parameters' min_time_between_cnps when FlowControl.Kind is dcqcn,
	// else 4µs.
	CNPInterval time.Duration
	// CNPDSCP is the DSCP of CNPs; default the DCQCN parameters' cnp_dscp
	// when FlowControl.Kind is dcqcn, else 48.
	CNPDSCP uint8
	// FlowControl chooses the congestion controller of every QP (none,
	// DCQCN, delay) and its parameters; the zero value is none. Change it
	// at run time with Device.SetFlowControl or Device.SetDCQCNParams.
	FlowControl FlowControlOptions
	// NewFlowController, when set, makes the controller of each new QP
	// instead of FlowControl (a nil result means none for that QP). It is
	// called on the goroutine creating the QP.
	NewFlowController func(qpn uint32) FlowController
	// TxBatch is the most packets handed to the Port per Send; default 64.
	TxBatch int
}

func (o *Options) setDefaults() error {
	if o.Port == nil {
		return errors.New("rocev2: no port")
	}
	if p := o.Port.LocalAddr().Port(); p != UDPPort {
		return fmt.Errorf("rocev2: port bound to UDP %d, want %d", p, UDPPort)
	}
	if o.Name == "" {
		o.Name = "rocev2-" + o.Port.LocalAddr().Addr().String()
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxQPs, 4096)
	def(&o.MaxMRs, 16384)
	def(&o.Window, 256)
	def(&o.AckReqEvery, 64)
	def(&o.TxBatch, 64)
	if err := o.FlowControl.normalize(); err != nil {
		return fmt.Errorf("rocev2: flow control: %w", err)
	}
	if o.CNPInterval < 0 {
		return fmt.Errorf("rocev2: CNP interval %v: %w", o.CNPInterval, ErrFlowControl)
	}
	dcqcn := o.FlowControl.Kind == FlowControlDCQCN
	if o.CNPInterval == 0 {
		o.CNPInterval = 4 * time.Microsecond
		if dcqcn {
			o.CNPInterval = time.Duration(o.FlowControl.DCQCN.MinTimeBetweenCNPs) * time.Microsecond
		}
	}
	if o.CNPDSCP == 0 {
		o.CNPDSCP = 48
		if dcqcn {
			o.CNPDSCP = uint8(o.FlowControl.DCQCN.CNPDSCP)
		}
	}
	return nil
}

// Stats are the engine's counters, updated by its goroutines with atomic
// adds and read by anyone at any time (telemetry reads them at scrape time).
type Stats struct {
	TxPackets, RxPackets     atomic.Uint64
	TxBytes, RxBytes         atomic.Uint64 // RoCEv2 UDP payload bytes
	Retransmits              atomic.Uint64 // packets sent again (go-back-N)
	Timeouts                 atomic.Uint64 // retransmission timer expiries
	SeqNAKsSent, SeqNAKsRcvd atomic.Uint64
	RNRNAKsSent, RNRNAKsRcvd atomic.Uint64
	AccessNAKsSent           atomic.Uint64 // remote access / invalid request NAKs sent
	ErrNAKsRcvd              atomic.Uint64 // NAKs other than sequence and RNR received
	AcksSent, AcksRcvd       atomic.Uint64
	// AcksHeld counts ACKs of SENDs kept back, after a polled receive,
	// to go out with the next transmit (one system call for both) or
	// after ackHold.
	AcksHeld              atomic.Uint64
	DuplicateRequests     atomic.Uint64
	CNPsSent, CNPsRcvd    atomic.Uint64
	CERcvd                atomic.Uint64 // data packets that arrived CE-marked
	ICRCErrors, Malformed atomic.Uint64 // dropped on receive
	UnknownQP             atomic.Uint64 // dropped: no such QP or QP not ready
	TxStalls              atomic.Uint64 // Send calls that could not hand over the whole batch
	// OpLatency[c] is the time from PostSend to completion of the
	// successful requests of class c (signaled or not; failed and flushed
	// requests are left out): recorded under the QP's lock by whichever
	// goroutine completes the request, readable with Snapshot from any
	// goroutine.
	OpLatency [NumOpClasses]lathist.Histogram
}

// Device implements rdma.Device over one dataplane.Port.
type Device struct {
	opts  Options
	port  dataplane.Port
	local netip.AddrPort
	gid   rdma.GID
	// txSrcPort: the port honours per-packet UDP source ports (entropy).
	txSrcPort bool
	mrs       *mrTable
	stats     Stats
	tx        txPath
	rx        rxPath
	qps       qpTable
	closed    atomic.Bool
	stop      chan struct{}
	wg        sync.WaitGroup
	// cc is the flow-control choice for new QPs; cnpFromParams: the CNP
	// interval follows the DCQCN parameters (Options.CNPInterval unset).
	cc            ccConfig
	cnpFromParams bool
	// epoch is the zero of monoNow, the post time stamps of requests.
	epoch time.Time
}

var (
	_ rdma.Device = (*Device)(nil)
	_ rdma.Poller = (*Device)(nil)
)

// Open starts an engine on opts.Port: a receive goroutine and a transmit
// goroutine (for retransmission timers and work that did not fit inline).
func Open(opts Options) (*Device, error) {
	cnpFromParams := opts.CNPInterval == 0
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	d := &Device{
		opts:      opts,
		port:      opts.Port,
		local:     opts.Port.LocalAddr(),
		gid:       rdma.GIDFromAddr(opts.Port.LocalAddr().Addr()),
		txSrcPort: opts.Port.Caps().TxSrcPort,
		mrs:       newMRTable(opts.MaxMRs),
		stop:      make(chan struct{}),
		epoch:     time.Now(),
	}
	d.cnpFromParams = cnpFromParams
	d.cc.opts, d.cc.custom = opts.FlowControl, opts.NewFlowController
	d.qps.init(opts.MaxQPs)
	d.tx.init(d)
	d.rx.init(d)
	d.wg.Add(2)
	go d.rxLoop()
	go d.tx.loop()
	return d, nil
}

// Name implements rdma.Device.
func (d *Device) Name() string { return d.opts.Name }

// GIDs implements rdma.Device: the one address of the port.
func (d *Device) GIDs() []rdma.GID { return []rdma.GID{d.gid} }

// Stats returns the live counters.
func (d *Device) Stats() *Stats { return &d.stats }

// Caps of the underlying port (which transport carries the packets).
func (d *Device) Caps() dataplane.Caps { return d.port.Caps() }

// Port is the port the engine runs on, for its statistics and (AF_XDP) its
// dispatcher. Do not Send or Recv on it: the engine owns both directions.
func (d *Device) Port() dataplane.Port { return d.port }

// AllocPD implements rdma.Device.
func (d *Device) AllocPD() (rdma.PD, error) {
	if d.closed.Load() {
		return nil, rdma.ErrClosed
	}
	return &protDomain{dev: d}, nil
}

// CreateCQ implements rdma.Device.
func (d *Device) CreateCQ(depth int) (rdma.CQ, error) {
	if depth <= 0 {
		return nil, fmt.Errorf("rocev2: CQ depth %d: %w", depth, rdma.ErrInvalidAttr)
	}
	return newCompQueue(depth), nil
}

// Close moves every QP to error (flushing its requests), stops the
// goroutines and closes the port.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	d.qps.each(func(q *queuePair) { q.toError() })
	close(d.stop)
	err := d.port.Close() // unblocks the receive goroutine
	d.tx.kick()
	d.wg.Wait()
	return err
}

// protDomain implements rdma.PD.
type protDomain struct {
	dev *Device
}

var _ rdma.PD = (*protDomain)(nil)

func (pd *protDomain) RegisterMR(buf []byte, access rdma.AccessFlags) (rdma.MR, error) {
	m, err := pd.dev.mrs.register(pd, buf, access)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (pd *protDomain) CreateQP(attr rdma.QPInitAttr) (rdma.QP, error) {
	if pd.dev.closed.Load() {
		return nil, rdma.ErrClosed
	}
	return newQueuePair(pd, attr)
}

func (pd *protDomain) Dealloc() error { return nil }

// qpTable maps QP numbers to queue pairs for the receive path.
type qpTable struct {
	mu    sync.Mutex
	slots []atomic.Pointer[queuePair]
	next  uint32
	hi    atomic.Int32 // one past the highest slot ever used: each stops there
}

// qpnBase keeps QP numbers clear of the reserved QP0/QP1.
const qpnBase = 0x11

func (t *qpTable) init(max int) { t.slots = make([]atomic.Pointer[queuePair], max) }

func (t *qpTable) add(q *queuePair) (uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.slots {
		idx := (int(t.next) + i) % len(t.slots)
		if t.slots[idx].Load() == nil {
			t.next = uint32(idx + 1)
			t.slots[idx].Store(q)
			if int32(idx+1) > t.hi.Load() {
				t.hi.Store(int32(idx + 1))
			}
			return uint32(idx) + qpnBase, nil
		}
	}
	return 0, fmt.Errorf("rocev2: %d QPs exist: %w", len(t.slots), rdma.ErrResourceLimit)
}

func (t *qpTable) get(qpn uint32) *queuePair {
	idx := int(qpn) - qpnBase
	if idx < 0 || idx >= len(t.slots) {
		return nil
	}
	return t.slots[idx].Load()
}

func (t *qpTable) remove(qpn uint32) { t.slots[int(qpn)-qpnBase].Store(nil) }

func (t *qpTable) each(fn func(*queuePair)) {
	for i := range t.slots[:t.hi.Load()] {
		if q := t.slots[i].Load(); q != nil {
			fn(q)
		}
	}
}
