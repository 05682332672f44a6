package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/telemetry"
)

// Defaults for Options fields left empty.
const (
	// DefaultPinDir is the bpffs directory under which each interface's
	// dispatcher maps are pinned (in <DefaultPinDir>/<ifname>).
	DefaultPinDir = "/sys/fs/bpf/onetdp"
	// DefaultMetricsAddr is where /metrics and /healthz are served. 9469 is
	// not taken in the Prometheus default port allocations list we know of;
	// loopback only, so exposing it is a deliberate choice.
	DefaultMetricsAddr = "127.0.0.1:9469"
	// DefaultControlSocket is the unix socket of the control API.
	DefaultControlSocket = "/run/onetdp/agent.sock"
	// DefaultOnetPort is onetdp's own UDP port (ClassOnet).
	DefaultOnetPort = 4792
)

// Sentinel errors callers can act on.
var (
	// ErrInvalidOptions: Options (flags or a config file) are unusable.
	ErrInvalidOptions = errors.New("invalid agent options")
	// ErrAlreadyRunning: another agent answers on the control socket.
	ErrAlreadyRunning = errors.New("another agent is running")
)

// Options configure an agent. JSON field names are those of the config
// file (see LoadConfig). The caller owns the struct; Start copies it.
type Options struct {
	// Interfaces to attach the dispatcher to, by name (at least one).
	Interfaces []string `json:"interfaces"`
	// PinDir is the bpffs directory for pinned maps; empty means
	// DefaultPinDir. Agents in different network namespaces of one machine
	// need different PinDirs when their interface names collide.
	PinDir string `json:"pin_dir,omitempty"`
	// MetricsAddr is the TCP address of /metrics and /healthz; empty means
	// DefaultMetricsAddr, "off" disables the HTTP server.
	MetricsAddr string `json:"metrics_addr,omitempty"`
	// ControlSocket is the control API's unix socket path; empty means
	// DefaultControlSocket, "off" disables the control API.
	ControlSocket string `json:"control_socket,omitempty"`
	// OnetPort is the UDP port of ClassOnet; 0 means DefaultOnetPort.
	OnetPort uint16 `json:"onet_port,omitempty"`
	// Mode is the XDP attach mode: "auto" (default), "native" or "generic".
	Mode string `json:"mode,omitempty"`
	// Netns, when set, is the path of a network namespace
	// (/run/netns/<name>) in which the interfaces are looked up and the
	// metrics listener is opened. Empty means the caller's namespace.
	Netns string `json:"netns,omitempty"`
	// UnpinOnExit removes the pinned maps on Close, so the next start
	// begins from zero.
	UnpinOnExit bool `json:"unpin_on_exit,omitempty"`
	// ECNMarker, when set, attaches the in-kernel ECN marker (bpf.ECNMarker)
	// to the tc egress hook of every interface with these parameters
	// (changed at run time through the flowctl op); its maps are pinned in
	// PinDir/<ifname>/ecn.
	ECNMarker *ECNMarkerOptions `json:"ecn_marker,omitempty"`
	// LLDP runs an LLDP agent (telemetry/lldp) on the interfaces: it
	// advertises this host and the topology op reports the neighbours.
	LLDP bool `json:"lldp,omitempty"`
	// LLDPInterval is the LLDP send interval; 0 means lldp.DefaultInterval.
	LLDPInterval Duration `json:"lldp_interval,omitempty"`
	// LLDPSystemName is the advertised system name; empty means the host
	// name.
	LLDPSystemName string `json:"lldp_system_name,omitempty"`
	// Congestion are the congestion warning thresholds (zero fields take
	// telemetry's defaults).
	Congestion telemetry.CongestionThresholds `json:"congestion,omitempty"`
	// CongestionInterval is how often the congestion detector samples;
	// 0 means DefaultCongestionInterval.
	CongestionInterval Duration `json:"congestion_interval,omitempty"`
}

// DefaultCongestionInterval is the congestion detector's sample interval
// when Options.CongestionInterval is zero.
const DefaultCongestionInterval = time.Second

// ECNMarkerOptions are the ECN marker's parameters at start (see
// bpf.ECNMarkerParams).
type ECNMarkerOptions struct {
	// RateBps is the phantom queue's drain rate in bit/s (typically 95 %
	// of the link rate). Required.
	RateBps uint64 `json:"rate_bps"`
	// KminBytes, KmaxBytes and PmaxPPM default to DefaultECNKminBytes,
	// DefaultECNKmaxBytes and DefaultECNPmaxPPM when zero.
	KminBytes uint32 `json:"kmin_bytes,omitempty"`
	KmaxBytes uint32 `json:"kmax_bytes,omitempty"`
	PmaxPPM   uint32 `json:"pmax_ppm,omitempty"`
}

// Defaults of ECNMarkerOptions: marking starts at 20 kB of phantom queue
// and reaches 1 % just below 200 kB, beyond which every ECT packet is
// marked.
const (
	DefaultECNKminBytes = 20_000
	DefaultECNKmaxBytes = 200_000
	DefaultECNPmaxPPM   = 10_000
)

// params returns the marker's parameters, defaults filled in.
func (o ECNMarkerOptions) params() bpf.ECNMarkerParams {
	p := bpf.ECNMarkerParams{RateBps: o.RateBps, KminBytes: o.KminBytes, KmaxBytes: o.KmaxBytes, PmaxPPM: o.PmaxPPM}
	if p.KminBytes == 0 && p.KmaxBytes == 0 {
		p.KminBytes, p.KmaxBytes = DefaultECNKminBytes, DefaultECNKmaxBytes
	}
	if p.PmaxPPM == 0 {
		p.PmaxPPM = DefaultECNPmaxPPM
	}
	return p
}

// Duration is a time.Duration that reads and writes JSON as a string
// ("30s", "500ms").
type Duration time.Duration

// String returns the duration as time.Duration writes it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: want a string like \"30s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads Options from a JSON file. Unknown fields are an error,
// so a misspelt key does not go unnoticed.
func LoadConfig(path string) (Options, error) {
	var o Options
	b, err := os.ReadFile(path)
	if err != nil {
		return o, fmt.Errorf("read agent config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return o, fmt.Errorf("parse agent config %s: %w: %w", path, ErrInvalidOptions, err)
	}
	if dec.More() {
		return o, fmt.Errorf("parse agent config %s: %w: trailing data after the object", path, ErrInvalidOptions)
	}
	return o, nil
}

// withDefaults fills empty fields with the defaults.
func (o Options) withDefaults() Options {
	if o.PinDir == "" {
		o.PinDir = DefaultPinDir
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = DefaultMetricsAddr
	}
	if o.ControlSocket == "" {
		o.ControlSocket = DefaultControlSocket
	}
	if o.OnetPort == 0 {
		o.OnetPort = DefaultOnetPort
	}
	if o.Mode == "" {
		o.Mode = "auto"
	}
	if o.CongestionInterval == 0 {
		o.CongestionInterval = Duration(DefaultCongestionInterval)
	}
	if o.ECNMarker != nil {
		m := *o.ECNMarker
		o.ECNMarker = &m
	}
	o.Interfaces = append([]string(nil), o.Interfaces...)
	return o
}

// attachMode maps Mode to bpf's AttachMode.
func (o Options) attachMode() (bpf.AttachMode, error) {
	switch o.Mode {
	case "auto", "":
		return bpf.AttachAuto, nil
	case "native":
		return bpf.AttachNative, nil
	case "generic":
		return bpf.AttachGeneric, nil
	}
	return 0, fmt.Errorf("%w: mode %q (want auto, native or generic)", ErrInvalidOptions, o.Mode)
}

// validate checks o after withDefaults.
func (o Options) validate() error {
	if len(o.Interfaces) == 0 {
		return fmt.Errorf("%w: no interfaces (give at least one)", ErrInvalidOptions)
	}
	seen := map[string]bool{}
	for _, n := range o.Interfaces {
		if n == "" || len(n) > 15 || n == "." || n == ".." || bytes.ContainsAny([]byte(n), "/ \x00") {
			return fmt.Errorf("%w: interface name %q", ErrInvalidOptions, n)
		}
		if seen[n] {
			return fmt.Errorf("%w: interface %s given twice", ErrInvalidOptions, n)
		}
		seen[n] = true
	}
	if o.OnetPort == 4791 {
		return fmt.Errorf("%w: onet port 4791 is RoCEv2's", ErrInvalidOptions)
	}
	if _, err := o.attachMode(); err != nil {
		return err
	}
	if o.ECNMarker != nil {
		if o.ECNMarker.RateBps == 0 {
			return fmt.Errorf("%w: the ECN marker needs a drain rate (rate_bps, --ecn-rate)", ErrInvalidOptions)
		}
		p := o.ECNMarker.params()
		switch {
		case p.RateBps > bpf.MaxECNRateBps:
			return fmt.Errorf("%w: ecn marker rate %d bit/s above %d", ErrInvalidOptions, p.RateBps, uint64(bpf.MaxECNRateBps))
		case p.KminBytes > p.KmaxBytes:
			return fmt.Errorf("%w: ecn marker kmin %d above kmax %d", ErrInvalidOptions, p.KminBytes, p.KmaxBytes)
		case p.PmaxPPM > bpf.PPMScale:
			return fmt.Errorf("%w: ecn marker pmax %d ppm above %d", ErrInvalidOptions, p.PmaxPPM, bpf.PPMScale)
		}
	}
	if o.LLDPInterval < 0 || o.CongestionInterval < 0 {
		return fmt.Errorf("%w: negative interval", ErrInvalidOptions)
	}
	if _, err := telemetry.NewCongestionDetector(telemetry.CongestionOptions{Thresholds: o.Congestion}); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return nil
}
