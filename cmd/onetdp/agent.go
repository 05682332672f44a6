package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/opennetworks/onetdp/agent"
	"github.com/opennetworks/onetdp/telemetry"
)

func newAgentCmd() *cobra.Command {
	var socket string
	c := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent: XDP dispatcher on interfaces, Prometheus /metrics, control socket",
		Long: `Run the onetdp agent in the foreground until SIGTERM or SIGINT.

It attaches the XDP dispatcher to every --iface with its maps pinned under
--pin-dir/<iface>, so a restarted agent keeps its counters (--unpin-on-exit
starts the next run from zero). It serves Prometheus metrics on
http://<listen>/metrics and a health check on /healthz (200 with JSON when every
interface is attached, 503 otherwise), and a control API on a unix socket
(newline-delimited JSON; see the status, flows, fault and topology
subcommands). SIGTERM detaches every program.

Settings come from flags, then ONET_AGENT_* environment variables
(ONET_AGENT_IFACES=eth0,eth1, ONET_AGENT_LISTEN, ONET_AGENT_SOCKET,
ONET_AGENT_PIN_DIR, ONET_AGENT_ONET_PORT, ONET_AGENT_MODE, ONET_AGENT_NETNS),
then --config (a JSON file with the keys interfaces, pin_dir, metrics_addr,
control_socket, onet_port, mode, netns, unpin_on_exit, ecn_marker {rate_bps,
kmin_bytes, kmax_bytes, pmax_ppm}, lldp, lldp_interval, lldp_system_name,
congestion {ce_ratio, ring_occupancy, retransmit_ratio, min_packets},
congestion_interval; durations as strings like "30s"), then defaults.

--ecn-marker attaches the in-kernel ECN marker (a phantom queue draining at
--ecn-rate that marks ECT packets CE between Kmin and Kmax, RED-like) to each
interface's tc egress; ` + "`onetdp agent flowctl`" + ` reads and changes it at run
time. --lldp advertises this host by LLDP and keeps a neighbour table. A
congestion detector samples the dispatchers' CE counts every
--congestion-interval and raises warnings (status, onet_congestion_warning)
above --ce-threshold. Needs root (CAP_BPF, CAP_NET_ADMIN).`,
		Example: `  onetdp agent --iface eth0
  onetdp agent --iface eth0 --iface eth1 --listen 0.0.0.0:9469 --mode native
  onetdp agent --config /etc/onetdp/agent.json
  onetdp agent --netns /run/netns/onet-h0 --iface eth0 --pin-dir /sys/fs/bpf/onet-h0 --socket /run/onetdp/h0.sock
  onetdp agent --iface eth0 --ecn-marker --ecn-rate 950M --ecn-kmin 20000 --ecn-kmax 200000 --lldp
  onetdp agent status --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts, err := agentOptions(c)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			a, err := agent.Start(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "onetdp agent: attached to %s; metrics on http://%s/metrics; control socket %s\n",
				strings.Join(opts.Interfaces, ", "), a.MetricsAddr(), a.ControlSocket())
			<-ctx.Done()
			fmt.Fprintln(c.ErrOrStderr(), "onetdp agent: stopping, detaching")
			return a.Close()
		},
	}
	f := c.Flags()
	f.StringArray("iface", nil, "interface to attach the dispatcher to (repeat for several)")
	f.String("config", "", "JSON config file (flags and ONET_AGENT_* override it)")
	f.String("listen", agent.DefaultMetricsAddr, `address of /metrics and /healthz ("off" to disable)`)
	f.String("pin-dir", agent.DefaultPinDir, "bpffs directory for the pinned maps (one subdirectory per interface)")
	f.Uint16("onet-port", agent.DefaultOnetPort, "UDP port of onetdp traffic (the onet class)")
	f.String("mode", "auto", "XDP attach mode: auto, native or generic")
	f.String("netns", "", "network namespace path (/run/netns/NAME) holding the interfaces")
	f.Bool("unpin-on-exit", false, "remove the pinned maps when the agent stops (the next start counts from zero)")
	f.Bool("ecn-marker", false, "attach the in-kernel ECN marker to each interface's egress (needs --ecn-rate or ecn_marker.rate_bps)")
	f.String("ecn-rate", "", "ECN marker drain rate in bit/s, with an optional k, M, G or T suffix (e.g. 950M)")
	f.Uint32("ecn-kmin", agent.DefaultECNKminBytes, "ECN marker Kmin: phantom queue bytes below which nothing is marked")
	f.Uint32("ecn-kmax", agent.DefaultECNKmaxBytes, "ECN marker Kmax: queue bytes at or above which every ECT packet is marked")
	f.Uint32("ecn-pmax", agent.DefaultECNPmaxPPM, "ECN marker Pmax: marking probability just below Kmax, in parts per million")
	f.Bool("lldp", false, "run LLDP on the interfaces (advertise this host; neighbours in `agent topology` and `topo --agent`)")
	f.Duration("lldp-interval", 30*time.Second, "LLDP send interval")
	f.String("lldp-system-name", "", "LLDP system name to advertise (default: the host name)")
	f.Duration("congestion-interval", agent.DefaultCongestionInterval, "congestion detector sample interval")
	f.Float64("ce-threshold", telemetry.DefaultCERatioThreshold, "warn when more than this share of received packets is CE-marked")
	f.Float64("ring-threshold", telemetry.DefaultRingOccupancyThreshold, "warn when AF_XDP rx rings are at least this full and not draining")
	f.Float64("retransmit-threshold", telemetry.DefaultRetransmitRatioThreshold, "warn when more than this share of sent packets are retransmissions")
	c.PersistentFlags().StringVar(&socket, "socket", agent.DefaultControlSocket, `control socket path ("off" disables it for the agent)`)
	c.AddCommand(newAgentStatusCmd(&socket), newAgentFlowsCmd(&socket), newAgentFaultCmd(&socket),
		newAgentFlowctlCmd(&socket), newAgentTopologyCmd(&socket), newAgentUnpinCmd(&socket))
	return c
}

// agentOptions merges the agent command's flags (those set), ONET_AGENT_*
// variables and the --config file, in that order of precedence.
func agentOptions(c *cobra.Command) (agent.Options, error) {
	var o agent.Options
	fs := c.Flags()
	if path, _ := fs.GetString("config"); path != "" {
		var err error
		if o, err = agent.LoadConfig(path); err != nil {
			return o, err
		}
	}
	env := func(name string, set func(string) error) error {
		if v, ok := os.LookupEnv(name); ok {
			if err := set(v); err != nil {
				return fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
		return nil
	}
	str := func(dst *string) func(string) error { return func(v string) error { *dst = v; return nil } }
	errs := []error{
		env("ONET_AGENT_IFACES", func(v string) error { o.Interfaces = splitList(v); return nil }),
		env("ONET_AGENT_LISTEN", str(&o.MetricsAddr)),
		env("ONET_AGENT_SOCKET", str(&o.ControlSocket)),
		env("ONET_AGENT_PIN_DIR", str(&o.PinDir)),
		env("ONET_AGENT_MODE", str(&o.Mode)),
		env("ONET_AGENT_NETNS", str(&o.Netns)),
		env("ONET_AGENT_ONET_PORT", func(v string) error {
			p, err := strconv.ParseUint(v, 10, 16)
			o.OnetPort = uint16(p)
			return err
		}),
	}
	for _, err := range errs {
		if err != nil {
			return o, err
		}
	}
	// A flag wins when set, and fills in what nothing else set.
	strFlag := func(name string, dst *string) {
		if fs.Changed(name) || *dst == "" {
			*dst, _ = fs.GetString(name)
		}
	}
	if fs.Changed("iface") {
		o.Interfaces, _ = fs.GetStringArray("iface")
	}
	strFlag("listen", &o.MetricsAddr)
	strFlag("socket", &o.ControlSocket)
	strFlag("pin-dir", &o.PinDir)
	strFlag("mode", &o.Mode)
	if fs.Changed("netns") {
		o.Netns, _ = fs.GetString("netns")
	}
	if fs.Changed("onet-port") || o.OnetPort == 0 {
		o.OnetPort, _ = fs.GetUint16("onet-port")
	}
	if fs.Changed("unpin-on-exit") {
		o.UnpinOnExit, _ = fs.GetBool("unpin-on-exit")
	}
	if err := ecnFlags(fs, &o); err != nil {
		return o, err
	}
	if fs.Changed("lldp") {
		o.LLDP, _ = fs.GetBool("lldp")
	}
	if fs.Changed("lldp-interval") {
		d, _ := fs.GetDuration("lldp-interval")
		o.LLDPInterval = agent.Duration(d)
	}
	if fs.Changed("lldp-system-name") {
		o.LLDPSystemName, _ = fs.GetString("lldp-system-name")
	}
	if fs.Changed("congestion-interval") {
		d, _ := fs.GetDuration("congestion-interval")
		o.CongestionInterval = agent.Duration(d)
	}
	for name, dst := range map[string]*float64{"ce-threshold": &o.Congestion.CERatio, "ring-threshold": &o.Congestion.RingOccupancy,
		"retransmit-threshold": &o.Congestion.RetransmitRatio} {
		if fs.Changed(name) {
			*dst, _ = fs.GetFloat64(name)
		}
	}
	if len(o.Interfaces) == 0 {
		return o, fmt.Errorf("no interfaces: give --iface, ONET_AGENT_IFACES or \"interfaces\" in --config")
	}
	return o, nil
}

// ecnFlags applies --ecn-marker and the --ecn-* flags that were set: any of
// them enables the marker.
func ecnFlags(fs *pflag.FlagSet, o *agent.Options) error {
	on, _ := fs.GetBool("ecn-marker")
	enable := on
	for _, n := range []string{"ecn-rate", "ecn-kmin", "ecn-kmax", "ecn-pmax"} {
		enable = enable || fs.Changed(n)
	}
	if fs.Changed("ecn-marker") && !on {
		o.ECNMarker = nil
		return nil
	}
	if !enable {
		return nil
	}
	if o.ECNMarker == nil {
		o.ECNMarker = &agent.ECNMarkerOptions{}
	}
	if fs.Changed("ecn-rate") {
		v, _ := fs.GetString("ecn-rate")
		r, err := parseRate(v)
		if err != nil {
			return fmt.Errorf("--ecn-rate: %w", err)
		}
		o.ECNMarker.RateBps = r
	}
	for name, dst := range map[string]*uint32{"ecn-kmin": &o.ECNMarker.KminBytes, "ecn-kmax": &o.ECNMarker.KmaxBytes, "ecn-pmax": &o.ECNMarker.PmaxPPM} {
		if fs.Changed(name) || *dst == 0 {
			*dst, _ = fs.GetUint32(name)
		}
	}
	return nil
}

// parseRate reads a rate in bit/s: an integer with an optional decimal
// suffix k, M, G or T ("950M", "10G", "2500000").
func parseRate(s string) (uint64, error) {
	mult := uint64(1)
	t := strings.TrimSpace(s)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			mult = 1e3
		case 'M':
			mult = 1e6
		case 'G':
			mult = 1e9
		case 'T':
			mult = 1e12
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || v*float64(mult) > 1e12 {
		return 0, fmt.Errorf("rate %q: want a positive number of bit/s up to 1T, e.g. 950M", s)
	}
	return uint64(v * float64(mult)), nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// withAgent connects to the control socket and runs fn.
func withAgent(socket string, fn func(*agent.Client) error) error {
	cl, err := agent.Dial(socket)
	if err != nil {
		return fmt.Errorf("%w (is `onetdp agent` running? --socket)", err)
	}
	defer cl.Close()
	return fn(cl)
}
