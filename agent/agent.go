package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/internal/nsenter"
	"github.com/opennetworks/onetdp/telemetry"
	"github.com/opennetworks/onetdp/telemetry/lldp"
)

// Agent is a running agent: dispatchers attached, servers listening. Its
// methods are safe for concurrent use from any goroutine.
type Agent struct {
	opts    Options
	started time.Time
	nl      *netlink.Handle // netlink socket in opts.Netns
	ifaces  []*iface        // fixed after Start

	metrics     *metrics
	httpSrv     *http.Server
	httpLn      net.Listener
	ctrlLn      net.Listener
	wg          sync.WaitGroup
	mu          sync.Mutex // guards unpin, closed, conns
	unpin       bool
	closed      bool
	conns       map[net.Conn]struct{}
	closeResult error

	lldp       *lldp.Agent                   // nil unless Options.LLDP
	congestion *telemetry.CongestionDetector // sampled by a goroutine until Close
	stopBg     context.CancelFunc
	bg         sync.WaitGroup
	flowMu     sync.Mutex // serialises flowctl changes (iface.ecnParams)
}

// iface is one interface with its attached dispatcher and, with
// Options.ECNMarker, its ECN marker.
type iface struct {
	name    string
	ifindex int
	pinDir  string
	disp    *bpf.Dispatcher
	ecn     *bpf.ECNMarker
	// ecnParams are the marker's parameters in force, guarded by
	// Agent.flowMu (the marker has no getter: the agent is its only writer).
	ecnParams bpf.ECNMarkerParams
}

// ecnPinDir is where an interface's ECN marker maps are pinned.
func (ifc *iface) ecnPinDir() string { return filepath.Join(ifc.pinDir, "ecn") }

// Run starts an agent with opts, waits until ctx ends, then closes it
// (detaching every program; pins stay unless asked otherwise).
func Run(ctx context.Context, opts Options) error {
	a, err := Start(opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return a.Close()
}

// Start attaches the dispatcher to every interface in opts and starts the
// metrics and control servers. On error nothing stays attached or open.
func Start(opts Options) (_ *Agent, err error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	mode, _ := o.attachMode()
	a := &Agent{opts: o, started: time.Now(), conns: map[net.Conn]struct{}{}}
	var freshPins []string
	defer func() {
		if err != nil {
			a.closeAll()
			// Pins this failed start created go; pins of an earlier run stay.
			for _, dir := range freshPins {
				_ = bpf.UnpinECNMarker(filepath.Join(dir, "ecn"))
				_ = bpf.Unpin(dir)
			}
			_ = os.Remove(o.PinDir) // only when empty
		}
	}()
	if o.ControlSocket != "off" {
		if err := checkNotRunning(o.ControlSocket); err != nil {
			return nil, err
		}
	}
	a.nl, err = newHandle(o.Netns)
	if err != nil {
		return nil, err
	}
	for _, name := range o.Interfaces {
		l, err := a.nl.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("agent: interface %s: %w", name, err)
		}
		ifc := &iface{name: name, ifindex: l.Attrs().Index, pinDir: filepath.Join(o.PinDir, name)}
		if _, err := os.Stat(ifc.pinDir); errors.Is(err, os.ErrNotExist) {
			freshPins = append(freshPins, ifc.pinDir)
		}
		dopts := bpf.DispatcherOptions{OnetPort: o.OnetPort, Mode: mode, PinDir: ifc.pinDir}
		err = inNetns(o.Netns, func() error {
			d, err := bpf.Attach(ifc.ifindex, dopts)
			ifc.disp = d
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		a.ifaces = append(a.ifaces, ifc)
		if o.ECNMarker != nil {
			if err := a.attachECN(ifc, o.ECNMarker.params()); err != nil {
				return nil, err
			}
		}
	}
	if o.LLDP {
		err = inNetns(o.Netns, func() error {
			var err error
			a.lldp, err = lldp.NewAgent(lldp.AgentOptions{Interfaces: o.Interfaces, Interval: time.Duration(o.LLDPInterval), SystemName: o.LLDPSystemName})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	if err := a.startCongestion(); err != nil {
		return nil, err
	}
	a.metrics = newMetrics(a)
	if o.MetricsAddr != "off" {
		if err := a.startHTTP(); err != nil {
			return nil, err
		}
	}
	if o.ControlSocket != "off" {
		if err := a.startControl(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// newHandle opens a netlink handle in the namespace at path ("" = ours).
func newHandle(path string) (*netlink.Handle, error) {
	if path == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("agent: netlink: %w", err)
		}
		return h, nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("agent: open netns %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("agent: netlink in %s: %w", path, err)
	}
	return h, nil
}

// inNetns runs fn in the namespace at path, or directly when path is "".
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	return nsenter.DoPath(path, fn)
}

func (a *Agent) startHTTP() error {
	reg, err := telemetry.NewRegistry(a.collectors()...)
	if err != nil {
		return fmt.Errorf("agent: metrics registry: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", telemetry.Handler(reg))
	mux.HandleFunc("/healthz", a.serveHealth)
	err = inNetns(a.opts.Netns, func() error {
		var err error
		a.httpLn, err = net.Listen("tcp", a.opts.MetricsAddr)
		return err
	})
	if err != nil {
		return fmt.Errorf("agent: listen for metrics on %s: %w", a.opts.MetricsAddr, err)
	}
	a.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		_ = a.httpSrv.Serve(a.httpLn) // ends with ErrServerClosed on Close
	}()
	return nil
}

// MetricsAddr returns the address /metrics listens on (with the port the
// kernel chose for ":0"), or "" when the HTTP server is off.
func (a *Agent) MetricsAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// ControlSocket returns the control socket path, or "" when it is off.
func (a *Agent) ControlSocket() string {
	if a.ctrlLn == nil {
		return ""
	}
	return a.opts.ControlSocket
}

// RequestUnpin makes Close remove the pinned maps.
func (a *Agent) RequestUnpin() {
	a.mu.Lock()
	a.unpin = true
	a.mu.Unlock()
}

// Close stops the servers, detaches every program and closes the maps.
// Pins stay unless UnpinOnExit was set or RequestUnpin was called. Calling
// Close again returns the first call's result.
func (a *Agent) Close() error {
	a.mu.Lock()
	if a.closed {
		defer a.mu.Unlock()
		return a.closeResult
	}
	a.closed = true
	a.mu.Unlock()
	err := a.closeAll()
	a.mu.Lock()
	a.closeResult = err
	a.mu.Unlock()
	return err
}

func (a *Agent) closeAll() error {
	var errs []error
	if a.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := a.httpSrv.Shutdown(ctx); err != nil {
			_ = a.httpSrv.Close()
		}
		cancel()
	} else if a.httpLn != nil {
		a.httpLn.Close()
	}
	if a.ctrlLn != nil {
		a.ctrlLn.Close() // also removes the socket file
		a.mu.Lock()
		for c := range a.conns {
			c.Close()
		}
		a.mu.Unlock()
	}
	a.wg.Wait()
	if a.stopBg != nil {
		a.stopBg()
		a.bg.Wait()
	}
	if a.lldp != nil {
		if err := a.lldp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("agent: stop lldp: %w", err))
		}
	}
	a.mu.Lock()
	unpin := a.unpin || a.opts.UnpinOnExit
	a.mu.Unlock()
	for _, ifc := range a.ifaces {
		if ifc.ecn != nil {
			if err := inNetns(a.opts.Netns, ifc.ecn.Close); err != nil {
				errs = append(errs, fmt.Errorf("agent: close ecn marker of %s: %w", ifc.name, err))
			}
			if unpin {
				if err := bpf.UnpinECNMarker(ifc.ecnPinDir()); err != nil {
					errs = append(errs, fmt.Errorf("agent: %s: %w", ifc.name, err))
				}
			}
		}
		if err := ifc.disp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("agent: close %s: %w", ifc.name, err))
		}
		if unpin {
			if err := bpf.Unpin(ifc.pinDir); err != nil {
				errs = append(errs, fmt.Errorf("agent: %s: %w", ifc.name, err))
			}
		}
	}
	if unpin {
		// The pin root goes too when nothing else is pinned in it.
		if err := os.Remove(a.opts.PinDir); err != nil && !errors.Is(err, os.ErrNotExist) && !isNotEmpty(err) {
			errs = append(errs, fmt.Errorf("agent: remove %s: %w", a.opts.PinDir, err))
		}
	}
	if a.nl != nil {
		a.nl.Close()
	}
	return errors.Join(errs...)
}

func isNotEmpty(err error) bool { return errors.Is(err, syscall.ENOTEMPTY) }

// Collectors returns the agent's Prometheus collectors (per-interface
// dispatcher counters, attach state, control API counters), for callers
// that serve metrics themselves.
func (a *Agent) Collectors() []prometheus.Collector { return a.collectors() }
