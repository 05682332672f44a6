package bench

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

// rankSweeps runs CollectiveRank on every communicator at once, as the
// processes of a launched job would, and returns each rank's rows.
func rankSweeps(comms []*collective.Communicator, o CollOptions) ([][]CollResult, error) {
	rows := make([][]CollResult, len(comms))
	errs := make([]error, len(comms))
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Go(func() { rows[r], errs[r] = CollectiveRank(context.Background(), c, o) })
	}
	wg.Wait()
	return rows, errors.Join(errs...)
}

// TestCollectiveRankMem: every operation over 3 in-memory ranks, each
// sweeping on its own: every rank gets the same rows (columns, combined
// times, wrong counts), all checked with no wrong element.
func TestCollectiveRankMem(t *testing.T) {
	comms := memComms(t, 3, collectivetest.NewGroup(3, collectivetest.GroupOptions{}))
	for _, c := range []struct {
		op   collective.OpKind
		dt   collective.DType
		red  collective.Op
		root int
	}{
		{collective.OpAllReduce, collective.BFloat16, collective.Avg, 0},
		{collective.OpAllGather, collective.Int32, collective.Sum, 0},
		{collective.OpBroadcast, collective.Float16, collective.Sum, 2},
		{collective.OpReduceScatter, collective.Int8, collective.Prod, 0},
		{collective.OpAllToAll, collective.Float64, collective.Sum, 0},
		{collective.OpReduce, collective.Uint8, collective.Max, 1},
	} {
		t.Run(c.op.String(), func(t *testing.T) {
			o := CollOptions{Op: c.op, MinBytes: 8, MaxBytes: 64 << 10, StepFactor: 8, Iters: 2, Warmup: 1,
				DType: c.dt, Reduce: c.red, Root: c.root, Check: 2, Transport: "mem", Blocking: c.op == collective.OpAllReduce}
			rows, err := rankSweeps(comms, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows[0]) != 5 {
				t.Fatalf("%d rows, want 5 (8 B..64 KiB by 8)", len(rows[0]))
			}
			for r := 1; r < 3; r++ {
				if !reflect.DeepEqual(rows[r], rows[0]) {
					t.Errorf("rank %d's rows differ from rank 0's:\n%+v\n%+v", r, rows[r], rows[0])
				}
			}
			for _, row := range rows[0] {
				if row.Ranks != 3 || row.Type != c.dt.String() || row.Root != collRootColumn(c.op, c.root) {
					t.Errorf("row %+v: wrong columns", row)
				}
				for _, tm := range []*CollTiming{row.OutOfPlace, row.InPlace} {
					if tm == nil || tm.Wrong != 0 || tm.TimeUs <= 0 {
						t.Errorf("%d B: timing %+v, want measured, checked, no wrong element", row.Size, tm)
					}
				}
			}
		})
	}
}

// corruptingData flips the first byte of the 64-byte messages (the
// benchmarked broadcast's), leaving alone the 8-byte ones that combine the
// times and sum the wrong elements.
type corruptingData struct{ collective.Transport }

func (c corruptingData) Isend(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	if len(b) == 64 {
		b = append([]byte(nil), b...)
		b[0] ^= 0x40
	}
	return c.Transport.Isend(peer, tag, b)
}

// TestCollectiveRankCountsWrong: a corrupted message shows on every rank
// as the same total of wrong elements.
func TestCollectiveRankCountsWrong(t *testing.T) {
	mem := collectivetest.NewGroup(2, collectivetest.GroupOptions{})
	comms := memComms(t, 2, []collective.Transport{corruptingData{mem[0]}, corruptingData{mem[1]}})
	rows, err := rankSweeps(comms, CollOptions{Op: collective.OpBroadcast, MinBytes: 64, Iters: 2, Check: 1, DType: collective.Float32})
	if err != nil {
		t.Fatal(err)
	}
	for r := range rows {
		if len(rows[r]) != 1 || rows[r][0].OutOfPlace.Wrong != 1 || rows[r][0].InPlace.Wrong != 1 {
			t.Errorf("rank %d: rows %+v %+v: want one wrong element in each placement", r, rows[r][0].OutOfPlace, rows[r][0].InPlace)
		}
	}
	if _, err := CollectiveRank(context.Background(), comms[0], CollOptions{Op: collective.OpBroadcast, Root: 2}); err == nil {
		t.Error("root 2 of 2 ranks: no error")
	}
}
