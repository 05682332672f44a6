package bench

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

var updateColl = flag.Bool("update-coll", false, "rewrite bench/testdata/coll_*.txt")

func TestCollBusFactor(t *testing.T) {
	for _, c := range []struct {
		op   collective.OpKind
		n    int
		want float64
	}{
		{collective.OpAllReduce, 4, 1.5}, {collective.OpAllReduce, 2, 1}, {collective.OpAllReduce, 1, 0},
		{collective.OpAllGather, 4, 0.75}, {collective.OpReduceScatter, 4, 0.75}, {collective.OpAllToAll, 4, 0.75},
		{collective.OpBroadcast, 4, 1}, {collective.OpReduce, 4, 1}, {collective.OpAllReduce, 0, 0},
	} {
		if got := CollBusFactor(c.op, c.n); got != c.want {
			t.Errorf("CollBusFactor(%v, %d) = %v, want %v", c.op, c.n, got, c.want)
		}
	}
	// 1 GB of allreduce in 1 s over 4 ranks: algbw 1 GB/s, busbw 1.5.
	if a, b := CollBandwidth(collective.OpAllReduce, 1e9, 4, 1); a != 1 || b != 1.5 {
		t.Errorf("allreduce bandwidth %v %v, want 1 1.5", a, b)
	}
	// Allgather counts every rank's block: 250 MB per rank, 4 ranks, 0.5 s.
	if a, b := CollBandwidth(collective.OpAllGather, 250e6, 4, 0.5); a != 2 || b != 1.5 {
		t.Errorf("allgather bandwidth %v %v, want 2 1.5", a, b)
	}
	if a, b := CollBandwidth(collective.OpBroadcast, 1e6, 4, 0); a != 0 || b != 0 {
		t.Errorf("zero time: %v %v, want 0 0", a, b)
	}
}

func TestCollSizes(t *testing.T) {
	s := CollSizes(CollOptions{MinBytes: 8, MaxBytes: 64 << 20, StepFactor: 2})
	if len(s) != 24 || s[0] != 8 || s[23] != 64<<20 {
		t.Errorf("-b 8 -e 64M -f 2: %d sizes %v..%v, want 24 from 8 to 64 MiB", len(s), s[0], s[len(s)-1])
	}
	s = CollSizes(CollOptions{MinBytes: 1 << 20, MaxBytes: 3 << 20, StepBytes: 1 << 20})
	if len(s) != 3 || s[2] != 3<<20 {
		t.Errorf("-b 1M -e 3M -i 1M: %v", s)
	}
	s = CollSizes(CollOptions{MinBytes: 100, MaxBytes: 50})
	if len(s) != 1 || s[0] != 100 {
		t.Errorf("max below min: %v", s)
	}
}

// TestCollGeometry: nccl-tests' size and count columns for 4 ranks and
// 4-byte floats.
func TestCollGeometry(t *testing.T) {
	for _, c := range []struct {
		op                collective.OpKind
		size              int64
		wantSize, wantCnt int64
	}{
		{collective.OpAllReduce, 1024, 1024, 256},
		{collective.OpBroadcast, 1024, 1024, 256},
		{collective.OpAllGather, 1024, 1024, 64},
		{collective.OpReduceScatter, 1024, 1024, 64},
		{collective.OpAllToAll, 1024, 1024, 64},
		{collective.OpAllGather, 8, 0, 0}, // 2 floats do not split over 4 ranks
		{collective.OpAllGather, 40, 32, 2},
	} {
		g := collGeometryFor(c.op, collective.Float32, 4, c.size)
		if g.size() != c.wantSize || g.param != c.wantCnt {
			t.Errorf("%v %d B: size %d count %d, want %d %d", c.op, c.size, g.size(), g.param, c.wantSize, c.wantCnt)
		}
	}
}

func TestCountWrong(t *testing.T) {
	want := bytes.Repeat([]byte{1, 2, 3, 4}, 3000) // 12000 bytes: crosses chunks
	got := append([]byte(nil), want...)
	if n := countWrong(got, want, 4); n != 0 {
		t.Fatalf("equal: %d wrong", n)
	}
	got[0]++
	got[5]++
	got[6]++ // same element as 5
	got[11999]++
	if n := countWrong(got, want, 4); n != 3 {
		t.Errorf("3 elements differ: counted %d", n)
	}
	if n := countWrong(got, want, 2); n != 4 {
		t.Errorf("as 2-byte elements: counted %d, want 4", n)
	}
	if n := countWrong(got[:8], want, 4); n != 3000 {
		t.Errorf("short: counted %d, want every element", n)
	}
}

func memComms(t *testing.T, n int, ts []collective.Transport) []*collective.Communicator {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	comms, err := collectivetest.NewComms(ctx, ts, collective.Options{CostModel: &collective.CostModel{}, IgnoreEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range comms {
			c.Close()
		}
	})
	return comms
}

// TestCollectiveMem runs every operation over an in-memory group of 3
// ranks (not a power of two) with the check on: every row has the
// nccl-tests columns right and no wrong element.
func TestCollectiveMem(t *testing.T) {
	comms := memComms(t, 3, collectivetest.NewGroup(3, collectivetest.GroupOptions{}))
	for _, c := range []struct {
		op     collective.OpKind
		dt     collective.DType
		red    collective.Op
		root   int
		redop  string
		rootCl int
	}{
		{collective.OpAllReduce, collective.Float32, collective.Sum, 0, "sum", -1},
		{collective.OpAllReduce, collective.BFloat16, collective.Prod, 0, "prod", -1},
		{collective.OpAllReduce, collective.Int32, collective.Avg, 0, "avg", -1},
		{collective.OpAllGather, collective.Float32, collective.Sum, 0, "none", -1},
		{collective.OpBroadcast, collective.Float16, collective.Sum, 2, "none", 2},
		{collective.OpReduceScatter, collective.Int8, collective.Max, 0, "max", -1},
		{collective.OpAllToAll, collective.Float64, collective.Sum, 0, "none", -1},
		{collective.OpReduce, collective.Uint8, collective.Min, 1, "min", 1},
	} {
		t.Run(c.op.String()+"/"+c.dt.String(), func(t *testing.T) {
			var seen int
			o := CollOptions{Op: c.op, MinBytes: 8, MaxBytes: 128 << 10, StepFactor: 4, Iters: 3, Warmup: 1,
				DType: c.dt, Reduce: c.red, Root: c.root, Check: 2, Transport: "mem", OnRow: func(CollResult) { seen++ }}
			rows, err := Collective(context.Background(), comms, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 8 || seen != 8 {
				t.Fatalf("%d rows (%d seen), want 8 (8 B..128 KiB by 4)", len(rows), seen)
			}
			for _, r := range rows {
				if r.Test != c.op.String() || r.Transport != "mem" || r.Ranks != 3 || r.Type != c.dt.String() ||
					r.Redop != c.redop || r.Root != c.rootCl || r.Iters != 3 {
					t.Errorf("row %+v: wrong columns", r)
				}
				for _, tm := range []*CollTiming{r.OutOfPlace, r.InPlace} {
					if tm == nil || tm.Wrong != 0 || tm.TimeUs <= 0 || (r.Count > 0 && tm.BusBW <= 0) {
						t.Errorf("%d B: timing %+v, want measured, checked, no wrong element", r.Size, tm)
					}
				}
			}
			// The size and count columns of the last row (128 KiB).
			last := rows[len(rows)-1]
			wantCount := int64(128<<10) / int64(c.dt.Size())
			switch c.op {
			case collective.OpAllGather, collective.OpReduceScatter, collective.OpAllToAll:
				wantCount /= 3
			}
			if wantSize := collGeometryFor(c.op, c.dt, 3, 128<<10).size(); last.Count != wantCount || last.Size != wantSize {
				t.Errorf("last row size %d count %d, want %d and %d", last.Size, last.Count, wantSize, wantCount)
			}
		})
	}
}

// corrupting flips the first byte of every message once armed.
type corrupting struct {
	collective.Transport
	armed *atomic.Bool
}

func (c corrupting) Isend(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	if c.armed.Load() && len(b) > 0 {
		b = append([]byte(nil), b...)
		b[0] ^= 0x40
	}
	return c.Transport.Isend(peer, tag, b)
}

// TestCollectiveCountsWrong: a transport that corrupts the first byte of
// every message shows as exactly one wrong element per check on the
// receiving rank of a 2-rank broadcast, and the footer says FAILED.
func TestCollectiveCountsWrong(t *testing.T) {
	var armed atomic.Bool
	mem := collectivetest.NewGroup(2, collectivetest.GroupOptions{})
	ts := []collective.Transport{corrupting{mem[0], &armed}, corrupting{mem[1], &armed}}
	comms := memComms(t, 2, ts)
	armed.Store(true)
	rows, err := Collective(context.Background(), comms, CollOptions{Op: collective.OpBroadcast, MinBytes: 64, Iters: 2, Check: 1, DType: collective.Float32})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].OutOfPlace.Wrong != 1 || rows[0].InPlace.Wrong != 1 {
		t.Fatalf("rows %+v: want one wrong element in each placement", rows)
	}
	var b strings.Builder
	WriteCollFooter(&b, rows)
	if want := "# Out of bounds values : 2 FAILED\n"; !strings.HasPrefix(b.String(), want) {
		t.Errorf("footer %q, want it to start %q", b.String(), want)
	}
}

func TestCollectiveRejects(t *testing.T) {
	comms := memComms(t, 2, collectivetest.NewGroup(2, collectivetest.GroupOptions{}))
	ctx := context.Background()
	for name, o := range map[string]CollOptions{
		"barrier":   {Op: collective.OpBarrier},
		"root":      {Op: collective.OpBroadcast, Root: 2},
		"min > max": {Op: collective.OpAllReduce, MinBytes: 64, MaxBytes: 8},
		"type":      {Op: collective.OpAllReduce, DType: 99},
		"average":   {Op: collective.OpAllReduce, Average: 7},
	} {
		if _, err := Collective(ctx, comms, o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Collective(ctx, comms[1:], CollOptions{}); err == nil {
		t.Error("communicators out of rank order: no error")
	}
	if _, err := CollTimeModeNCCL(4); err == nil {
		t.Error("-a 4: no error")
	}
}

func TestCollTimeString(t *testing.T) {
	for us, want := range map[float64]string{12.345: "  12.35", 123.45: "  123.5", 12345.6: "  12346", 99.999: " 100.00"} {
		if got := CollTimeString(us); got != want {
			t.Errorf("CollTimeString(%v) = %q, want %q", us, got, want)
		}
	}
}

func TestCombineTimes(t *testing.T) {
	s := []float64{2, 1, 6}
	for mode, want := range map[CollTimeMode]float64{CollTimeMax: 6, CollTimeAvg: 3, CollTimeMin: 1, CollTimeRank0: 2} {
		if got := combineTimes(s, mode); got != want {
			t.Errorf("mode %d: %v, want %v", mode, got, want)
		}
	}
}

func collFixture() (CollHeader, []CollResult) {
	h := CollHeader{Test: "allreduce", MinBytes: 8, MaxBytes: 1 << 20, StepFactor: 1 << 17, Warmup: 5, Iters: 20, Check: 1,
		Ranks: []CollRank{{0, 100, "h0", "198.18.0.1", "rocev2/af_xdp"}, {1, 100, "h1", "198.18.0.2", "rocev2/af_xdp"}}}
	rows := []CollResult{
		{Test: "allreduce", Transport: "rocev2/af_xdp", Ranks: 2, Size: 8, Count: 2, Type: "float", Redop: "sum", Root: -1, Iters: 20,
			OutOfPlace: &CollTiming{TimeUs: 21.5, AlgBW: 0.0004, BusBW: 0.0004},
			InPlace:    &CollTiming{TimeUs: 19.25, AlgBW: 0.0004, BusBW: 0.0004}},
		{Test: "allreduce", Transport: "rocev2/af_xdp", Ranks: 2, Size: 1 << 20, Count: 1 << 18, Type: "float", Redop: "sum", Root: -1, Iters: 20,
			OutOfPlace: &CollTiming{TimeUs: 524.288, AlgBW: 2, BusBW: 2},
			InPlace:    &CollTiming{TimeUs: 10485.76 * 2, AlgBW: 0.05, BusBW: 0.05, Wrong: 3}},
		{Test: "allreduce", Transport: "gloo", Peer: true, Ranks: 2, Size: 8, Count: 2, Type: "float", Redop: "sum", Root: -1, Iters: 20,
			InPlace: &CollTiming{TimeUs: 200, AlgBW: 0.00004, BusBW: 0.00004, Wrong: -1}},
		{Test: "allreduce", Transport: "gloo", Peer: true, Ranks: 2, Size: 1 << 20, Count: 1 << 18, Type: "float", Redop: "sum", Root: -1, Iters: 20,
			InPlace: &CollTiming{TimeUs: 1048.576, AlgBW: 1, BusBW: 1, Wrong: -1}},
		{Test: "allreduce", Transport: "openmpi-tcp", Peer: true, Ranks: 2, Size: 8, Count: 2, Type: "float", Redop: "sum", Root: -1, Iters: 20,
			OutOfPlace: &CollTiming{TimeUs: 10, BusBW: 0.0008, Wrong: -1}, InPlace: &CollTiming{TimeUs: 10, BusBW: 0.0008, Wrong: -1}},
		{Test: "allreduce", Transport: "openmpi-tcp", Peer: true, Ranks: 2, Size: 1 << 20, Count: 1 << 18, Type: "float", Redop: "sum", Root: -1, Iters: 20,
			OutOfPlace: &CollTiming{TimeUs: 262.144, BusBW: 4, Wrong: -1}, InPlace: &CollTiming{TimeUs: 262.144, BusBW: 4, Wrong: -1}},
	}
	return h, rows
}

// TestWriteCollGolden: the table, the side-by-side view and the ratios,
// byte for byte against bench/testdata/coll_report.txt.
func TestWriteCollGolden(t *testing.T) {
	h, rows := collFixture()
	var b bytes.Buffer
	WriteCollTable(&b, h, rows[:2])
	WriteCollTable(&b, CollHeader{Test: "allreduce", MinBytes: 8, MaxBytes: 1 << 20, StepBytes: 1 << 20, Iters: 20}, rows[2:4])
	WriteCollSideBySide(&b, rows)
	WriteCollRatios(&b, CollRatios(rows, 1<<20, 64<<20))
	golden := filepath.Join("testdata", "coll_report.txt")
	if *updateColl {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("report differs from %s:\n%s\nwant:\n%s", golden, b.String(), want)
	}
	// The lines nccl-tests users grep for, independent of the golden file.
	for _, line := range []string{
		"#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong\n",
		"#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)       \n",
		"           8             2     float     sum      -1    21.50    0.00    0.00      0    19.25    0.00    0.00      0\n",
		"     1048576        262144     float     sum      -1    524.3    2.00    2.00      0    20972    0.05    0.05      3\n",
		"# Out of bounds values : 1 FAILED\n# Avg bus bandwidth    : 0.5127 \n#\n",
		"           8             2     float     sum      -1      N/A     N/A     N/A    N/A    200.0    0.00    0.00    N/A\n",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("report lacks %q", line)
		}
	}
}

func TestCollRatios(t *testing.T) {
	_, rows := collFixture()
	rs := CollRatios(rows, 1<<20, 64<<20)
	if len(rs) != 2 {
		t.Fatalf("%d ratios, want ours vs gloo and vs openmpi", len(rs))
	}
	gloo, mpi := rs[0], rs[1]
	if gloo.Peer != "gloo" || mpi.Peer != "openmpi-tcp" {
		t.Fatalf("peers %s, %s", gloo.Peer, mpi.Peer)
	}
	// Gloo has only in place: 0.05 / 1 busbw; 19.25 / 200 us at 8 B.
	if gloo.Sizes != 1 || !near(gloo.BusBWGeo, 0.05) || gloo.SmallSize != 8 || !near(gloo.SmallTime, 19.25/200) {
		t.Errorf("vs gloo %+v", gloo)
	}
	// Open MPI out of place: 2 / 4; 21.5 / 10 us.
	if mpi.Sizes != 1 || !near(mpi.BusBWMin, 0.5) || !near(mpi.BusBWMax, 0.5) || !near(mpi.SmallTime, 2.15) {
		t.Errorf("vs openmpi %+v", mpi)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
