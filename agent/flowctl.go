package agent

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/flowctl"
	"github.com/opennetworks/onetdp/telemetry"
)

// FlowctlResult answers a flowctl request: the ECN marker's parameters and
// counters on each interface (after the change, for a set), and the DCQCN
// parameter presets the RoCEv2 engines know (reaction-point settings, for
// reference: they run in the engines, not in the agent).
type FlowctlResult struct {
	// ECNMarkerEnabled is false when the agent runs without the marker
	// (Options.ECNMarker, --ecn-marker); Interfaces is then empty.
	ECNMarkerEnabled bool             `json:"ecn_marker_enabled"`
	Interfaces       []FlowctlIface   `json:"interfaces"`
	DCQCNPresets     []DCQCNPresetSet `json:"dcqcn_presets"`
}

// FlowctlIface is one interface's ECN marker.
type FlowctlIface struct {
	Iface string `json:"iface"`
	// Hook is "tcx" or "tc" (a cls_bpf filter on clsact).
	Hook       string          `json:"hook"`
	RateBps    uint64          `json:"rate_bps"`
	KminBytes  uint32          `json:"kmin_bytes"`
	KmaxBytes  uint32          `json:"kmax_bytes"`
	PmaxPPM    uint32          `json:"pmax_ppm"`
	Enabled    bool            `json:"enabled"`
	QueueBytes uint64          `json:"queue_bytes"`
	Counters   bpf.ECNCounters `json:"counters"`
	Error      string          `json:"error,omitempty"`
}

// DCQCNPresetSet is one named DCQCN parameter set, in NVIDIA's names.
type DCQCNPresetSet struct {
	Name   string            `json:"name"`
	Params map[string]uint32 `json:"params"`
}

// ErrNoECNMarker: a flowctl change was asked of an agent started without
// the ECN marker.
var ErrNoECNMarker = errors.New("the agent runs without the ECN marker (start it with --ecn-marker)")

// attachECN attaches the ECN marker to ifc with params p.
func (a *Agent) attachECN(ifc *iface, p bpf.ECNMarkerParams) error {
	opts := bpf.ECNMarkerOptions{RateBps: p.RateBps, KminBytes: p.KminBytes, KmaxBytes: p.KmaxBytes, PmaxPPM: p.PmaxPPM, PinDir: ifc.ecnPinDir()}
	err := inNetns(a.opts.Netns, func() error {
		m, err := bpf.AttachECNMarker(ifc.ifindex, opts)
		ifc.ecn = m
		return err
	})
	if err != nil {
		return fmt.Errorf("agent: ecn marker on %s: %w", ifc.name, err)
	}
	ifc.ecnParams = p
	return nil
}

// Flowctl reads the ECN marker of every interface, after applying set
// (when not nil) to interface ifname ("" = every interface).
func (a *Agent) Flowctl(ifname string, set *FlowctlSet) (FlowctlResult, error) {
	res := FlowctlResult{Interfaces: []FlowctlIface{}, DCQCNPresets: dcqcnPresets()}
	a.flowMu.Lock()
	defer a.flowMu.Unlock()
	for _, ifc := range a.ifaces {
		if ifc.ecn != nil {
			res.ECNMarkerEnabled = true
		}
	}
	if set != nil {
		if !res.ECNMarkerEnabled {
			return res, ErrNoECNMarker
		}
		var targets []*iface
		for _, ifc := range a.ifaces {
			if ifname == "" || ifname == ifc.name {
				targets = append(targets, ifc)
			}
		}
		if len(targets) == 0 {
			return res, fmt.Errorf("%w: iface %q is not attached by this agent", ErrBadArgument, ifname)
		}
		// Check every target first, so that a bad value changes nothing.
		for _, ifc := range targets {
			p := set.apply(ifc.ecnParams)
			if p.KminBytes > p.KmaxBytes {
				return res, fmt.Errorf("%w: kmin_bytes %d above kmax_bytes %d on %s", ErrBadArgument, p.KminBytes, p.KmaxBytes, ifc.name)
			}
		}
		for _, ifc := range targets {
			p := set.apply(ifc.ecnParams)
			if err := ifc.ecn.SetParams(p); err != nil {
				if errors.Is(err, bpf.ErrInvalidECNParams) {
					return res, fmt.Errorf("%w: %s: %w", ErrBadArgument, ifc.name, err)
				}
				return res, fmt.Errorf("flowctl on %s: %w", ifc.name, err)
			}
			ifc.ecnParams = p
		}
	}
	for _, ifc := range a.ifaces {
		if ifc.ecn == nil {
			continue
		}
		p := ifc.ecnParams
		fi := FlowctlIface{Iface: ifc.name, Hook: ifc.ecn.Hook(), RateBps: p.RateBps, KminBytes: p.KminBytes,
			KmaxBytes: p.KmaxBytes, PmaxPPM: p.PmaxPPM, Enabled: !p.Disabled}
		var errs []error
		var err error
		fi.QueueBytes, err = ifc.ecn.QueueBytes()
		errs = append(errs, err)
		fi.Counters, err = ifc.ecn.Counters()
		errs = append(errs, err)
		if err := errors.Join(errs...); err != nil {
			fi.Error = err.Error()
		}
		res.Interfaces = append(res.Interfaces, fi)
	}
	return res, nil
}

// dcqcnPresets lists flowctl's DCQCN presets with NVIDIA's parameter names.
func dcqcnPresets() []DCQCNPresetSet {
	out := make([]DCQCNPresetSet, 0, len(flowctl.DCQCNPresets))
	for _, name := range flowctl.DCQCNPresets {
		p, err := flowctl.DCQCNPreset(name)
		if err != nil {
			continue
		}
		m := map[string]uint32{}
		v := reflect.ValueOf(p)
		t := v.Type()
		for i := range t.NumField() {
			if tag := t.Field(i).Tag.Get("nv"); tag != "" {
				m[tag] = uint32(v.Field(i).Uint())
			}
		}
		out = append(out, DCQCNPresetSet{Name: name, Params: m})
	}
	return out
}

// startCongestion starts the congestion detector over the dispatchers.
func (a *Agent) startCongestion() error {
	d, err := telemetry.NewCongestionDetector(telemetry.CongestionOptions{Thresholds: a.opts.Congestion})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.congestion = d
	src := telemetry.CongestionSources{}
	for _, ifc := range a.ifaces {
		src.Dispatchers = append(src.Dispatchers, ifc.disp)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stopBg = cancel
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		d.Run(ctx, time.Duration(a.opts.CongestionInterval), src.Read)
	}()
	return nil
}
