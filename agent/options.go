package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/opennetworks/onetdp/bpf"
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
	_, err := o.attachMode()
	return err
}
