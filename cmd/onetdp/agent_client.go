package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/opennetworks/onetdp/agent"
)

func newAgentStatusCmd(socket *string) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "status",
		Short:   "Show a running agent's interfaces, attach mode and per-class counters",
		Example: "  onetdp agent status\n  onetdp agent status --json --socket /run/onetdp/h0.sock",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return withAgent(*socket, func(cl *agent.Client) error {
				s, err := cl.Status()
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(c.OutOrStdout(), s)
				}
				return printAgentStatus(c.OutOrStdout(), s)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return c
}

func printAgentStatus(w io.Writer, s agent.Status) error {
	health := "healthy"
	if !s.Healthy {
		health = "UNHEALTHY"
	}
	fmt.Fprintf(w, "agent %s, up %.0f s, metrics %s, pins %s, onet port %d\n", health, s.UptimeSeconds, s.MetricsAddr, s.PinDir, s.OnetPort)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IFACE\tATTACHED\tMODE\tCLASS\tPACKETS\tBYTES\tCE\tREDIRECT_FAIL\tPARSE_ERR\tFAULT_DROP\tFAULT_PPM")
	for _, i := range s.Interfaces {
		for _, cl := range []string{"rocev2", "onet", "other"} {
			v := i.Classes[cl]
			fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", i.Name, i.Attached, i.Mode, cl,
				v.Packets, v.Bytes, v.CE, v.RedirectFail, v.ParseErr, v.FaultDrop, v.FaultPPM)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c := s.Congestion; c != nil {
		fmt.Fprint(w, "congestion:")
		fig := func(name string, v *float64, th float64) {
			if v != nil {
				fmt.Fprintf(w, " %s %.2f %% (warn above %.2f %%)", name, 100**v, 100*th)
			}
		}
		fig("CE", c.CERatio, c.Thresholds.CERatio)
		fig("ring", c.RingOccupancy, c.Thresholds.RingOccupancy)
		fig("retransmit", c.RetransmitRatio, c.Thresholds.RetransmitRatio)
		if c.CERatio == nil && c.RingOccupancy == nil && c.RetransmitRatio == nil {
			fmt.Fprint(w, " no traffic measured yet")
		}
		fmt.Fprintln(w)
	}
	for _, wn := range s.Warnings {
		fmt.Fprintln(w, "WARNING: "+wn)
	}
	if len(s.ControlErrors) > 0 {
		codes := make([]string, 0, len(s.ControlErrors))
		for k := range s.ControlErrors {
			codes = append(codes, k)
		}
		sort.Strings(codes)
		fmt.Fprint(w, "control API errors:")
		for _, k := range codes {
			fmt.Fprintf(w, " %s=%d", k, s.ControlErrors[k])
		}
		fmt.Fprintln(w)
	}
	return nil
}

func newAgentFlowsCmd(socket *string) *cobra.Command {
	var (
		asJSON bool
		limit  int
	)
	c := &cobra.Command{
		Use:     "flows",
		Short:   "Show the largest RoCEv2 and onet flows (by bytes) the dispatcher has seen",
		Example: "  onetdp agent flows --limit 10\n  onetdp agent flows --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if limit < 1 || limit > agent.MaxFlowLimit {
				return fmt.Errorf("--limit %d: want 1..%d", limit, agent.MaxFlowLimit)
			}
			return withAgent(*socket, func(cl *agent.Client) error {
				fl, err := cl.Flows(limit)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(c.OutOrStdout(), fl)
				}
				tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "IFACE\tCLASS\tSRC\tDST\tQP\tPACKETS\tBYTES\tCE\tAGE_S\tIDLE_S")
				for _, f := range fl {
					fmt.Fprintf(tw, "%s\t%s\t%s:%d\t%s:%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\n", f.Iface, f.Class, f.Src, f.SrcPort,
						f.Dst, f.DstPort, f.QP, f.Packets, f.Bytes, f.CE, f.AgeSeconds, f.IdleSeconds)
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the flows as JSON")
	c.Flags().IntVar(&limit, "limit", agent.DefaultFlowLimit, fmt.Sprintf("how many flows, 1..%d", agent.MaxFlowLimit))
	return c
}

func newAgentFaultCmd(socket *string) *cobra.Command {
	var (
		asJSON bool
		iface  string
	)
	c := &cobra.Command{
		Use:   "fault CLASS PPM",
		Short: "Drop frames of a class (rocev2, onet, other) with probability PPM/1e6 in XDP; 0 turns it off",
		Example: `  onetdp agent fault rocev2 10000            # drop 1 % of RoCEv2 frames on every interface
  onetdp agent fault onet 1000000 --iface eth0
  onetdp agent fault rocev2 0`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			// The agent validates: the request carries the raw number so
			// that a bad one gets the agent's own clear error.
			ppm, err := parsePPM(args[1])
			if err != nil {
				return err
			}
			return withAgent(*socket, func(cl *agent.Client) error {
				r, err := cl.SetFault(iface, args[0], ppm)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(c.OutOrStdout(), r)
				}
				fmt.Fprintf(c.OutOrStdout(), "fault %s %d ppm on %v\n", r.Class, r.PPM, r.Interfaces)
				return nil
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.Flags().StringVar(&iface, "iface", "", "only this interface (default: every attached interface)")
	return c
}

func parsePPM(s string) (int64, error) {
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		return 0, fmt.Errorf("ppm %q: want an integer 0..1000000", s)
	}
	return n, nil
}

func newAgentTopologyCmd(socket *string) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "topology",
		Short:   "Show the links and addresses of the agent's network namespace, and its LLDP neighbours (--lldp)",
		Example: "  onetdp agent topology\n  onetdp agent topology --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return withAgent(*socket, func(cl *agent.Client) error {
				t, err := cl.Topology()
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(c.OutOrStdout(), t)
				}
				tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "INDEX\tNAME\tTYPE\tSTATE\tMTU\tMAC\tXDP\tMANAGED\tADDRESSES")
				for _, l := range t.Links {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%d\t%v\t%v\n", l.Index, l.Name, l.Type, l.OperState, l.MTU, l.MAC, l.XDPProgID, l.Managed, l.Addresses)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if t.LLDPEnabled {
					fmt.Fprintln(c.OutOrStdout())
					printLLDPNeighbors(c.OutOrStdout(), t.LLDP)
				}
				return nil
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the topology as JSON")
	return c
}

func newAgentUnpinCmd(socket *string) *cobra.Command {
	return &cobra.Command{
		Use:     "unpin",
		Short:   "Make the running agent remove its pinned maps when it stops (the next start counts from zero)",
		Example: "  onetdp agent unpin && systemctl stop onetdp-agent",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return withAgent(*socket, func(cl *agent.Client) error {
				if err := cl.Unpin(); err != nil {
					return err
				}
				fmt.Fprintln(c.OutOrStdout(), "pins will be removed when the agent stops")
				return nil
			})
		},
	}
}
