package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Sentinel errors callers can act on.
var (
	// ErrInvalidQueue: the queue index is outside 0..MaxQueues-1.
	ErrInvalidQueue = errors.New("queue index out of range")
	// ErrInvalidClass: the class is not one of ClassRoCEv2, ClassOnet, ClassOther.
	ErrInvalidClass = errors.New("invalid class")
	// ErrInvalidFault: a drop probability above 1e6 parts per million.
	ErrInvalidFault = errors.New("fault probability above 1000000 ppm")
	// ErrClosed: the Dispatcher was closed.
	ErrClosed = errors.New("dispatcher closed")
)

// MaxQueues is the number of receive queues the XSKMAP holds (queue indexes
// 0..MaxQueues-1).
const MaxQueues = 64

// PPMScale is the drop probability, in parts per million, that drops every
// frame of a class.
const PPMScale = 1_000_000

// XDP actions as returned by TestRun (the kernel's enum xdp_action).
const (
	XDPAborted  uint32 = 0
	XDPDrop     uint32 = 1
	XDPPass     uint32 = 2
	XDPTx       uint32 = 3
	XDPRedirect uint32 = 4
)

// mapNames are the names of the dispatcher's maps, also their file names in
// a pin directory.
var mapNames = []string{
	dispatcherMapOnetConfig,
	dispatcherMapOnetCounters,
	dispatcherMapOnetFaults,
	dispatcherMapOnetFlows,
	dispatcherMapOnetXsks,
}

// AttachMode selects how Attach hooks the program into the interface.
type AttachMode int

const (
	// AttachAuto tries native (driver) mode and falls back to generic (SKB)
	// mode, remembering why (see Dispatcher.Mode).
	AttachAuto AttachMode = iota
	// AttachNative uses native mode only and fails if the driver lacks it.
	AttachNative
	// AttachGeneric uses generic mode only.
	AttachGeneric
)

// String returns "auto", "native", "generic" or "mode(N)".
func (m AttachMode) String() string {
	switch m {
	case AttachAuto:
		return "auto"
	case AttachNative:
		return "native"
	case AttachGeneric:
		return "generic"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// DispatcherOptions configure Load and Attach. The caller owns the struct;
// it is read once by Load/Attach and not kept.
type DispatcherOptions struct {
	// OnetPort is onetdp's UDP destination port; 0 disables ClassOnet.
	OnetPort uint16
	// Mode selects native or generic XDP; Load ignores it.
	Mode AttachMode
	// PinDir, when not empty, is a directory on bpffs (for example
	// /sys/fs/bpf/onetdp/<ifname>, created if missing) where the maps are
	// pinned by name. A later Load/Attach with the same PinDir re-uses them,
	// so counters and flows survive a restart. Fault settings are reset to 0
	// and the onet port is set from OnetPort on every Load.
	PinDir string
}

// IsDispatcher reports whether the program with this ID (say, the one
// netlink shows attached to an interface) is a dispatcher: its name is
// onet_dispatch. False when the program is gone or unreadable.
func IsDispatcher(id uint32) bool {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return false
	}
	defer p.Close()
	info, err := p.Info()
	return err == nil && info.Name == dispatcherProgOnetDispatch
}

// Dispatcher is a loaded (and, from Attach, attached) onet_dispatch
// program with its maps. All methods are safe for concurrent use from any
// goroutine; each is a few bpf(2) syscalls.
type Dispatcher struct {
	objs dispatcherObjects

	// mu guards link, mode, reason and closed; map operations hold it for
	// reading so that Close (which holds it for writing) never closes a map
	// under them.
	mu     sync.RWMutex
	link   link.Link // nil when loaded with Load
	mode   string
	reason string
	closed bool
}

// Load loads the program and its maps (re-using pinned maps when
// opts.PinDir is set) without attaching it anywhere. Tests drive the
// result through TestRun; Attach uses it too.
func Load(opts DispatcherOptions) (*Dispatcher, error) {
	spec, err := loadDispatcher()
	if err != nil {
		return nil, fmt.Errorf("load dispatcher spec: %w", err)
	}
	var copts ebpf.CollectionOptions
	if opts.PinDir != "" {
		if err := os.MkdirAll(opts.PinDir, 0o700); err != nil {
			return nil, fmt.Errorf("create pin dir %s: %w", opts.PinDir, err)
		}
		for _, name := range mapNames {
			spec.Maps[name].Pinning = ebpf.PinByName
		}
		copts.Maps.PinPath = opts.PinDir
	}
	d := &Dispatcher{}
	if err := spec.LoadAndAssign(&d.objs, &copts); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("load dispatcher: %+v", verr)
		}
		return nil, fmt.Errorf("load dispatcher (pin dir %q): %w", opts.PinDir, err)
	}
	if err := d.SetOnetPort(opts.OnetPort); err != nil {
		d.objs.Close()
		return nil, err
	}
	for c := Class(0); c < NumClasses; c++ {
		if err := d.SetFault(c, 0); err != nil {
			d.objs.Close()
			return nil, err
		}
	}
	return d, nil
}

// Attach loads the dispatcher and attaches it to the interface ifindex
// through a BPF link (detached by Close, or by the kernel when the process
// exits). It must run on an OS thread that is in the interface's network
// namespace: the caller locks the thread and setns'es before calling.
func Attach(ifindex int, opts DispatcherOptions) (*Dispatcher, error) {
	d, err := Load(opts)
	if err != nil {
		return nil, err
	}
	attach := func(flags link.XDPAttachFlags) (link.Link, error) {
		return link.AttachXDP(link.XDPOptions{
			Program:   d.objs.OnetDispatch,
			Interface: ifindex,
			Flags:     flags,
		})
	}
	var l link.Link
	switch opts.Mode {
	case AttachNative:
		l, err = attach(link.XDPDriverMode)
		d.mode = "native"
	case AttachGeneric:
		l, err = attach(link.XDPGenericMode)
		d.mode, d.reason = "generic", "generic mode requested"
	case AttachAuto:
		l, err = attach(link.XDPDriverMode)
		d.mode = "native"
		if err != nil {
			d.mode, d.reason = "generic", fmt.Sprintf("native attach failed: %v", err)
			var gerr error
			l, gerr = attach(link.XDPGenericMode)
			if gerr != nil {
				err = fmt.Errorf("native: %w; generic: %w", err, gerr)
			} else {
				err = nil
			}
		}
	default:
		err = fmt.Errorf("unknown attach mode %d", int(opts.Mode))
	}
	if err != nil {
		d.objs.Close()
		return nil, fmt.Errorf("attach xdp to ifindex %d (%s): %w", ifindex, opts.Mode, err)
	}
	d.link = l
	return d, nil
}

// Mode returns how the program is attached ("native" or "generic") and,
// for generic, why; both are empty for a Dispatcher from Load.
func (d *Dispatcher) Mode() (mode string, reason string) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.mode, d.reason
}

// Program returns the loaded XDP program, owned by d (do not close it).
func (d *Dispatcher) Program() *ebpf.Program { return d.objs.OnetDispatch }

// TestRun runs the program once on frame through BPF_PROG_TEST_RUN and
// returns its XDP action. The kernel rejects frames shorter than 14 bytes
// (an Ethernet header) or longer than about a page less headroom.
func (d *Dispatcher) TestRun(frame []byte) (uint32, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return 0, ErrClosed
	}
	act, err := d.objs.OnetDispatch.Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		return act, fmt.Errorf("test run dispatcher on %d-byte frame: %w", len(frame), err)
	}
	return act, nil
}

// Close detaches the program (closes the link) and closes the maps. Pinned
// maps stay pinned (see Unpin). Calling Close again returns nil.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.link != nil {
		if err := d.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach xdp: %w", err))
		}
		d.link = nil
	}
	if err := d.objs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close dispatcher objects: %w", err))
	}
	return errors.Join(errs...)
}

// Unpin removes the dispatcher's pinned maps from dir, then dir itself if it
// is empty. Missing files are not an error.
func Unpin(dir string) error { return unpinMaps(dir, mapNames) }

// unpinMaps removes the pinned maps names from dir, then dir itself if it is
// empty. Missing files are not an error.
func unpinMaps(dir string, names []string) error {
	for _, name := range names {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("unpin %s: %w", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unpin: read %s: %w", dir, err)
	}
	if len(entries) == 0 {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("unpin: remove %s: %w", dir, err)
		}
	}
	return nil
}
