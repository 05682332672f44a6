package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/opennetworks/onetdp/agent"
	"github.com/opennetworks/onetdp/telemetry"
	"github.com/opennetworks/onetdp/telemetry/system"
)

// topLinkCounters is one interface's kernel byte counters, from the
// onet_link_* metrics when the agent exports them, else from local netlink.
type topLinkCounters struct {
	RxBytes, TxBytes uint64
}

// topSample is everything one poll of `onetdp top` read. Fields whose read
// failed keep the error instead of a zero value.
type topSample struct {
	At         time.Time
	Status     *agent.Status
	StatusErr  error
	Flows      []agent.Flow
	Metrics    map[string]*dto.MetricFamily
	MetricsErr error
	Links      map[string]topLinkCounters
	CPU        []system.CPUTimes
}

// flowSort is the order of the top-flows table; 's' cycles it.
type flowSort int

const (
	sortByRate flowSort = iota
	sortByBytes
	sortByPackets
	numFlowSorts
)

func (s flowSort) String() string {
	return [...]string{"bytes/s", "bytes", "packets"}[s]
}

// topClassRate is one class's packet rate on one interface.
type topClassRate struct {
	Class   string
	Packets uint64
	PPS     float64
}

// topIface is one interface's row.
type topIface struct {
	Name           string
	RxBps, TxBps   float64 // bytes per second; NaN when unknown
	Classes        []topClassRate
	CE, CEPerSec   float64
	Mode           string
	Attached       bool
	RedirFailDelta uint64
	FaultDropDelta uint64
}

// topFlow is one flow's row.
type topFlow struct {
	agent.Flow
	BytesPerSec float64
}

// topLatency is one histogram's percentiles in seconds (one row per
// family, or per op label value where the family has one).
type topLatency struct {
	Name          string
	Count         uint64
	P50, P95, P99 float64
}

// topView is what the renderer draws: computed from two samples by
// computeTopView, pure data.
type topView struct {
	At        time.Time
	Interval  time.Duration
	Ifaces    []topIface
	Flows     []topFlow
	Sort      flowSort
	CEPerSec  float64
	CNPPerSec float64 // NaN when no RoCEv2 metrics
	// Congestion is the agent's congestion detector (nil for an older
	// agent): its figures, thresholds and warnings.
	Congestion *telemetry.CongestionState
	// Rings are the AF_XDP gauges summed over ports, when exported.
	Rings    *topRings
	Latency  []topLatency
	CPU      []system.CoreUtilization
	Warnings []string
	Paused   bool
}

// topRings are the onet_afxdp_* ring gauges summed over every port.
type topRings struct {
	RxRing, RingSize, SendQueue, UMEMFree, UMEMFrames float64
}

// ceWarnRatio is the CE share of received packets above which top warns
// when the agent has no congestion detector of its own.
const ceWarnRatio = 0.01

// computeTopView turns the previous and current samples into rates. prev may
// be nil (first frame: totals only, rates zero).
func computeTopView(prev, cur *topSample, sortBy flowSort, maxFlows int) topView {
	v := topView{At: cur.At, Sort: sortBy, CNPPerSec: math.NaN()}
	var dt float64
	if prev != nil {
		v.Interval = cur.At.Sub(prev.At)
		dt = v.Interval.Seconds()
	}
	rate := func(d uint64) float64 {
		if dt <= 0 {
			return 0
		}
		return float64(d) / dt
	}
	delta := func(now, before uint64) uint64 {
		if now < before { // counter reset (agent restarted with --unpin-on-exit)
			return now
		}
		return now - before
	}
	if cur.StatusErr != nil {
		v.Warnings = append(v.Warnings, "agent unreachable: "+cur.StatusErr.Error())
	}
	if cur.MetricsErr != nil {
		v.Warnings = append(v.Warnings, "metrics unreachable: "+cur.MetricsErr.Error())
	}
	var totPkts, totCE uint64
	if cur.Status != nil {
		for _, is := range cur.Status.Interfaces {
			ti := topIface{Name: is.Name, Mode: is.Mode, Attached: is.Attached, RxBps: math.NaN(), TxBps: math.NaN()}
			var before *agent.InterfaceStatus
			if prev != nil && prev.Status != nil {
				for i := range prev.Status.Interfaces {
					if prev.Status.Interfaces[i].Name == is.Name {
						before = &prev.Status.Interfaces[i]
					}
				}
			}
			if lc, ok := cur.Links[is.Name]; ok {
				ti.RxBps, ti.TxBps = 0, 0
				if pl, ok := prevLinks(prev)[is.Name]; ok && dt > 0 {
					ti.RxBps, ti.TxBps = rate(delta(lc.RxBytes, pl.RxBytes)), rate(delta(lc.TxBytes, pl.TxBytes))
				}
			}
			names := make([]string, 0, len(is.Classes))
			for n := range is.Classes {
				names = append(names, n)
			}
			sort.Strings(names)
			var ifPkts, ifCE uint64
			for _, n := range names {
				c := is.Classes[n]
				var b agent.ClassStatus
				if before != nil {
					b = before.Classes[n]
				}
				dp := uint64(0)
				if before != nil {
					dp = delta(c.Packets, b.Packets)
					ti.RedirFailDelta += delta(c.RedirectFail, b.RedirectFail)
					ti.FaultDropDelta += delta(c.FaultDrop, b.FaultDrop)
					ifCE += delta(c.CE, b.CE)
				}
				ifPkts += dp
				ti.CE += float64(c.CE)
				ti.Classes = append(ti.Classes, topClassRate{Class: n, Packets: c.Packets, PPS: rate(dp)})
			}
			ti.CEPerSec = rate(ifCE)
			totPkts += ifPkts
			totCE += ifCE
			if !is.Attached {
				v.Warnings = append(v.Warnings, fmt.Sprintf("%s: dispatcher not attached", is.Name))
			}
			if ti.RedirFailDelta > 0 {
				v.Warnings = append(v.Warnings, fmt.Sprintf("%s: redirect failures rising (+%d)", is.Name, ti.RedirFailDelta))
			}
			if ti.FaultDropDelta > 0 {
				v.Warnings = append(v.Warnings, fmt.Sprintf("%s: fault drops rising (+%d)", is.Name, ti.FaultDropDelta))
			}
			v.Ifaces = append(v.Ifaces, ti)
		}
	}
	v.CEPerSec = rate(totCE)
	if cur.Status != nil && cur.Status.Congestion != nil {
		// The agent's detector judges CE, rings and retransmissions
		// against its configured thresholds.
		v.Congestion = cur.Status.Congestion
		for _, w := range v.Congestion.Warnings {
			v.Warnings = append(v.Warnings, "congestion: "+w.Message)
		}
	} else if totPkts > 0 && float64(totCE)/float64(totPkts) > ceWarnRatio {
		v.Warnings = append(v.Warnings, fmt.Sprintf("CE ratio %.1f %% above %.0f %%", 100*float64(totCE)/float64(totPkts), 100*ceWarnRatio))
	}
	if cur.Metrics != nil {
		n, okN := sumCounter(cur.Metrics, "onet_rocev2_cnps_sent_total")
		r, okR := sumCounter(cur.Metrics, "onet_rocev2_cnps_received_total")
		if okN || okR {
			v.CNPPerSec = 0
			if prev != nil && prev.Metrics != nil && dt > 0 {
				pn, _ := sumCounter(prev.Metrics, "onet_rocev2_cnps_sent_total")
				pr, _ := sumCounter(prev.Metrics, "onet_rocev2_cnps_received_total")
				v.CNPPerSec = math.Max(0, (n+r-pn-pr)/dt)
			}
		}
		v.Latency = latencies(prevMetrics(prev), cur.Metrics)
		if rx, ok := sumCounter(cur.Metrics, "onet_afxdp_rx_ring_entries"); ok {
			r := &topRings{RxRing: rx}
			r.RingSize, _ = sumCounter(cur.Metrics, "onet_afxdp_ring_size_entries")
			r.SendQueue, _ = sumCounter(cur.Metrics, "onet_afxdp_send_queue_depth_frames")
			r.UMEMFree, _ = sumCounter(cur.Metrics, "onet_afxdp_umem_free_frames")
			r.UMEMFrames, _ = sumCounter(cur.Metrics, "onet_afxdp_umem_frames")
			v.Rings = r
		}
	}
	v.Flows = flowRates(prev, cur, dt, sortBy, maxFlows)
	if prev != nil && len(prev.CPU) > 0 && len(cur.CPU) > 0 {
		v.CPU = system.CPUUtilization(prev.CPU, cur.CPU)
	}
	return v
}

func prevLinks(prev *topSample) map[string]topLinkCounters {
	if prev == nil {
		return nil
	}
	return prev.Links
}

func prevMetrics(prev *topSample) map[string]*dto.MetricFamily {
	if prev == nil {
		return nil
	}
	return prev.Metrics
}

func flowKey(f *agent.Flow) string {
	return fmt.Sprintf("%s|%s|%s|%s|%d|%d|%d", f.Iface, f.Class, f.Src, f.Dst, f.SrcPort, f.DstPort, f.QP)
}

func flowRates(prev, cur *topSample, dt float64, sortBy flowSort, max int) []topFlow {
	before := map[string]uint64{}
	if prev != nil {
		for i := range prev.Flows {
			before[flowKey(&prev.Flows[i])] = prev.Flows[i].Bytes
		}
	}
	out := make([]topFlow, 0, len(cur.Flows))
	for i := range cur.Flows {
		f := topFlow{Flow: cur.Flows[i]}
		if b, ok := before[flowKey(&f.Flow)]; ok && dt > 0 && f.Bytes >= b {
			f.BytesPerSec = float64(f.Bytes-b) / dt
		}
		out = append(out, f)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch sortBy {
		case sortByBytes:
			return a.Bytes > b.Bytes
		case sortByPackets:
			return a.Packets > b.Packets
		}
		if a.BytesPerSec != b.BytesPerSec {
			return a.BytesPerSec > b.BytesPerSec
		}
		return a.Bytes > b.Bytes
	})
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out
}

// sumCounter adds every series of a counter (or untyped) family.
func sumCounter(m map[string]*dto.MetricFamily, name string) (float64, bool) {
	mf, ok := m[name]
	if !ok {
		return 0, false
	}
	var s float64
	for _, x := range mf.GetMetric() {
		switch {
		case x.Counter != nil:
			s += x.GetCounter().GetValue()
		case x.Untyped != nil:
			s += x.GetUntyped().GetValue()
		case x.Gauge != nil:
			s += x.GetGauge().GetValue()
		}
	}
	return s, true
}

// latencies computes percentiles of every histogram family named *_seconds,
// over the interval when prev has the family, else over all time. Series of
// one family are merged, except that each value of an op label gets its own
// row (onet_rocev2_operation_latency_seconds write, read, ...).
func latencies(prev, cur map[string]*dto.MetricFamily) []topLatency {
	var out []topLatency
	names := make([]string, 0, len(cur))
	for n, mf := range cur {
		if mf.GetType() == dto.MetricType_HISTOGRAM && strings.HasSuffix(n, "_seconds") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var rows []string
	curRows, prevRows := map[string]*dto.MetricFamily{}, map[string]*dto.MetricFamily{}
	for _, n := range names {
		for _, r := range splitByOp(n, cur[n]) {
			rows = append(rows, r.name)
			curRows[r.name] = r.mf
		}
		if pmf, ok := prev[n]; ok {
			for _, r := range splitByOp(n, pmf) {
				prevRows[r.name] = r.mf
			}
		}
	}
	for _, n := range rows {
		bounds, counts, total := mergeHistogram(curRows[n])
		if pmf, ok := prevRows[n]; ok {
			pb, pc, pt := mergeHistogram(pmf)
			if len(pb) == len(bounds) && pt <= total {
				for i := range counts {
					if pc[i] <= counts[i] {
						counts[i] -= pc[i]
					}
				}
				total -= pt
			}
		}
		if total == 0 {
			continue
		}
		out = append(out, topLatency{Name: n, Count: total,
			P50: histQuantile(0.50, bounds, counts, total),
			P95: histQuantile(0.95, bounds, counts, total),
			P99: histQuantile(0.99, bounds, counts, total)})
	}
	return out
}

type opRow struct {
	name string
	mf   *dto.MetricFamily
}

// splitByOp splits a family into one family per value of its op label, in
// label order; a family without one stays whole, named n.
func splitByOp(n string, mf *dto.MetricFamily) []opRow {
	by := map[string][]*dto.Metric{}
	var ops []string
	for _, m := range mf.GetMetric() {
		op := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "op" {
				op = l.GetValue()
			}
		}
		if _, ok := by[op]; !ok {
			ops = append(ops, op)
		}
		by[op] = append(by[op], m)
	}
	sort.Strings(ops)
	out := make([]opRow, 0, len(ops))
	for _, op := range ops {
		name := n
		if op != "" {
			name += " " + op
		}
		out = append(out, opRow{name, &dto.MetricFamily{Name: mf.Name, Type: mf.Type, Metric: by[op]}})
	}
	return out
}

// mergeHistogram sums the cumulative bucket counts of every series with the
// first series' bounds (series with other bounds are skipped).
func mergeHistogram(mf *dto.MetricFamily) (bounds []float64, counts []uint64, total uint64) {
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		bs := h.GetBucket()
		if bounds == nil {
			for _, b := range bs {
				bounds = append(bounds, b.GetUpperBound())
			}
			counts = make([]uint64, len(bs))
		}
		if len(bs) != len(bounds) {
			continue
		}
		for i, b := range bs {
			counts[i] += b.GetCumulativeCount()
		}
		total += h.GetSampleCount()
	}
	return bounds, counts, total
}

// histQuantile interpolates linearly inside the bucket holding quantile q
// (Prometheus histogram_quantile's rule); above the last finite bound it
// returns that bound.
func histQuantile(q float64, bounds []float64, cum []uint64, total uint64) float64 {
	if total == 0 || len(bounds) == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	lower, prevCount := 0.0, 0.0
	for i, ub := range bounds {
		c := float64(cum[i])
		if c >= rank {
			if math.IsInf(ub, 1) {
				return lower
			}
			if c == prevCount {
				return ub
			}
			return lower + (ub-lower)*(rank-prevCount)/(c-prevCount)
		}
		if !math.IsInf(ub, 1) {
			lower = ub
		}
		prevCount = c
	}
	return lower
}
