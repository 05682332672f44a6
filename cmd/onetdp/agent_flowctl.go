package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/opennetworks/onetdp/agent"
)

func newAgentFlowctlCmd(socket *string) *cobra.Command {
	var (
		asJSON bool
		iface  string
		sets   []string
	)
	c := &cobra.Command{
		Use:   "flowctl",
		Short: "Show or change the in-kernel ECN marker's parameters, and list the DCQCN presets",
		Long: `flowctl reads the ECN marker the agent attached (--ecn-marker) on each
interface: drain rate, Kmin, Kmax, Pmax, whether it marks, its phantom queue
and counters; and lists the DCQCN reaction-point presets (nvidia, paper, lab)
with NVIDIA's parameter names. --set k=v changes a parameter (repeat it; all
changes go in one request, checked before any is applied):

  rate_bps (or rate)    drain rate in bit/s; k, M, G, T suffixes (950M)
  kmin_bytes (kmin)     queue bytes below which nothing is marked
  kmax_bytes (kmax)     queue bytes at or above which every ECT packet is marked
  pmax_ppm (pmax)       marking probability just below Kmax, parts per million
  enabled               true or false (false: count only)`,
		Example: `  onetdp agent flowctl
  onetdp agent flowctl --set kmin=5000 --set kmax=100000 --set pmax=20000
  onetdp agent flowctl --iface eth0 --set rate=950M --json
  onetdp agent flowctl --set enabled=false`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			set, err := parseFlowctlSets(sets)
			if err != nil {
				return err
			}
			if iface != "" && set == nil {
				return fmt.Errorf("--iface only goes with --set (a read shows every interface)")
			}
			return withAgent(*socket, func(cl *agent.Client) error {
				r, err := cl.Flowctl(iface, set)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(c.OutOrStdout(), r)
				}
				return printFlowctl(c.OutOrStdout(), r)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.Flags().StringVar(&iface, "iface", "", "change only this interface (default: every interface)")
	c.Flags().StringArrayVar(&sets, "set", nil, "parameter=value to change (repeat)")
	return c
}

// parseFlowctlSets turns k=v flags into a FlowctlSet; nil when none. The
// agent checks the ranges again and reports its own errors.
func parseFlowctlSets(sets []string) (*agent.FlowctlSet, error) {
	if len(sets) == 0 {
		return nil, nil
	}
	var s agent.FlowctlSet
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: want key=value (keys %s)", kv, strings.Join(agent.FlowctlKeys, ", "))
		}
		k, v = strings.TrimSpace(strings.ToLower(k)), strings.TrimSpace(v)
		u32 := func(dst **uint32) error {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return fmt.Errorf("--set %s=%q: want an integer 0..4294967295", k, v)
			}
			x := uint32(n)
			*dst = &x
			return nil
		}
		var err error
		switch k {
		case "rate_bps", "rate":
			var r uint64
			if r, err = parseRate(v); err == nil {
				s.RateBps = &r
			}
		case "kmin_bytes", "kmin":
			err = u32(&s.KminBytes)
		case "kmax_bytes", "kmax":
			err = u32(&s.KmaxBytes)
		case "pmax_ppm", "pmax":
			err = u32(&s.PmaxPPM)
		case "enabled":
			var b bool
			if b, err = strconv.ParseBool(v); err != nil {
				err = fmt.Errorf("--set enabled=%q: want true or false", v)
			}
			s.Enabled = &b
		default:
			err = fmt.Errorf("--set %q: unknown parameter %q (keys %s)", kv, k, strings.Join(agent.FlowctlKeys, ", "))
		}
		if err != nil {
			return nil, err
		}
	}
	return &s, nil
}

func printFlowctl(w io.Writer, r agent.FlowctlResult) error {
	if !r.ECNMarkerEnabled {
		fmt.Fprintln(w, "ECN marker: not running (start the agent with --ecn-marker --ecn-rate RATE)")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "IFACE\tHOOK\tENABLED\tRATE\tKMIN_B\tKMAX_B\tPMAX_PPM\tQUEUE_B\tECT\tCE_MARKED\tNOT_ECT_OVER\tALREADY_CE")
		for _, f := range r.Interfaces {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", f.Iface, f.Hook, f.Enabled, bitRate(float64(f.RateBps)),
				f.KminBytes, f.KmaxBytes, f.PmaxPPM, f.QueueBytes, f.Counters.ECT, f.Counters.CEMarked, f.Counters.NotECTOver, f.Counters.AlreadyCE)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, f := range r.Interfaces {
			if f.Error != "" {
				fmt.Fprintf(w, "%s: %s\n", f.Iface, f.Error)
			}
		}
	}
	if len(r.DCQCNPresets) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nDCQCN presets (reaction point, NVIDIA names; µs, Mb/s, bytes):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	names := make([]string, 0, len(r.DCQCNPresets[0].Params))
	for k := range r.DCQCNPresets[0].Params {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Fprint(tw, "PARAMETER\t")
	for _, p := range r.DCQCNPresets {
		fmt.Fprintf(tw, "%s\t", p.Name)
	}
	fmt.Fprintln(tw)
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t", n)
		for _, p := range r.DCQCNPresets {
			fmt.Fprintf(tw, "%d\t", p.Params[n])
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// bitRate formats bit/s with a decimal prefix.
func bitRate(v float64) string {
	for _, u := range []struct {
		div  float64
		unit string
	}{{1e12, "Tbit/s"}, {1e9, "Gbit/s"}, {1e6, "Mbit/s"}, {1e3, "kbit/s"}} {
		if v >= u.div {
			return strconv.FormatFloat(v/u.div, 'f', -1, 64) + " " + u.unit
		}
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + " bit/s"
}
