package bench

import (
	"bytes"
	"strings"
	"testing"
)

// scaled is rows with every time multiplied by f (bandwidths divided).
func scaled(rows []CollResult, f float64) []CollResult {
	out := make([]CollResult, len(rows))
	for i, r := range rows {
		for _, t := range []**CollTiming{&r.OutOfPlace, &r.InPlace} {
			if *t != nil {
				c := **t
				c.TimeUs, c.AlgBW, c.BusBW = c.TimeUs*f, c.AlgBW/f, c.BusBW/f
				*t = &c
			}
		}
		out[i] = r
	}
	return out
}

// TestCollMedian: per row and placement the median time of the rounds,
// the bandwidths of that time, the worst #wrong; the first round's order.
func TestCollMedian(t *testing.T) {
	_, rows := collFixture()
	slow := scaled(rows, 4)
	slow[1].InPlace.Wrong = 0
	fast := scaled(rows, 0.5)
	fast[0].OutOfPlace.Wrong = 7
	m := CollMedian([][]CollResult{slow, fast, rows})
	if len(m) != len(rows) {
		t.Fatalf("%d rows, want %d", len(m), len(rows))
	}
	for i, r := range m {
		if r.Transport != rows[i].Transport || r.Size != rows[i].Size {
			t.Errorf("row %d is %s %d B, want %s %d B", i, r.Transport, r.Size, rows[i].Transport, rows[i].Size)
		}
		for _, p := range []struct {
			got, want *CollTiming
		}{{r.OutOfPlace, rows[i].OutOfPlace}, {r.InPlace, rows[i].InPlace}} {
			if (p.got == nil) != (p.want == nil) {
				t.Fatalf("row %d: timing %+v, want %+v", i, p.got, p.want)
			}
			if p.got == nil {
				continue
			}
			// The unscaled round is the median.
			if !near(p.got.TimeUs, p.want.TimeUs) || !near(p.got.AlgBW, p.want.AlgBW) || !near(p.got.BusBW, p.want.BusBW) {
				t.Errorf("row %d: median %+v, want %+v", i, p.got, p.want)
			}
		}
	}
	if w := m[0].OutOfPlace.Wrong; w != 7 {
		t.Errorf("row 0 #wrong %d, want the worst round's 7", w)
	}
	if w := m[1].InPlace.Wrong; w != 3 {
		t.Errorf("row 1 #wrong %d, want 3", w)
	}
	if w := m[2].InPlace.Wrong; w != -1 {
		t.Errorf("unchecked row #wrong %d, want -1", w)
	}
	// Two rounds: the mean of the two middle times.
	m = CollMedian([][]CollResult{rows, scaled(rows, 3)})
	if got := m[1].OutOfPlace; !near(got.TimeUs, 524.288*2) || !near(got.BusBW, 1) {
		t.Errorf("median of two %+v, want 1048.576 us, 1 GB/s", got)
	}
	// A row only one round has stays.
	m = CollMedian([][]CollResult{rows[:2], rows})
	if len(m) != len(rows) || m[5].Transport != "openmpi-tcp" {
		t.Errorf("rows %d (last %s), want %d", len(m), m[len(m)-1].Transport, len(rows))
	}
}

// TestCollRatiosOverRounds: the ratios of the medians, with the rounds'
// own lowest and highest beside them.
func TestCollRatiosOverRounds(t *testing.T) {
	_, rows := collFixture()
	// Our rows 2x slower in one round, 2x faster in another; the peers'
	// unchanged.
	var slow, fast []CollResult
	for _, r := range rows {
		s, f := r, r
		if !r.Peer {
			s, f = scaled([]CollResult{r}, 2)[0], scaled([]CollResult{r}, 0.5)[0]
		}
		slow, fast = append(slow, s), append(fast, f)
	}
	rs := CollRatiosOverRounds([][]CollResult{slow, rows, fast}, 1<<20, 64<<20)
	if len(rs) != 2 {
		t.Fatalf("%d ratios, want 2", len(rs))
	}
	mpi := rs[1]
	// Median busbw 2 vs 4; the rounds 1/4, 1/2, 1; time at 8 B 2.15x in
	// the median round, 4.3x and 1.075x in the others.
	if mpi.Rounds != 3 || !near(mpi.BusBWGeo, 0.5) || !near(mpi.BusBWGeoLo, 0.25) || !near(mpi.BusBWGeoHi, 1) ||
		!near(mpi.SmallTime, 2.15) || !near(mpi.SmallTimeLo, 1.075) || !near(mpi.SmallTimeHi, 4.3) {
		t.Errorf("vs openmpi %+v", mpi)
	}
	var b bytes.Buffer
	WriteCollRatios(&b, rs[1:])
	want := "busbw 1 MiB..64 MiB: 0.50x geomean (min 0.50x, max 0.50x, 1 sizes; 3 rounds 0.25x..1.00x; target >= 1.5x the best peer); " +
		"time at 8 B: 2.15x (3 rounds 1.07x..4.30x; target <= 0.5x Open MPI)"
	if !strings.Contains(b.String(), want) {
		t.Errorf("ratios line\n%s\nwant it to contain\n%s", b.String(), want)
	}
	// One round: no spread.
	if r := CollRatiosOverRounds([][]CollResult{rows}, 1<<20, 64<<20)[1]; r.Rounds != 0 || r.BusBWGeoLo != 0 {
		t.Errorf("one round %+v, want no spread", r)
	}
}
