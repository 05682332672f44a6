package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/lab"
)

func newLabCmd() *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "lab",
		Short: "Build, inspect and remove a lab: N hosts as network namespaces joined by a switch",
		Long: `A lab is N hosts, each a network namespace /run/netns/<name>-h<i> with one
interface eth0, joined by a veth pair (2 hosts) or by a bridge in the namespace
<name>-sw (3 or more). Addresses come from 198.18.0.0/15 (IPv6 fd00:198:18::/48);
nothing is created in the machine's own namespace. Needs root.`,
		Example: `  onetdp lab up --hosts 4 --ipv6
  onetdp lab status
  onetdp lab exec h0 -- ping -c 1 198.18.0.2
  onetdp lab down`,
	}
	c.PersistentFlags().StringVar(&name, "name", lab.DefaultName, "lab name, the prefix of its namespaces ([a-z0-9-], at most 24 characters)")
	c.AddCommand(newLabUpCmd(&name), newLabDownCmd(&name), newLabStatusCmd(&name), newLabListCmd(), newLabExecCmd(&name))
	return c
}

func newLabUpCmd(name *string) *cobra.Command {
	var (
		o                        lab.Options
		subnet                   string
		bnHost                   int
		bnRate, bnBurst, bnLimit string
		asJSON                   bool
	)
	c := &cobra.Command{
		Use:   "up",
		Short: "Create the lab, or repair it; a lab that already matches is left alone",
		Example: `  onetdp lab up
  onetdp lab up --name big --hosts 8 --mtu 3000 --subnet 198.18.4.0/24 --ipv6
  onetdp lab up --bottleneck-host 1 --bottleneck-rate 1gbit --bottleneck-burst 64k`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o.Name = *name
			p, err := netip.ParsePrefix(subnet)
			if err != nil {
				return fmt.Errorf("--subnet: %w", err)
			}
			o.Subnet = p
			if o.Bottleneck, err = bottleneckFlags(c, bnHost, bnRate, bnBurst, bnLimit); err != nil {
				return err
			}
			for _, w := range o.Warnings() {
				fmt.Fprintln(c.ErrOrStderr(), "warning:", w)
			}
			l, err := lab.Up(o)
			if err != nil {
				return err
			}
			return printLab(c.OutOrStdout(), l, asJSON)
		},
	}
	f := c.Flags()
	f.IntVar(&o.Hosts, "hosts", lab.DefaultHosts, "number of hosts (2 = one veth pair, 3.. = a bridge)")
	f.IntVar(&o.MTU, "mtu", lab.DefaultMTU, fmt.Sprintf("MTU of every link, %d..%d (native XDP on veth needs <= %d)", lab.MinMTU, lab.MaxMTU, lab.MaxNativeXDP))
	f.StringVar(&subnet, "subnet", lab.DefaultSubnet.String(), "IPv4 subnet inside 198.18.0.0/15; host i gets address i+1")
	f.BoolVar(&o.IPv6, "ipv6", false, "also give host i fd00:198:18:<x>::<i+1>/64")
	f.IntVar(&o.RxQueues, "rxqueues", 1, "rx/tx queues of every veth")
	f.IntVar(&bnHost, "bottleneck-host", -1, "rate limit (TBF) the link into this host index")
	f.StringVar(&bnRate, "bottleneck-rate", "", "bottleneck rate, as tc writes it (1gbit, 500mbit, 10g, 100mbps = bytes)")
	f.StringVar(&bnBurst, "bottleneck-burst", "", "bottleneck bucket size (64k; default max(64k, 1 ms at the rate))")
	f.StringVar(&bnLimit, "bottleneck-limit", "", "bottleneck queue length in bytes (default 50 ms at the rate plus the burst)")
	f.BoolVar(&asJSON, "json", false, "print the lab as JSON")
	return c
}

// bottleneckFlags turns the --bottleneck-* flags into a Bottleneck, nil when
// none was asked for.
func bottleneckFlags(c *cobra.Command, host int, rate, burst, limit string) (*lab.Bottleneck, error) {
	if host < 0 {
		for _, f := range []string{"bottleneck-rate", "bottleneck-burst", "bottleneck-limit"} {
			if c.Flags().Changed(f) {
				return nil, fmt.Errorf("--%s needs --bottleneck-host", f)
			}
		}
		return nil, nil
	}
	if rate == "" {
		return nil, errors.New("--bottleneck-host needs --bottleneck-rate")
	}
	b := &lab.Bottleneck{Host: host}
	var err error
	if b.RateBps, err = lab.ParseRate(rate); err != nil {
		return nil, fmt.Errorf("--bottleneck-rate: %w", err)
	}
	for _, s := range []struct {
		flag, val string
		dst       *uint32
	}{{"--bottleneck-burst", burst, &b.BurstBytes}, {"--bottleneck-limit", limit, &b.LimitBytes}} {
		if s.val == "" {
			continue
		}
		v, err := lab.ParseSize(s.val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.flag, err)
		}
		if v > math.MaxUint32 {
			return nil, fmt.Errorf("%s: %s is over 4 GiB", s.flag, s.val)
		}
		*s.dst = uint32(v)
	}
	return b, nil
}

func newLabDownCmd(name *string) *cobra.Command {
	return &cobra.Command{
		Use:     "down",
		Short:   "Remove every namespace of the lab (no error if it does not exist)",
		Example: "  onetdp lab down\n  onetdp lab down --name big",
		Args:    cobra.NoArgs,
		RunE:    func(*cobra.Command, []string) error { return lab.Down(*name) },
	}
}

func newLabStatusCmd(name *string) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "status",
		Short:   "Show the lab's hosts as read back from the kernel",
		Example: "  onetdp lab status\n  onetdp lab status --name big --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			l, err := lab.Status(*name)
			if errors.Is(err, lab.ErrIncomplete) {
				return fmt.Errorf("%w (run `onetdp lab up` to repair it)", err)
			}
			if err != nil {
				return err
			}
			return printLab(c.OutOrStdout(), l, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the lab as JSON")
	return c
}

func newLabListCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "list",
		Short:   "List the labs present on this machine",
		Example: "  onetdp lab list --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			names, err := lab.List()
			if err != nil {
				return err
			}
			if asJSON {
				if names == nil {
					names = []string{}
				}
				return json.NewEncoder(c.OutOrStdout()).Encode(names)
			}
			for _, n := range names {
				fmt.Fprintln(c.OutOrStdout(), n)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the names as a JSON array")
	return c
}

func newLabExecCmd(name *string) *cobra.Command {
	c := &cobra.Command{
		Use:   "exec <host> -- <command> [args...]",
		Short: "Replace this process with a command running in a host's network namespace",
		Long: `The host is "h0", "0" or the namespace name "onet-h0". The command is found
through PATH and replaces onetdp, so its exit status is the exit status. Only
the network namespace changes: /sys still shows the machine's devices.`,
		Example: "  onetdp lab exec h1 -- iperf3 -s -1\n  onetdp lab exec --name big 3 -- sh -c 'ip -br addr'",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			host, argv := args[0], args[1:]
			if argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return errors.New("no command after --")
			}
			l, err := lab.Status(*name)
			if err != nil {
				return err
			}
			h, err := l.Host(host)
			if err != nil {
				return err
			}
			return execIn(h, argv)
		},
	}
	// Everything after the host belongs to the command, "--" or not.
	c.Flags().SetInterspersed(false)
	return c
}

// execIn replaces the process with argv running in the host's namespace. It
// returns only on failure.
func execIn(h *lab.Host, argv []string) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	fd, err := unix.Open(h.Netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", h.Netns, err)
	}
	// Never unlocked: on failure this thread is in the wrong namespace and
	// must die with its goroutine; on success the process is replaced.
	runtime.LockOSThread()
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter %s: %w", h.Netns, err)
	}
	unix.Close(fd)
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s in %s: %w", path, h.NetnsName(), err)
	}
	return nil
}

type labJSON struct {
	Name       string          `json:"name"`
	Switched   bool            `json:"switched"`
	Hosts      []hostJSON      `json:"hosts"`
	Bottleneck *bottleneckJSON `json:"bottleneck,omitempty"`
}

type hostJSON struct {
	Name     string `json:"name"`
	Netns    string `json:"netns"`
	Ifname   string `json:"ifname"`
	Ifindex  int    `json:"ifindex"`
	MAC      string `json:"mac"`
	IPv4     string `json:"ipv4"`
	IPv6     string `json:"ipv6,omitempty"`
	MTU      int    `json:"mtu"`
	RxQueues int    `json:"rx_queues"`
}

type bottleneckJSON struct {
	Host       int    `json:"host"`
	RateBps    uint64 `json:"rate_bps"`
	BurstBytes uint32 `json:"burst_bytes"`
	LimitBytes uint32 `json:"limit_bytes"`
}

func labView(l *lab.Lab) labJSON {
	v := labJSON{Name: l.Name, Switched: l.Switched, Hosts: make([]hostJSON, len(l.Hosts))}
	for i, h := range l.Hosts {
		v.Hosts[i] = hostJSON{
			Name: h.Name, Netns: h.NetnsName(), Ifname: h.Ifname, Ifindex: h.Ifindex,
			MAC: h.MAC.String(), IPv4: h.Addr.String(), MTU: h.MTU, RxQueues: h.RxQueues,
		}
		if h.Addr6.IsValid() {
			v.Hosts[i].IPv6 = h.Addr6.String()
		}
	}
	if b := l.Bottleneck; b != nil {
		v.Bottleneck = &bottleneckJSON{Host: b.Host, RateBps: b.RateBps, BurstBytes: b.BurstBytes, LimitBytes: b.LimitBytes}
	}
	return v
}

func printLab(w io.Writer, l *lab.Lab, asJSON bool) error {
	v := labView(l)
	if asJSON {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tNETNS\tIFNAME\tMAC\tIPV4\tIPV6\tMTU")
	for _, h := range v.Hosts {
		v6 := h.IPv6
		if v6 == "" {
			v6 = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", h.Name, h.Netns, h.Ifname, h.MAC, h.IPv4, v6, h.MTU)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	topo := "veth pair"
	if l.Switched {
		topo = "bridge br0 in " + lab.SwitchNetns(l.Name)
	}
	fmt.Fprintf(w, "lab %s: %d hosts, %s\n", l.Name, len(l.Hosts), topo)
	if b := l.Bottleneck; b != nil {
		fmt.Fprintf(w, "bottleneck into h%d: tbf rate %s burst %s limit %s\n", b.Host,
			lab.FormatRate(b.RateBps), lab.FormatSize(uint64(b.BurstBytes)), lab.FormatSize(uint64(b.LimitBytes)))
	}
	return nil
}
