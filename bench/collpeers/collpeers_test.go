package collpeers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

func TestParseRows(t *testing.T) {
	out := []byte("# Open MPI v4.1.4, 4 ranks\nROW 1024 64 20 100.000 50.000 0 3\nnoise\nROW 4096 256 5 -1 2000.5 -1 0\n")
	rows, err := ParseRows(out, collective.OpAllGather, MPIName, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	r := rows[0]
	// 64 floats per rank, 4 ranks: size 1024, algbw 1024 B / 100 us.
	if r.Test != "allgather" || r.Transport != MPIName || !r.Peer || r.Ranks != 4 || r.Size != 1024 || r.Count != 64 ||
		r.Type != "float" || r.Redop != "none" || r.Root != -1 || r.Iters != 20 {
		t.Errorf("row %+v", r)
	}
	if r.OutOfPlace == nil || r.OutOfPlace.TimeUs != 100 || r.OutOfPlace.Wrong != 0 || !near(r.OutOfPlace.AlgBW, 1024/100e-6/1e9) || !near(r.OutOfPlace.BusBW, 0.75*1024/100e-6/1e9) {
		t.Errorf("out of place %+v", r.OutOfPlace)
	}
	if r.InPlace == nil || r.InPlace.Wrong != 3 {
		t.Errorf("in place %+v", r.InPlace)
	}
	if rows[1].OutOfPlace != nil || rows[1].InPlace == nil || rows[1].InPlace.TimeUs != 2000.5 {
		t.Errorf("second row %+v: want in place only", rows[1])
	}
	ar, err := ParseRows([]byte("ROW 8 2 10 9.5 8.5 0 0\n"), collective.OpAllReduce, GlooName, 2)
	if err != nil || ar[0].Redop != "sum" || ar[0].Size != 8 || !near(ar[0].OutOfPlace.BusBW, 8/9.5e-6/1e9) {
		t.Errorf("allreduce %+v, %v", ar, err)
	}
	bc, err := ParseRows([]byte("ROW 8 2 10 -1 8.5 -1 0\n"), collective.OpBroadcast, GlooName, 2)
	if err != nil || bc[0].Root != 0 || bc[0].Redop != "none" || bc[0].OutOfPlace != nil {
		t.Errorf("broadcast %+v, %v", bc, err)
	}
	for _, bad := range []string{"", "ROW 8 2 10 9.5 8.5 0\n", "ROW 8 3 10 1 1 0 0\n", "ROW x 2 10 1 1 0 0\n",
		"ROW 8 2 10 NaN 1 0 0\n", "ROW 8 2 10 1 1 -2 0\n", "ROW -8 -2 10 1 1 0 0\n"} {
		if _, err := ParseRows([]byte(bad), collective.OpAllReduce, MPIName, 2); err == nil {
			t.Errorf("ParseRows(%q): no error", bad)
		}
	}
	if _, err := ParseRows([]byte("ROW 8 2 10 1 1 0 0\n"), collective.OpAllToAll, MPIName, 2); err == nil {
		t.Error("alltoall: no error")
	}
}

func FuzzParseRows(f *testing.F) {
	f.Add([]byte("ROW 1024 64 20 100.000 50.000 0 3\n"), uint8(2), uint8(4))
	f.Add([]byte("# x\nROW 8 2 10 -1 8.5 -1 0\n"), uint8(3), uint8(2))
	f.Fuzz(func(t *testing.T, out []byte, op, ranks uint8) {
		k := []collective.OpKind{collective.OpAllReduce, collective.OpAllGather, collective.OpBroadcast}[op%3]
		rows, err := ParseRows(out, k, "x", int(ranks%9))
		if err != nil {
			return
		}
		for _, r := range rows {
			for _, tm := range []*bench.CollTiming{r.OutOfPlace, r.InPlace} {
				if tm != nil && (tm.TimeUs < 0 || tm.Wrong < -1 || tm.BusBW < 0) {
					t.Fatalf("row %+v: negative figures", r)
				}
			}
		}
	})
}

func TestSpecs(t *testing.T) {
	o := bench.CollOptions{Op: collective.OpAllGather, MinBytes: 8, MaxBytes: 1 << 20, StepFactor: 4, Iters: 20, IterBytes: 4 << 20}
	got := strings.Join(specs(o, 4), " ")
	// 8 B is 2 floats: no element per rank of 4; 1 MiB: 4 iterations.
	if want := "32:20 128:20 512:20 2048:20 8192:20 32768:20 131072:20 524288:8"; got != want {
		t.Errorf("specs %q, want %q", got, want)
	}
}

func near(a, b float64) bool { d := a - b; return d < 1e-9*max(1, b) && -d < 1e-9*max(1, b) }

// TestPeersLab runs both peers briefly on 3 lab hosts (a bridge, not a
// veth pair) and checks their rows: every size present, measured, no
// wrong element.
func TestPeersLab(t *testing.T) {
	testutil.Exclusive(t) // CPU-heavy: keeps the rate-measuring lab tests elsewhere fair
	l := labtest.New(t, lab.Options{Hosts: 3})
	for _, op := range []collective.OpKind{collective.OpAllReduce, collective.OpAllGather, collective.OpBroadcast} {
		o := Options{Coll: bench.CollOptions{Op: op, MinBytes: 8, MaxBytes: 64 << 10, StepFactor: 32, Iters: 5, Warmup: 1},
			Lab: l, Timeout: 2 * time.Minute}
		for name, run := range map[string]func(context.Context, Options) ([]bench.CollResult, error){MPIName: RunMPI, GlooName: RunGloo} {
			t.Run(op.String()+"/"+name, func(t *testing.T) {
				rows, err := run(context.Background(), o)
				if errors.Is(err, ErrUnavailable) {
					t.Skipf("peer not installed: %v", err)
				}
				if err != nil {
					t.Fatal(err)
				}
				wantSizes := []int64{8, 256, 8192}
				if op == collective.OpAllGather {
					wantSizes = []int64{252, 8184} // 8 B has no float per rank; 256 and 8192 B round down to whole floats per rank
				}
				if len(rows) != len(wantSizes) {
					t.Fatalf("%d rows, want %d: %+v", len(rows), len(wantSizes), rows)
				}
				for i, r := range rows {
					if r.Size != wantSizes[i] || r.Ranks != 3 || r.Transport != name || r.Iters != 5 {
						t.Errorf("row %+v: want size %d, 3 ranks, 5 iterations", r, wantSizes[i])
					}
					measured := 0
					for _, tm := range []*bench.CollTiming{r.OutOfPlace, r.InPlace} {
						if tm == nil {
							continue
						}
						measured++
						if tm.TimeUs <= 0 || tm.Wrong != 0 {
							t.Errorf("%d B: %+v: want a time and no wrong element", r.Size, tm)
						}
					}
					if measured == 0 {
						t.Errorf("%d B: nothing measured", r.Size)
					}
				}
			})
		}
	}
}

// TestLauncherEnv: the machine's Open MPI launcher settings are dropped
// (OMPI_MCA_plm=isolated would keep every rank on h0), the rest is kept.
func TestLauncherEnv(t *testing.T) {
	got := launcherEnv([]string{"PATH=/bin", "OMPI_MCA_plm=isolated", "OMPI_MCA_plm_rsh_agent=ssh", "OMPI_MCA_btl=self", "HOME=/root"})
	if want := []string{"PATH=/bin", "OMPI_MCA_btl=self", "HOME=/root"}; !slices.Equal(got, want) {
		t.Errorf("launcherEnv = %q, want %q", got, want)
	}
}
