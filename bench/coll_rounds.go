package bench

import (
	"cmp"
	"slices"
)

// Repeated runs. On a shared machine one sweep's figures drift with the
// load of the moment (the same Open MPI broadcast measured 1.9 and
// 1.1 GB/s minutes apart on the build VM), so that a ratio between two
// sweeps run one after the other says as much about the moment as about
// the transports. Running every transport and peer in rounds, alternating,
// and comparing medians, with the spread of the per-round ratios beside
// them, keeps that drift out of the comparison.

// CollMedian combines the rows of several rounds (each round every
// transport's rows, in the same order) into one row per transport, test,
// rank count and size: the median time per placement, the bandwidths of
// that time, the most wrong elements any round counted. Rows in the first
// round set the order; a row missing from some rounds takes the median of
// the rounds that have it.
func CollMedian(rounds [][]CollResult) []CollResult {
	type key struct {
		test, transport string
		ranks           int
		size            int64
	}
	var order []key
	byKey := map[key][]CollResult{}
	for _, rows := range rounds {
		for _, r := range rows {
			k := key{r.Test, r.Transport, r.Ranks, r.Size}
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], r)
		}
	}
	out := make([]CollResult, 0, len(order))
	for _, k := range order {
		rs := byKey[k]
		m := rs[0]
		m.OutOfPlace = medianTiming(rs, func(r CollResult) *CollTiming { return r.OutOfPlace })
		m.InPlace = medianTiming(rs, func(r CollResult) *CollTiming { return r.InPlace })
		out = append(out, m)
	}
	return out
}

// medianTiming is the median of the timings pick finds in rs (nil when
// none has one). Bandwidth is bytes over time, so the median time's
// bandwidths follow from any round's: bw × time is the same in all.
func medianTiming(rs []CollResult, pick func(CollResult) *CollTiming) *CollTiming {
	var ts []CollTiming
	for _, r := range rs {
		if t := pick(r); t != nil {
			ts = append(ts, *t)
		}
	}
	if len(ts) == 0 {
		return nil
	}
	wrong := int64(-1)
	for _, t := range ts {
		wrong = max(wrong, t.Wrong)
	}
	slices.SortFunc(ts, func(a, b CollTiming) int { return cmp.Compare(a.TimeUs, b.TimeUs) })
	ref := ts[0]
	med := ts[len(ts)/2].TimeUs
	if len(ts)%2 == 0 {
		med = (ts[len(ts)/2-1].TimeUs + ts[len(ts)/2].TimeUs) / 2
	}
	m := CollTiming{TimeUs: med, Wrong: wrong}
	if med > 0 {
		m.AlgBW = ref.AlgBW * ref.TimeUs / med
		m.BusBW = ref.BusBW * ref.TimeUs / med
	}
	return &m
}

// CollRatiosOverRounds is CollRatios of the median rows, with the lowest
// and highest busbw geomean and small-size time ratio that the rounds
// gave one by one (CollRatio.Rounds and the Lo/Hi fields).
func CollRatiosOverRounds(rounds [][]CollResult, from, to int64) []CollRatio {
	out := CollRatios(CollMedian(rounds), from, to)
	if len(rounds) < 2 {
		return out
	}
	type key struct {
		test, transport, peer string
		ranks                 int
	}
	idx := map[key]int{}
	for i, r := range out {
		idx[key{r.Test, r.Transport, r.Peer, r.Ranks}] = i
	}
	for _, rows := range rounds {
		for _, r := range CollRatios(rows, from, to) {
			i, ok := idx[key{r.Test, r.Transport, r.Peer, r.Ranks}]
			if !ok {
				continue
			}
			c := &out[i]
			if c.Rounds == 0 {
				c.BusBWGeoLo, c.BusBWGeoHi = r.BusBWGeo, r.BusBWGeo
				c.SmallTimeLo, c.SmallTimeHi = r.SmallTime, r.SmallTime
			}
			c.Rounds++
			c.BusBWGeoLo, c.BusBWGeoHi = min(c.BusBWGeoLo, r.BusBWGeo), max(c.BusBWGeoHi, r.BusBWGeo)
			c.SmallTimeLo, c.SmallTimeHi = min(c.SmallTimeLo, r.SmallTime), max(c.SmallTimeHi, r.SmallTime)
		}
	}
	return out
}
