package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// CollHeader is what the banner above an nccl-tests table says about the
// run.
type CollHeader struct {
	// Test names the operation ("allreduce").
	Test string
	// MinBytes .. MaxBytes by StepFactor (or StepBytes), Warmup, Iters
	// and Check as CollOptions has them (after defaults).
	MinBytes, MaxBytes    int64
	StepFactor, StepBytes int64
	Warmup, Iters, Check  int
	Blocking              bool
	// Ranks describes every rank (nccl-tests' "Using devices" lines).
	Ranks []CollRank
}

// CollRank is one rank of the banner.
type CollRank struct {
	Rank      int
	Pid       int
	Host      string // lab host ("h0")
	Addr      string // its address
	Transport string // what the rank's transport reports ("rocev2/af_xdp")
}

// HeaderFor fills a CollHeader from the options a run used.
func (o CollOptions) HeaderFor(ranks []CollRank) CollHeader {
	d := o
	_ = d.setDefaults(max(len(ranks), d.Root+1))
	return CollHeader{Test: o.Op.String(), MinBytes: d.MinBytes, MaxBytes: d.MaxBytes, StepFactor: d.StepFactor,
		StepBytes: d.StepBytes, Warmup: max(d.Warmup, 0), Iters: d.Iters, Check: d.Check, Blocking: d.Blocking, Ranks: ranks}
}

// WriteCollHeader prints nccl-tests' banner and column headers.
func WriteCollHeader(w io.Writer, h CollHeader) {
	step, unit := h.StepBytes, "bytes"
	if h.StepFactor > 1 {
		step, unit = h.StepFactor, "factor"
	}
	fmt.Fprintf(w, "# onetdp %s: nThread 1 nGpus 1 minBytes %d maxBytes %d step: %d(%s) warmup iters: %d iters: %d agg iters: 1 validation: %d graph: 0\n",
		h.Test, h.MinBytes, h.MaxBytes, step, unit, h.Warmup, h.Iters, h.Check)
	if h.Blocking {
		fmt.Fprintf(w, "# Blocking Enabled: wait for completion and barrier after each collective \n")
	}
	fmt.Fprintf(w, "#\n")
	if len(h.Ranks) > 0 {
		fmt.Fprintf(w, "# Using devices\n")
		for _, r := range h.Ranks {
			fmt.Fprintf(w, "#  Rank %2d Group  0 Pid %6d on %10s device %2d [%s] %s\n", r.Rank, r.Pid, r.Host, r.Rank, r.Addr, r.Transport)
		}
		fmt.Fprintf(w, "#\n")
	}
	fmt.Fprintf(w, "# %10s  %12s  %8s  %6s  %6s           out-of-place                       in-place          \n", "", "", "", "", "")
	fmt.Fprintf(w, "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s %6s  %7s  %6s  %6s %6s\n",
		"size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong")
	fmt.Fprintf(w, "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %5s  %7s  %6s  %6s  %5s\n",
		"(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "")
}

// CollTimeString formats microseconds as nccl-tests does: two decimals
// under 100 us, one under 10 ms, none above.
func CollTimeString(us float64) string {
	switch {
	case us >= 10000:
		return fmt.Sprintf("%7.0f", us)
	case us >= 100:
		return fmt.Sprintf("%7.1f", us)
	}
	return fmt.Sprintf("%7.2f", us)
}

// WriteCollRow prints one row; a placement not measured prints N/A, and
// #wrong prints N/A when not checked.
func WriteCollRow(w io.Writer, r CollResult) {
	fmt.Fprintf(w, "%12d  %12d  %8s  %6s  %6d", r.Size, r.Count, r.Type, r.Redop, r.Root)
	for _, t := range []*CollTiming{r.OutOfPlace, r.InPlace} {
		if t == nil {
			fmt.Fprintf(w, "  %7s  %6s  %6s  %5s", "N/A", "N/A", "N/A", "N/A")
			continue
		}
		wrong := "N/A"
		if t.Wrong >= 0 {
			wrong = fmt.Sprintf("%d", t.Wrong)
		}
		fmt.Fprintf(w, "  %7s  %6.2f  %6.2f  %5s", CollTimeString(t.TimeUs), t.AlgBW, t.BusBW, wrong)
	}
	fmt.Fprintf(w, "\n")
}

// CollSummary is nccl-tests' footer: how many measurements had wrong
// elements, and the bus bandwidth averaged over every measurement.
func CollSummary(rows []CollResult) (failed int, avgBusBW float64) {
	var sum float64
	var count int
	for _, r := range rows {
		for _, t := range []*CollTiming{r.OutOfPlace, r.InPlace} {
			if t == nil {
				continue
			}
			if t.Wrong > 0 {
				failed++
			}
			sum += t.BusBW
			count++
		}
	}
	if count > 0 {
		avgBusBW = sum / float64(count)
	}
	return failed, avgBusBW
}

// WriteCollFooter prints nccl-tests' footer for rows.
func WriteCollFooter(w io.Writer, rows []CollResult) {
	failed, avg := CollSummary(rows)
	status := "OK"
	if failed > 0 {
		status = "FAILED"
	}
	fmt.Fprintf(w, "# Out of bounds values : %d %s\n", failed, status)
	fmt.Fprintf(w, "# Avg bus bandwidth    : %.6g \n", avg)
	fmt.Fprintf(w, "#\n")
}

// WriteCollTable prints a whole nccl-tests report: banner, rows, footer.
func WriteCollTable(w io.Writer, h CollHeader, rows []CollResult) {
	WriteCollHeader(w, h)
	for _, r := range rows {
		WriteCollRow(w, r)
	}
	WriteCollFooter(w, rows)
}

// collPick returns the timing to compare: out of place when the row has
// it (and want allows), else in place.
func collPick(r CollResult, inPlace bool) *CollTiming {
	if inPlace {
		return r.InPlace
	}
	return r.OutOfPlace
}

// collComparable picks the placement two rows both measured, preferring
// out of place.
func collComparable(a, b CollResult) (ta, tb *CollTiming, inPlace bool) {
	if a.OutOfPlace != nil && b.OutOfPlace != nil {
		return a.OutOfPlace, b.OutOfPlace, false
	}
	if a.InPlace != nil && b.InPlace != nil {
		return a.InPlace, b.InPlace, true
	}
	return nil, nil, false
}

type collKey struct {
	test  string
	ranks int
}

// WriteCollSideBySide prints, per operation and rank count, one line per
// size with every transport's (ours and the peers') bus bandwidth and
// time, out of place where measured (else in place, marked *).
func WriteCollSideBySide(w io.Writer, rows []CollResult) {
	var keys []collKey
	byKey := map[collKey][]CollResult{}
	for _, r := range rows {
		k := collKey{r.Test, r.Ranks}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], r)
	}
	for _, k := range keys {
		rs := byKey[k]
		var names []string
		seen := map[string]bool{}
		for _, r := range rs {
			if !seen[r.Transport] {
				seen[r.Transport] = true
				names = append(names, r.Transport)
			}
		}
		var sizes []int64
		cell := map[string]map[int64]CollResult{}
		for _, r := range rs {
			if cell[r.Transport] == nil {
				cell[r.Transport] = map[int64]CollResult{}
			}
			if _, ok := cell[names[0]][r.Size]; !ok && r.Transport == names[0] {
				sizes = append(sizes, r.Size)
			}
			cell[r.Transport][r.Size] = r
		}
		for _, r := range rs { // sizes only a peer measured
			if _, ok := cell[names[0]][r.Size]; !ok && !containsSize(sizes, r.Size) {
				sizes = append(sizes, r.Size)
			}
		}
		fmt.Fprintf(w, "# %s, %d ranks: time (us) and busbw (GB/s) side by side; * = in place (the peer has no out-of-place call)\n", k.test, k.ranks)
		fmt.Fprintf(w, "# %10s", "size")
		for _, n := range names {
			fmt.Fprintf(w, "  %20s", truncate(n, 20))
		}
		fmt.Fprintf(w, "\n")
		for _, s := range sizes {
			fmt.Fprintf(w, "%12d", s)
			for _, n := range names {
				r, ok := cell[n][s]
				t := collPick(r, false)
				star := " "
				if t == nil {
					t, star = collPick(r, true), "*"
				}
				if !ok || t == nil {
					fmt.Fprintf(w, "  %20s", "-")
					continue
				}
				fmt.Fprintf(w, "  %sus%s %9.3f", CollTimeString(t.TimeUs), star, t.BusBW)
			}
			fmt.Fprintf(w, "\n")
		}
	}
}

func containsSize(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// CollRatio is our transport against one peer for one operation and rank
// count: the bus bandwidth ratio over the large sizes and the time ratio
// at the smallest size.
type CollRatio struct {
	Test      string `json:"test"`
	Ranks     int    `json:"ranks"`
	Transport string `json:"transport"`
	Peer      string `json:"peer"`
	// BusBWMin, BusBWGeo and BusBWMax summarize ours/peer busbw over the
	// sizes both measured in [LargeFrom, LargeTo]; Sizes counts them.
	LargeFrom int64   `json:"large_from"`
	LargeTo   int64   `json:"large_to"`
	BusBWMin  float64 `json:"busbw_ratio_min"`
	BusBWGeo  float64 `json:"busbw_ratio_geomean"`
	BusBWMax  float64 `json:"busbw_ratio_max"`
	Sizes     int     `json:"sizes"`
	// SmallSize is the smallest size both measured; SmallTime ours/peer
	// time there (lower is better).
	SmallSize int64   `json:"small_size"`
	SmallTime float64 `json:"small_time_ratio"`
	// Rounds, when the rows are medians of several rounds
	// (CollRatiosOverRounds), is how many rounds gave a ratio; the Lo and
	// Hi fields are the lowest and highest of them.
	Rounds      int     `json:"rounds,omitempty"`
	BusBWGeoLo  float64 `json:"busbw_ratio_geomean_lo,omitempty"`
	BusBWGeoHi  float64 `json:"busbw_ratio_geomean_hi,omitempty"`
	SmallTimeLo float64 `json:"small_time_ratio_lo,omitempty"`
	SmallTimeHi float64 `json:"small_time_ratio_hi,omitempty"`
}

// CollRatios compares every non-peer transport with every peer, per
// operation and rank count: busbw over [from, to] bytes and time at the
// smallest common size.
func CollRatios(rows []CollResult, from, to int64) []CollRatio {
	type tk struct {
		collKey
		transport string
	}
	idx := map[tk]map[int64]CollResult{}
	var ours, peers []tk
	for _, r := range rows {
		k := tk{collKey{r.Test, r.Ranks}, r.Transport}
		if idx[k] == nil {
			idx[k] = map[int64]CollResult{}
			if r.Peer {
				peers = append(peers, k)
			} else {
				ours = append(ours, k)
			}
		}
		idx[k][r.Size] = r
	}
	var out []CollRatio
	for _, o := range ours {
		for _, p := range peers {
			if p.collKey != o.collKey {
				continue
			}
			cr := CollRatio{Test: o.test, Ranks: o.ranks, Transport: o.transport, Peer: p.transport, LargeFrom: from, LargeTo: to, BusBWMin: -1}
			logSum := 0.0
			for size, a := range idx[o] {
				b, ok := idx[p][size]
				if !ok {
					continue
				}
				ta, tb, _ := collComparable(a, b)
				if ta == nil {
					continue
				}
				if cr.SmallSize == 0 || size < cr.SmallSize {
					cr.SmallSize = size
					if tb.TimeUs > 0 {
						cr.SmallTime = ta.TimeUs / tb.TimeUs
					}
				}
				if size < from || size > to || tb.BusBW <= 0 || ta.BusBW <= 0 {
					continue
				}
				q := ta.BusBW / tb.BusBW
				cr.Sizes++
				logSum += math.Log(q)
				if cr.BusBWMin < 0 || q < cr.BusBWMin {
					cr.BusBWMin = q
				}
				cr.BusBWMax = max(cr.BusBWMax, q)
			}
			if cr.Sizes > 0 {
				cr.BusBWGeo = math.Exp(logSum / float64(cr.Sizes))
			} else {
				cr.BusBWMin = 0
			}
			out = append(out, cr)
		}
	}
	return out
}

// WriteCollRatios prints one line per CollRatio with the DESIGN targets
// and, for medians of several rounds, the range of the rounds' ratios.
func WriteCollRatios(w io.Writer, ratios []CollRatio) {
	for _, r := range ratios {
		spread := func(lo, hi float64) []string {
			if r.Rounds < 2 {
				return nil
			}
			return []string{fmt.Sprintf("%d rounds %.2fx..%.2fx", r.Rounds, lo, hi)}
		}
		var parts []string
		if r.Sizes > 0 {
			notes := []string{fmt.Sprintf("min %.2fx, max %.2fx, %d sizes", r.BusBWMin, r.BusBWMax, r.Sizes)}
			notes = append(notes, spread(r.BusBWGeoLo, r.BusBWGeoHi)...)
			notes = append(notes, "target >= 1.5x the best peer")
			parts = append(parts, fmt.Sprintf("busbw %s..%s: %.2fx geomean (%s)",
				sizeString(r.LargeFrom), sizeString(r.LargeTo), r.BusBWGeo, strings.Join(notes, "; ")))
		}
		if r.SmallSize > 0 {
			notes := spread(r.SmallTimeLo, r.SmallTimeHi)
			if strings.HasPrefix(r.Peer, "openmpi") {
				notes = append(notes, "target <= 0.5x Open MPI")
			}
			part := fmt.Sprintf("time at %d B: %.2fx", r.SmallSize, r.SmallTime)
			if len(notes) > 0 {
				part += " (" + strings.Join(notes, "; ") + ")"
			}
			parts = append(parts, part)
		}
		if len(parts) == 0 {
			parts = append(parts, "no common sizes")
		}
		fmt.Fprintf(w, "%s %d ranks: %s vs %s: %s\n", r.Test, r.Ranks, r.Transport, r.Peer, strings.Join(parts, "; "))
	}
}

func sizeString(b int64) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}
