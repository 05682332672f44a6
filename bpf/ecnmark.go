package bpf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// ErrInvalidECNParams: ECNMarkerParams failed validation (see
// ECNMarkerParams for the bounds).
var ErrInvalidECNParams = errors.New("invalid ecn marker parameters")

// TCNext is the tc action the ECN marker always returns (TC_ACT_UNSPEC,
// TCX_NEXT as uint32): the frame goes on to the next program, or is sent.
const TCNext uint32 = 0xffffffff

// MaxECNRateBps is the largest drain rate the ECN marker accepts (1 Tbit/s).
const MaxECNRateBps = 1_000_000_000_000

// minECNRateBps is the smallest drain rate: the fixed-point rate
// (bytes per ns << ecnFPShift) must be at least 1. About 7.6 kbit/s.
const minECNRateBps = 8 * (1_000_000_000 >> ecnFPShift)

// ecnFPShift is ECN_FP_SHIFT of ecnmark.c.
const ecnFPShift = 20

// ecnMapNames are the marker's maps, also their file names in a pin dir.
var ecnMapNames = []string{ecnmarkMapOnetEcnConfig, ecnmarkMapOnetEcnCounters, ecnmarkMapOnetEcnState}

// ECNMarkerParams are the marker's run-time settings (SetParams).
type ECNMarkerParams struct {
	// RateBps is the drain rate of the phantom queue in bits per second
	// (like lab.Bottleneck.RateBps), typically 95 % of the link rate.
	// About 7.6 kbit/s .. MaxECNRateBps; it is kept with a relative error
	// below 1e-3 above 8 Mbit/s (fixed point, 2^-20 bytes per ns).
	RateBps uint64
	// KminBytes: below this queue length nothing is marked.
	KminBytes uint32
	// KmaxBytes (>= KminBytes): at or above it every ECT packet is marked.
	KmaxBytes uint32
	// PmaxPPM is the marking probability just below Kmax, in parts per
	// million (0..1e6); it rises linearly from 0 at Kmin.
	PmaxPPM uint32
	// Disabled makes the program count packets and bytes only: no queue,
	// no marks.
	Disabled bool
}

// ECNMarkerOptions configure LoadECNMarker and AttachECNMarker. Owned by the
// caller, read once and not kept.
type ECNMarkerOptions struct {
	// RateBps, KminBytes, KmaxBytes and PmaxPPM: see ECNMarkerParams.
	RateBps              uint64
	KminBytes, KmaxBytes uint32
	PmaxPPM              uint32
	// PinDir, when not empty, is a bpffs directory (created if missing)
	// where the counters and the phantom queue are pinned and re-used by
	// the next load with the same PinDir. Use one per interface. The
	// configuration is always set from these options.
	PinDir string
}

// Params returns the options' parameters, enabled.
func (o ECNMarkerOptions) Params() ECNMarkerParams {
	return ECNMarkerParams{RateBps: o.RateBps, KminBytes: o.KminBytes, KmaxBytes: o.KmaxBytes, PmaxPPM: o.PmaxPPM}
}

func (p ECNMarkerParams) validate() error {
	if p.RateBps < minECNRateBps || p.RateBps > MaxECNRateBps {
		return fmt.Errorf("%w: rate %d bit/s outside %d..%d", ErrInvalidECNParams, p.RateBps, uint64(minECNRateBps), uint64(MaxECNRateBps))
	}
	if p.KminBytes > p.KmaxBytes {
		return fmt.Errorf("%w: kmin %d > kmax %d", ErrInvalidECNParams, p.KminBytes, p.KmaxBytes)
	}
	if p.PmaxPPM > PPMScale {
		return fmt.Errorf("%w: pmax %d ppm > %d", ErrInvalidECNParams, p.PmaxPPM, PPMScale)
	}
	return nil
}

// rateFP converts bits per second to bytes per ns << ecnFPShift, rounded.
func rateFP(bps uint64) uint64 {
	// bps <= 1e12: bps << 17 < 2^57, no overflow.
	return (bps<<(ecnFPShift-3) + 500_000_000) / 1_000_000_000
}

// ECNCounters are the marker's counters summed over CPUs.
type ECNCounters struct {
	Packets, Bytes uint64 // every frame seen (Bytes: skb->len)
	ECT            uint64 // IP packets with ECT(0) or ECT(1)
	CEMarked       uint64 // ECT packets marked CE by the program
	NotECTOver     uint64 // Not-ECT packets that would have been marked
	AlreadyCE      uint64 // IP packets that already carried CE
	ParseSkipped   uint64 // not IPv4/IPv6 or a malformed IP header
}

// ECNMarker is a loaded (and, from AttachECNMarker, attached) onet_ecn_mark
// program with its maps: the congestion point for hosts whose switches do
// not mark ECN, and for the lab.
//
// On tc egress it keeps a phantom queue for its interface: each frame adds
// skb->len bytes and the queue drains at RateBps in between (state under a
// bpf_spin_lock, so frames sent from several CPUs at once are all counted).
// With vq the queue after adding the frame, an IPv4 or IPv6 packet (after
// at most one 802.1Q/802.1ad tag) is marked when vq >= Kmax, and with
// probability Pmax*(vq-Kmin)/(Kmax-Kmin) when Kmin <= vq < Kmax. Marking
// sets CE on ECT(0)/ECT(1) packets only (IPv4 header checksum updated
// incrementally, RFC 1624); a Not-ECT packet that would have been marked
// is counted in NotECTOver and sent unchanged, a CE packet is counted in
// AlreadyCE. Frames that are not IP or whose IP header is malformed are
// counted in ParseSkipped and sent unchanged. The program always returns
// TCNext, so programs after it on the hook still run.
//
// Its methods are safe for concurrent use from any goroutine; each is a
// few bpf(2) syscalls, never meant for a per-packet path. Use one marker
// per interface.
type ECNMarker struct {
	objs ecnmarkObjects

	mu     sync.RWMutex // guards detach, hook and closed; map calls hold it for reading
	detach io.Closer    // the tcx link or the legacy filter; nil from LoadECNMarker
	hook   string
	closed bool
}

// LoadECNMarker loads the marker without attaching it (tests drive it with
// TestRun or Program).
func LoadECNMarker(opts ECNMarkerOptions) (*ECNMarker, error) {
	params := opts.Params()
	if err := params.validate(); err != nil {
		return nil, fmt.Errorf("load ecn marker: %w", err)
	}
	spec, err := loadEcnmark()
	if err != nil {
		return nil, fmt.Errorf("load ecn marker spec: %w", err)
	}
	var copts ebpf.CollectionOptions
	if opts.PinDir != "" {
		if err := os.MkdirAll(opts.PinDir, 0o700); err != nil {
			return nil, fmt.Errorf("create pin dir %s: %w", opts.PinDir, err)
		}
		for _, name := range ecnMapNames {
			spec.Maps[name].Pinning = ebpf.PinByName
		}
		copts.Maps.PinPath = opts.PinDir
	}
	m := &ECNMarker{}
	if err := spec.LoadAndAssign(&m.objs, &copts); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("load ecn marker: %+v", verr)
		}
		return nil, fmt.Errorf("load ecn marker (pin dir %q): %w", opts.PinDir, err)
	}
	if err := m.SetParams(params); err != nil {
		m.objs.Close()
		return nil, err
	}
	return m, nil
}

// AttachECNMarker loads the marker and attaches it to the tc egress hook of
// ifindex: through a tcx link (kernel 6.6 or later), appended after any
// program already there, which the kernel removes when the process exits;
// or, when the kernel lacks tcx, as a direct-action cls_bpf filter on a
// clsact qdisc (created if missing), which outlives the process. Hook says
// which. It must run on an OS thread in the interface's network namespace,
// and so must Close, which detaches it.
func AttachECNMarker(ifindex int, opts ECNMarkerOptions) (*ECNMarker, error) {
	return attachECNMarker(ifindex, opts, false)
}

// attachECNMarker is AttachECNMarker; legacyOnly skips tcx (for tests).
func attachECNMarker(ifindex int, opts ECNMarkerOptions, legacyOnly bool) (*ECNMarker, error) {
	m, err := LoadECNMarker(opts)
	if err != nil {
		return nil, err
	}
	tcxErr := ebpf.ErrNotSupported
	if !legacyOnly {
		l, err := link.AttachTCX(link.TCXOptions{
			Interface: ifindex,
			Program:   m.objs.OnetEcnMark,
			Attach:    ebpf.AttachTCXEgress,
			Anchor:    link.Tail(),
		})
		if err == nil {
			m.detach, m.hook = l, "tcx"
			return m, nil
		}
		tcxErr = err
	}
	if !errors.Is(tcxErr, ebpf.ErrNotSupported) {
		m.objs.Close()
		return nil, fmt.Errorf("attach ecn marker to tcx egress of ifindex %d: %w", ifindex, tcxErr)
	}
	f, err := attachLegacyTC(ifindex, m.objs.OnetEcnMark, ecnmarkProgOnetEcnMark)
	if err != nil {
		m.objs.Close()
		return nil, fmt.Errorf("attach ecn marker to ifindex %d (tcx: %v): %w", ifindex, tcxErr, err)
	}
	m.detach, m.hook = f, "tc"
	return m, nil
}

// Hook returns "tcx" or "tc" (a cls_bpf filter on clsact) for an attached
// marker, "" for one from LoadECNMarker.
func (m *ECNMarker) Hook() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.hook
}

// Program returns the loaded tc program, owned by m (do not close it).
func (m *ECNMarker) Program() *ebpf.Program { return m.objs.OnetEcnMark }

// SetParams replaces the marker's parameters; the phantom queue keeps its
// length.
func (m *ECNMarker) SetParams(p ECNMarkerParams) error {
	if err := p.validate(); err != nil {
		return fmt.Errorf("set ecn marker params: %w", err)
	}
	cfg := ecnmarkEcnConfig{RateFp: rateFP(p.RateBps), Kmin: p.KminBytes, Kmax: p.KmaxBytes, PmaxPpm: p.PmaxPPM}
	if !p.Disabled {
		cfg.Enabled = 1
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	if err := m.objs.OnetEcnConfig.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("set ecn marker params: %w", err)
	}
	return nil
}

// TestRun runs the program once on a copy of frame through
// BPF_PROG_TEST_RUN and returns its action (TCNext) and the frame as the
// program left it.
func (m *ECNMarker) TestRun(frame []byte) (action uint32, out []byte, err error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, nil, ErrClosed
	}
	// The program never changes a frame's length.
	out = make([]byte, len(frame))
	act, err := m.objs.OnetEcnMark.Run(&ebpf.RunOptions{Data: frame, DataOut: out})
	if err != nil {
		return act, nil, fmt.Errorf("test run ecn marker on %d-byte frame: %w", len(frame), err)
	}
	return act, out, nil
}

// Counters returns the counters summed over all CPUs.
func (m *ECNMarker) Counters() (ECNCounters, error) {
	var out ECNCounters
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return out, ErrClosed
	}
	var perCPU []ecnmarkEcnCounters
	if err := m.objs.OnetEcnCounters.Lookup(uint32(0), &perCPU); err != nil {
		return out, fmt.Errorf("read ecn marker counters: %w", err)
	}
	for _, c := range perCPU {
		out.Packets += c.Packets
		out.Bytes += c.Bytes
		out.ECT += c.Ect
		out.CEMarked += c.CeMarked
		out.NotECTOver += c.NotEctOver
		out.AlreadyCE += c.AlreadyCe
		out.ParseSkipped += c.ParseSkipped
	}
	return out, nil
}

// QueueBytes returns the phantom queue length now: its length after the
// last frame, drained at the configured rate since then.
func (m *ECNMarker) QueueBytes() (uint64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, ErrClosed
	}
	var st ecnmarkEcnState
	if err := m.objs.OnetEcnState.Lookup(uint32(0), &st); err != nil {
		return 0, fmt.Errorf("read ecn marker queue: %w", err)
	}
	var cfg ecnmarkEcnConfig
	if err := m.objs.OnetEcnConfig.Lookup(uint32(0), &cfg); err != nil {
		return 0, fmt.Errorf("read ecn marker config: %w", err)
	}
	now := uint64(MonotonicNow())
	var dt uint64
	if now > st.LastNs {
		dt = min(now-st.LastNs, 1<<32)
	}
	drained := dt * cfg.RateFp
	if drained >= st.VqFp {
		return 0, nil
	}
	return (st.VqFp - drained) >> ecnFPShift, nil
}

// Close detaches the program and closes the maps (pinned maps stay; see
// UnpinECNMarker). Calling it again returns nil.
func (m *ECNMarker) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	if m.detach != nil {
		if err := m.detach.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach ecn marker (%s): %w", m.hook, err))
		}
		m.detach = nil
	}
	if err := m.objs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close ecn marker objects: %w", err))
	}
	return errors.Join(errs...)
}

// UnpinECNMarker removes the marker's pinned maps from dir, then dir if it is
// empty. Missing files are not an error.
func UnpinECNMarker(dir string) error { return unpinMaps(dir, ecnMapNames) }
