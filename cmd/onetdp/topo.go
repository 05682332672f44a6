package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opennetworks/onetdp/agent"
	"github.com/opennetworks/onetdp/internal/nsenter"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/telemetry/lldp"
	"github.com/opennetworks/onetdp/telemetry/topo"
)

func newTopoCmd() *cobra.Command {
	var (
		asJSON     bool
		listen     time.Duration
		interval   time.Duration
		ifaces     []string
		nsPath     string
		pathTo     []string
		allTables  bool
		systemName string
		agentSock  string
	)
	c := &cobra.Command{
		Use:   "topo",
		Short: "Show links, addresses, neighbours, routes (ECMP next hops), paths and LLDP neighbours",
		Long: `topo reads the host's topology from the kernel through netlink: links,
addresses, ARP/NDP neighbours and routes, with every next hop of an ECMP
(multipath) route. --path-to shows, for a destination, the covering route, all
its next hops and the one the kernel picks. --lldp-listen sends LLDP on the
chosen interfaces (at start and every --lldp-interval) and listens that long
for LLDP neighbours (switches, lldpd) before printing them; --agent SOCKET
takes them instead from a running agent started with --lldp. --netns reads
another network namespace: a path, or a name under /run/netns (a lab host is
<lab>-h<i>). LLDP needs root (CAP_NET_RAW).`,
		Example: `  onetdp topo
  onetdp topo --json --path-to 198.18.0.2
  onetdp topo --netns onet-h0 --lldp-listen 35s --iface eth0
  onetdp topo --all-tables --netns /run/netns/onet-h1
  onetdp topo --netns onet-h0 --agent /run/onetdp/h0.sock`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if nsPath != "" && !strings.Contains(nsPath, "/") {
				nsPath = lab.NetnsDir + "/" + nsPath
			}
			opts := topo.Options{Netns: nsPath, AllTables: allTables}
			for _, s := range pathTo {
				a, err := netip.ParseAddr(s)
				if err != nil {
					return fmt.Errorf("--path-to: %w", err)
				}
				opts.PathTo = append(opts.PathTo, a)
			}
			if listen > 0 && agentSock != "" {
				return fmt.Errorf("--lldp-listen and --agent both give LLDP neighbours: choose one")
			}
			var agentLLDP *agent.Topology
			if agentSock != "" {
				err := withAgent(agentSock, func(cl *agent.Client) error {
					t, err := cl.Topology()
					agentLLDP = &t
					return err
				})
				if err != nil {
					return err
				}
				if !agentLLDP.LLDPEnabled {
					return fmt.Errorf("the agent at %s runs without LLDP (start it with --lldp)", agentSock)
				}
			}
			if listen > 0 {
				a, err := startTopoAgent(nsPath, ifaces, interval, systemName)
				if err != nil {
					return err
				}
				defer a.Close()
				fmt.Fprintf(c.ErrOrStderr(), "listening for LLDP for %v...\n", listen)
				time.Sleep(listen)
				opts.LLDP = a
			}
			s, err := topo.Take(opts)
			if err != nil {
				return err
			}
			if agentLLDP != nil {
				s.LLDP = agentLLDP.LLDP
			}
			if asJSON {
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			printTopo(c.OutOrStdout(), s, listen > 0 || agentLLDP != nil)
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&asJSON, "json", false, "print the snapshot as JSON")
	f.DurationVar(&listen, "lldp-listen", 0, "send LLDP and listen this long for LLDP neighbours (0: no LLDP)")
	f.DurationVar(&interval, "lldp-interval", 5*time.Second, "LLDP send interval while listening")
	f.StringSliceVar(&ifaces, "iface", nil, "interfaces for LLDP (default: every up, non-loopback Ethernet interface)")
	f.StringVar(&nsPath, "netns", "", "network namespace to read: a path or a name under /run/netns")
	f.StringSliceVar(&pathTo, "path-to", nil, "destination addresses to analyse (route, ECMP next hops, kernel's pick)")
	f.BoolVar(&allTables, "all-tables", false, "list routes of every table, not only main")
	f.StringVar(&systemName, "system-name", "", "LLDP system name to advertise (default: the host name)")
	f.StringVar(&agentSock, "agent", "", "take the LLDP neighbour table from the agent on this control socket (an agent started with --lldp)")
	return c
}

// startTopoAgent starts an LLDP agent inside the namespace at nsPath
// (current if empty).
func startTopoAgent(nsPath string, ifaces []string, interval time.Duration, name string) (*lldp.Agent, error) {
	var a *lldp.Agent
	start := func() error {
		if len(ifaces) == 0 {
			all, err := net.Interfaces()
			if err != nil {
				return fmt.Errorf("list interfaces: %w", err)
			}
			for _, i := range all {
				if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 && len(i.HardwareAddr) == 6 {
					ifaces = append(ifaces, i.Name)
				}
			}
			if len(ifaces) == 0 {
				return fmt.Errorf("lldp: no up ethernet interface (use --iface)")
			}
		}
		var err error
		a, err = lldp.NewAgent(lldp.AgentOptions{Interfaces: ifaces, Interval: interval, SystemName: name})
		return err
	}
	var err error
	if nsPath == "" {
		err = start()
	} else {
		err = nsenter.DoPath(nsPath, start)
	}
	return a, err
}

func printTopo(w io.Writer, s *topo.Snapshot, withLLDP bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINKS\nindex\tname\ttype\tmtu\tstate\tmac\tmaster")
	for _, l := range s.Links {
		state := l.OperState
		if !l.AdminUp {
			state += " (admin down)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", l.Index, l.Name, l.Type, l.MTU, state, dash(l.MAC), dash(l.Master))
	}
	fmt.Fprintln(tw, "\nADDRESSES\ninterface\taddress\tscope")
	for _, a := range s.Addresses {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Ifname, a.Prefix, a.Scope)
	}
	fmt.Fprintln(tw, "\nNEIGHBOURS\ninterface\taddress\tmac\tstate")
	for _, n := range s.Neighbors {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.Ifname, n.IP, dash(n.MAC), n.State)
	}
	fmt.Fprintln(tw, "\nROUTES\ndestination\tnext hops\tprotocol\tscope\tmetric\ttable")
	for _, r := range s.Routes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", routeDst(r), nextHops(r.NextHops), r.Protocol, r.Scope, r.Metric, r.Table)
	}
	if len(s.Paths) > 0 {
		fmt.Fprintln(tw, "\nPATHS\ndestination\troute\tnext hops\tkernel picks\tsource")
		for _, p := range s.Paths {
			route := "-"
			if p.Route != nil {
				route = routeDst(*p.Route)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Dst, route, nextHops(p.NextHops), nextHops([]topo.NextHop{p.Chosen}), addrOrDash(p.Src))
		}
	}
	tw.Flush()
	if withLLDP {
		fmt.Fprintln(w)
		printLLDPNeighbors(w, s.LLDP)
	}
}

// printLLDPNeighbors writes an LLDP neighbour table.
func printLLDPNeighbors(w io.Writer, ns []lldp.Neighbor) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LLDP NEIGHBOURS\ninterface\tsystem name\tchassis id\tport id\tport description\tmgmt address\tttl")
	for _, n := range ns {
		var mgmt []string
		for _, m := range n.PDU.ManagementAddresses {
			mgmt = append(mgmt, m.String())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%ds\n", n.Ifname, dash(n.PDU.SystemName), n.ChassisID, n.PortID,
			dash(n.PDU.PortDescription), dash(strings.Join(mgmt, ",")), n.PDU.TTL)
	}
	if len(ns) == 0 {
		fmt.Fprintln(tw, "(none heard)")
	}
	tw.Flush()
}

func routeDst(r topo.Route) string {
	if r.Dst.Bits() == 0 {
		return "default"
	}
	return r.Dst.String()
}

func nextHops(nhs []topo.NextHop) string {
	var s []string
	for _, nh := range nhs {
		h := "dev " + nh.Ifname
		if nh.Gateway.IsValid() {
			h = "via " + nh.Gateway.String() + " " + h
		}
		if len(nhs) > 1 {
			h += fmt.Sprintf(" weight %d", nh.Weight)
		}
		s = append(s, h)
	}
	return strings.Join(s, "; ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func addrOrDash(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}
