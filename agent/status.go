package agent

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/telemetry"
)

// Status is the answer to {"op":"status"} and the body of /healthz.
type Status struct {
	// Healthy is true when every interface has the program attached.
	Healthy       bool              `json:"healthy"`
	Started       time.Time         `json:"started"`
	UptimeSeconds float64           `json:"uptime_seconds"`
	MetricsAddr   string            `json:"metrics_addr,omitempty"`
	ControlSocket string            `json:"control_socket,omitempty"`
	PinDir        string            `json:"pin_dir"`
	OnetPort      uint16            `json:"onet_port"`
	UnpinOnExit   bool              `json:"unpin_on_exit"`
	Interfaces    []InterfaceStatus `json:"interfaces"`
	// ControlErrors counts control API errors by code.
	ControlErrors map[string]uint64 `json:"control_errors"`
	// Congestion is the congestion detector's last verdict (CE ratio from
	// the dispatchers' counters, with thresholds and warnings).
	Congestion *telemetry.CongestionState `json:"congestion,omitempty"`
	// Warnings are one line per problem: congestion warnings, interfaces
	// without the program attached. Empty when all is well.
	Warnings []string `json:"warnings"`
	// ECNMarker and LLDP say whether those run (Options.ECNMarker,
	// Options.LLDP).
	ECNMarker bool `json:"ecn_marker"`
	LLDP      bool `json:"lldp"`
}

// InterfaceStatus is one interface in Status.
type InterfaceStatus struct {
	Name    string `json:"name"`
	Ifindex int    `json:"ifindex"`
	// Attached reports whether netlink shows an XDP program on the link
	// with the dispatcher's program ID.
	Attached   bool   `json:"attached"`
	Mode       string `json:"mode"`
	ModeReason string `json:"mode_reason,omitempty"`
	PinDir     string `json:"pin_dir"`
	// Classes maps class name (rocev2, onet, other) to its counters.
	Classes map[string]ClassStatus `json:"classes"`
	Error   string                 `json:"error,omitempty"`
}

// ClassStatus is one class's counters and fault setting.
type ClassStatus struct {
	Packets      uint64 `json:"packets"`
	Bytes        uint64 `json:"bytes"`
	CE           uint64 `json:"ce"`
	RedirectFail uint64 `json:"redirect_fail"`
	ParseErr     uint64 `json:"parse_err"`
	FaultDrop    uint64 `json:"fault_drop"`
	FaultPPM     uint32 `json:"fault_ppm"`
}

// Status reads every interface's state and counters.
func (a *Agent) Status() Status {
	s := Status{
		Healthy:       true,
		Started:       a.started,
		UptimeSeconds: time.Since(a.started).Seconds(),
		MetricsAddr:   a.MetricsAddr(),
		ControlSocket: a.ControlSocket(),
		PinDir:        a.opts.PinDir,
		OnetPort:      a.opts.OnetPort,
		ControlErrors: a.metrics.controlErrorCounts(),
		Warnings:      []string{},
		ECNMarker:     a.opts.ECNMarker != nil,
		LLDP:          a.lldp != nil,
	}
	a.mu.Lock()
	s.UnpinOnExit = a.unpin || a.opts.UnpinOnExit
	a.mu.Unlock()
	for _, ifc := range a.ifaces {
		is := InterfaceStatus{Name: ifc.name, Ifindex: ifc.ifindex, PinDir: ifc.pinDir, Classes: map[string]ClassStatus{}}
		is.Mode, is.ModeReason = ifc.disp.Mode()
		is.Attached = a.attached(ifc)
		cs, err := ifc.disp.Counters()
		if err != nil {
			is.Error = err.Error()
		}
		for c := bpf.Class(0); c < bpf.NumClasses; c++ {
			ppm, _ := ifc.disp.Fault(c)
			v := cs[c]
			is.Classes[c.String()] = ClassStatus{
				Packets: v.Packets, Bytes: v.Bytes, CE: v.CE, RedirectFail: v.RedirectFail,
				ParseErr: v.ParseErr, FaultDrop: v.FaultDrop, FaultPPM: ppm,
			}
		}
		if !is.Attached || is.Error != "" {
			s.Healthy = false
		}
		if !is.Attached {
			s.Warnings = append(s.Warnings, is.Name+": dispatcher not attached")
		}
		s.Interfaces = append(s.Interfaces, is)
	}
	if a.congestion != nil {
		cs := a.congestion.State()
		s.Congestion = &cs
		for _, w := range cs.Warnings {
			s.Warnings = append(s.Warnings, "congestion: "+w.Message)
		}
	}
	return s
}

// attached asks netlink whether ifc carries the dispatcher's program.
func (a *Agent) attached(ifc *iface) bool {
	l, err := a.nl.LinkByIndex(ifc.ifindex)
	if err != nil || l.Attrs().Xdp == nil || !l.Attrs().Xdp.Attached {
		return false
	}
	info, err := ifc.disp.Program().Info()
	if err != nil {
		return false
	}
	id, ok := info.ID()
	return ok && uint32(id) == l.Attrs().Xdp.ProgId
}

// serveHealth answers /healthz: 200 and the status as JSON when every
// interface is attached, 503 otherwise.
func (a *Agent) serveHealth(w http.ResponseWriter, _ *http.Request) {
	s := a.Status()
	w.Header().Set("Content-Type", "application/json")
	if !s.Healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(s)
}
