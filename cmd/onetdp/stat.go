package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"

	"github.com/opennetworks/onetdp/telemetry/system"
)

// statLink is one interface's kernel link counters (netlink IFLA_STATS64).
type statLink struct {
	Iface     string `json:"iface"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	RxDropped uint64 `json:"rx_dropped"`
	TxDropped uint64 `json:"tx_dropped"`
	RxErrors  uint64 `json:"rx_errors"`
	TxErrors  uint64 `json:"tx_errors"`
}

// statReport is what `onetdp stat --json` prints.
type statReport struct {
	System system.Snapshot `json:"system"`
	Links  []statLink      `json:"links"`
}

func newStatCmd() *cobra.Command {
	var (
		asJSON   bool
		interval time.Duration
		ifaces   []string
		noGPU    bool
	)
	c := &cobra.Command{
		Use:   "stat",
		Short: "One snapshot of system figures (CPU per core, NUMA, GPU, power) and link counters",
		Long: `stat samples the host twice, --interval apart, and prints per-core CPU
utilisation and RAPL power over that interval, memory per NUMA node, the NUMA
node of each interface, GPU utilisation, memory and power (nvidia-smi, with
NVLink state where the driver reports it), and each interface's netlink
counters (bytes, packets, drops, errors). A source this host does not offer
is printed as "absent (reason)", never as zero.`,
		Example: `  onetdp stat
  onetdp stat --interval 5s --iface eth0 --iface eth1
  onetdp stat --json | jq '.system.cpu.cores'`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if interval <= 0 {
				return fmt.Errorf("--interval must be positive, got %v", interval)
			}
			for _, name := range ifaces {
				if _, err := netlink.LinkByName(name); err != nil {
					return fmt.Errorf("interface %s: %w", name, err)
				}
			}
			s := system.NewSampler(system.Options{Ifaces: ifaces, NoGPU: noGPU})
			s.Prime()
			select {
			case <-time.After(interval):
			case <-c.Context().Done():
				return c.Context().Err()
			}
			rep := statReport{System: s.Sample(c.Context())}
			links, err := readLinkStats(ifaces)
			if err != nil {
				return err
			}
			rep.Links = links
			if asJSON {
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return printStat(c.OutOrStdout(), &rep)
		},
	}
	f := c.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON instead of text")
	f.DurationVar(&interval, "interval", time.Second, "time between the two samples CPU utilisation and power are measured over")
	f.StringSliceVar(&ifaces, "iface", nil, "interface to report (repeatable or comma-separated); default all")
	f.BoolVar(&noGPU, "no-gpu", false, "do not run nvidia-smi")
	return c
}

// readLinkStats returns the netlink counters of the named interfaces, or
// of every interface sorted by name when names is empty.
func readLinkStats(names []string) ([]statLink, error) {
	var links []netlink.Link
	if len(names) == 0 {
		all, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("list links: %w", err)
		}
		links = all
	} else {
		for _, n := range names {
			l, err := netlink.LinkByName(n)
			if err != nil {
				return nil, fmt.Errorf("interface %s: %w", n, err)
			}
			links = append(links, l)
		}
	}
	out := make([]statLink, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		sl := statLink{Iface: a.Name}
		if st := a.Statistics; st != nil {
			sl.RxBytes, sl.TxBytes = st.RxBytes, st.TxBytes
			sl.RxPackets, sl.TxPackets = st.RxPackets, st.TxPackets
			sl.RxDropped, sl.TxDropped = st.RxDropped, st.TxDropped
			sl.RxErrors, sl.TxErrors = st.RxErrors, st.TxErrors
		}
		out = append(out, sl)
	}
	if len(names) == 0 {
		sort.Slice(out, func(i, j int) bool { return out[i].Iface < out[j].Iface })
	}
	return out, nil
}

func absentText(reason string) string { return "absent (" + reason + ")" }

func optF(p *float64, format string) string {
	if p == nil {
		return "absent (N/A)"
	}
	return fmt.Sprintf(format, *p)
}

func optMiB(p *uint64) string {
	if p == nil {
		return "absent (N/A)"
	}
	return fmt.Sprintf("%d MiB", *p>>20)
}

func printStat(w io.Writer, r *statReport) error {
	s := &r.System
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "interval\t%v\n", s.Interval)
	if s.CPU.Absent != "" {
		fmt.Fprintf(tw, "cpu\t%s\n", absentText(s.CPU.Absent))
	} else {
		parts := make([]string, 0, len(s.CPU.Cores))
		for _, c := range s.CPU.Cores {
			parts = append(parts, fmt.Sprintf("cpu%d %.1f%%", c.CPU, 100*c.Ratio))
		}
		fmt.Fprintf(tw, "cpu\t%s\n", strings.Join(parts, "  "))
	}
	if s.NUMA.Absent != "" {
		fmt.Fprintf(tw, "numa memory\t%s\n", absentText(s.NUMA.Absent))
	}
	for _, n := range s.NUMA.Nodes {
		fmt.Fprintf(tw, "numa node %d\ttotal %d MiB  free %d MiB  used %d MiB\n", n.Node, n.TotalBytes>>20, n.FreeBytes>>20, n.UsedBytes>>20)
	}
	if s.NICs.Absent != "" && len(s.NICs.NICs) == 0 {
		fmt.Fprintf(tw, "nic numa\t%s\n", absentText(s.NICs.Absent))
	}
	for _, n := range s.NICs.NICs {
		if n.Absent != "" {
			fmt.Fprintf(tw, "nic %s numa node\t%s\n", n.Iface, absentText(n.Absent))
		} else {
			fmt.Fprintf(tw, "nic %s numa node\t%d\n", n.Iface, n.Node)
		}
	}
	if s.GPU.Absent != "" {
		fmt.Fprintf(tw, "gpu\t%s\n", absentText(s.GPU.Absent))
	}
	for _, g := range s.GPU.GPUs {
		util := "absent (N/A)"
		if g.UtilizationRatio != nil {
			util = fmt.Sprintf("%.0f%%", 100**g.UtilizationRatio)
		}
		fmt.Fprintf(tw, "gpu %d %s\tutil %s  memory %s / %s  power %s\n", g.Index, g.Name, util,
			optMiB(g.MemoryUsedBytes), optMiB(g.MemoryTotalBytes), optF(g.PowerWatts, "%.1f W"))
	}
	if s.GPU.NVLinkAbsent != "" {
		fmt.Fprintf(tw, "nvlink\t%s\n", absentText(s.GPU.NVLinkAbsent))
	}
	for _, l := range s.GPU.NVLinks {
		fmt.Fprintf(tw, "nvlink gpu %d link %d\t%s\n", l.GPU, l.Link, optF(l.GBps, "%.3f GB/s"))
	}
	if s.Power.Absent != "" {
		fmt.Fprintf(tw, "power\t%s\n", absentText(s.Power.Absent))
	}
	for _, z := range s.Power.Zones {
		fmt.Fprintf(tw, "power %s\t%.1f W\n", z.Zone, z.Watts)
	}
	if s.MemoryBandwidth.Absent != "" {
		fmt.Fprintf(tw, "memory bandwidth\t%s\n", absentText(s.MemoryBandwidth.Absent))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "iface\trx bytes\trx packets\trx drops\trx errors\ttx bytes\ttx packets\ttx drops\ttx errors\t")
	for _, l := range r.Links {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", l.Iface, l.RxBytes, l.RxPackets, l.RxDropped, l.RxErrors,
			l.TxBytes, l.TxPackets, l.TxDropped, l.TxErrors)
	}
	return tw.Flush()
}
