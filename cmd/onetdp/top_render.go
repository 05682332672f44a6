package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/charmbracelet/lipgloss"
)

var (
	topTitle = lipgloss.NewStyle().Bold(true)
	topHead  = lipgloss.NewStyle().Bold(true).Underline(true)
	topWarn  = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("9"))
	topDim   = lipgloss.NewStyle().Faint(true)
)

// humanRate formats a per-second quantity with SI prefixes ("1.25 M").
func humanRate(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	units := []string{"", "k", "M", "G", "T"}
	i := 0
	for math.Abs(v) >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f %s", v, units[i])
}

// humanUnit is humanRate followed by unit, spaced as "0 B/s", "1.50 kB/s"
// and "50/s".
func humanUnit(v float64, unit string) string {
	h := humanRate(v)
	if h == "-" || (!strings.Contains(h, " ") && !strings.HasPrefix(unit, "/")) {
		return h + " " + unit
	}
	return h + unit
}

// humanSeconds formats a latency.
func humanSeconds(s float64) string {
	switch {
	case math.IsNaN(s):
		return "-"
	case s < 1e-6:
		return fmt.Sprintf("%.0f ns", s*1e9)
	case s < 1e-3:
		return fmt.Sprintf("%.1f us", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.2f ms", s*1e3)
	}
	return fmt.Sprintf("%.2f s", s)
}

// cpuBar draws ratio (0..1) as a bar of width cells.
func cpuBar(ratio float64, width int) string {
	if ratio < 0 || math.IsNaN(ratio) {
		ratio = 0
	}
	if ratio > 1 {
		ratio = 1
	}
	n := int(math.Round(ratio * float64(width)))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// renderTop draws one frame. It is pure: the same view gives the same text.
func renderTop(v topView) string {
	var b strings.Builder
	state := ""
	if v.Paused {
		state = "  PAUSED"
	}
	interval := "first sample"
	if v.Interval > 0 {
		interval = "over " + v.Interval.Round(1e6).String()
	}
	fmt.Fprintf(&b, "%s  %s  (%s)%s\n", topTitle.Render("onetdp top"), v.At.Format("15:04:05"), interval, state)
	fmt.Fprintf(&b, "%s\n", topDim.Render("q quit  p pause  s sort flows (now by "+v.Sort.String()+")"))

	b.WriteString("\n" + topHead.Render("Interfaces") + "\n")
	if len(v.Ifaces) == 0 {
		b.WriteString("  no interfaces (agent unreachable?)\n")
	}
	for _, ti := range v.Ifaces {
		att := "attached"
		if !ti.Attached {
			att = "NOT attached"
		}
		fmt.Fprintf(&b, "  %-10s %-8s %-12s rx %s  tx %s  CE %s\n", ti.Name, ti.Mode, att,
			humanUnit(ti.RxBps, "B/s"), humanUnit(ti.TxBps, "B/s"), humanUnit(ti.CEPerSec, "/s"))
		for _, c := range ti.Classes {
			fmt.Fprintf(&b, "    %-8s packets %-12d %s\n", c.Class, c.Packets, humanUnit(c.PPS, "pkt/s"))
		}
	}

	cnp := "- (no RoCEv2 metrics)"
	if !math.IsNaN(v.CNPPerSec) {
		cnp = humanUnit(v.CNPPerSec, "/s")
	}
	fmt.Fprintf(&b, "\n%s  CE marks %s   CNPs %s\n", topHead.Render("Congestion"), humanUnit(v.CEPerSec, "/s"), cnp)
	if c := v.Congestion; c != nil {
		var figs []string
		fig := func(name string, p *float64, th float64) {
			if p != nil {
				figs = append(figs, fmt.Sprintf("%s %.2f %% (max %.2f %%)", name, 100**p, 100*th))
			}
		}
		fig("CE ratio", c.CERatio, c.Thresholds.CERatio)
		fig("rx ring", c.RingOccupancy, c.Thresholds.RingOccupancy)
		fig("retransmits", c.RetransmitRatio, c.Thresholds.RetransmitRatio)
		if len(figs) == 0 {
			figs = append(figs, "no traffic measured")
		}
		b.WriteString("  agent: " + strings.Join(figs, "   ") + "\n")
	}
	if r := v.Rings; r != nil {
		fmt.Fprintf(&b, "  AF_XDP: rx ring %.0f/%.0f   send queue %.0f frames   UMEM free %.0f/%.0f frames\n",
			r.RxRing, r.RingSize, r.SendQueue, r.UMEMFree, r.UMEMFrames)
	}

	b.WriteString("\n" + topHead.Render("Top flows") + "\n")
	if len(v.Flows) == 0 {
		b.WriteString("  no flows\n")
	} else {
		fmt.Fprintf(&b, "  %-8s %-6s %-40s %12s %12s %10s %6s\n", "iface", "class", "flow", "bytes/s", "bytes", "packets", "CE")
		for _, f := range v.Flows {
			flow := fmt.Sprintf("%s:%d > %s:%d", f.Src, f.SrcPort, f.Dst, f.DstPort)
			if f.QP != 0 {
				flow += fmt.Sprintf(" qp %d", f.QP)
			}
			fmt.Fprintf(&b, "  %-8s %-6s %-40s %12s %12d %10d %6d\n", f.Iface, f.Class, flow, humanRate(f.BytesPerSec), f.Bytes, f.Packets, f.CE)
		}
	}

	b.WriteString("\n" + topHead.Render("Latency") + "\n")
	if len(v.Latency) == 0 {
		b.WriteString("  no latency data\n")
	}
	for _, l := range v.Latency {
		fmt.Fprintf(&b, "  %-44s n %-8d p50 %-10s p95 %-10s p99 %s\n", l.Name, l.Count, humanSeconds(l.P50), humanSeconds(l.P95), humanSeconds(l.P99))
	}

	b.WriteString("\n" + topHead.Render("CPU") + "\n")
	if len(v.CPU) == 0 {
		b.WriteString("  (needs two samples)\n")
	}
	for _, c := range v.CPU {
		fmt.Fprintf(&b, "  cpu%-3d %s %5.1f %%\n", c.CPU, cpuBar(c.Ratio, 30), 100*c.Ratio)
	}

	b.WriteString("\n" + topHead.Render("Warnings") + "\n")
	if len(v.Warnings) == 0 {
		b.WriteString("  none\n")
	}
	for _, w := range v.Warnings {
		b.WriteString("  " + topWarn.Render("! "+w) + "\n")
	}
	return b.String()
}
