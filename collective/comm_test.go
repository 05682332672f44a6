package collective_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

// TestAbortUnblocks: ranks blocked in AllReduce on a rank that aborts
// instead of joining return promptly with ErrAborted, and later calls
// fail at once.
func TestAbortUnblocks(t *testing.T) {
	for _, rendezvous := range []bool{false, true} {
		comms := collectivetest.Comms(t, 4, collectivetest.GroupOptions{Rendezvous: rendezvous}, collective.Options{IgnoreEnv: true})
		start := time.Now()
		errs := collectivetest.Parallel(4, func(r int) error {
			if r == 0 {
				time.Sleep(50 * time.Millisecond)
				comms[0].Abort(errors.New("out of memory"))
				return nil
			}
			buf := make([]byte, 4096)
			return comms[r].AllReduce(context.Background(), nil, buf, collective.Float32, collective.Sum)
		})
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("ranks returned after %v", d)
		}
		for r := 1; r < 4; r++ {
			if !errors.Is(errs[r], collective.ErrAborted) {
				t.Errorf("rendezvous %v: rank %d: got %v, want ErrAborted", rendezvous, r, errs[r])
			}
		}
		for r := range 4 {
			err := comms[r].AllReduce(context.Background(), nil, make([]byte, 8), collective.Int64, collective.Max)
			if !errors.Is(err, collective.ErrAborted) {
				t.Errorf("rank %d after abort: got %v, want ErrAborted", r, err)
			}
		}
	}
}

// TestTimeoutNamesMissingRanks: a rank that never joins makes the others
// time out with an error naming the operation, its sequence number and the
// rank each was waiting for, through Options.Timeout or a ctx deadline.
func TestTimeoutNamesMissingRanks(t *testing.T) {
	for _, viaCtx := range []bool{false, true} {
		// A given cost model: calibration under the 150 ms timeout could
		// itself time out on a loaded machine (-race in CI did once).
		model := testModel
		opts := collective.Options{IgnoreEnv: true, CostModel: &model, Algorithm: map[collective.OpKind]string{collective.OpAllReduce: "rd"}}
		if !viaCtx {
			opts.Timeout = 150 * time.Millisecond
		}
		comms := collectivetest.Comms(t, 3, collectivetest.GroupOptions{}, opts)
		ctx := context.Background()
		// One operation that completes first, so the failing one is #2.
		errs := collectivetest.Parallel(3, func(r int) error { return comms[r].Barrier(ctx) })
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		errs = collectivetest.Parallel(2, func(r int) error {
			ctx := context.Background()
			if viaCtx {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 150*time.Millisecond)
				defer cancel()
			}
			return comms[r].AllReduce(ctx, nil, make([]byte, 64), collective.Int32, collective.Sum)
		})
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("timed out after %v", d)
		}
		// Rank 1 exchanges with rank 2 (rank 0 folds into rank 1 first).
		for r, want := range []string{"ranks [1] never arrived", "ranks [2] never arrived"} {
			err := errs[r]
			if !errors.Is(err, collective.ErrTimeout) {
				t.Fatalf("rank %d: got %v, want ErrTimeout", r, err)
			}
			for _, s := range []string{"allreduce #2", "rd", want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("rank %d: %q does not say %q", r, err, s)
				}
			}
		}
	}
}

// TestNonBlockingOrder issues many operations of several kinds before
// waiting for any, waits in reverse order, and checks every result: each
// operation's messages stay apart from the others'.
func TestNonBlockingOrder(t *testing.T) {
	const n, ops = 4, 24
	comms := collectivetest.Comms(t, n, collectivetest.GroupOptions{Rendezvous: true, Delay: 20 * time.Microsecond},
		collective.Options{IgnoreEnv: true, SegmentBytes: 128})
	ctx := context.Background()
	kinds := []collective.OpKind{collective.OpAllReduce, collective.OpReduceScatter, collective.OpReduce}
	type issued struct {
		h    *collective.Handle
		out  []byte
		want []byte
	}
	all := make([][]issued, n)
	errs := collectivetest.Parallel(n, func(r int) error {
		for i := 0; i < ops; i++ {
			c := collectivetest.Case{Op: kinds[i%3], DType: collective.Int32, Reduce: collective.Sum, Root: i % n}
			count := 1 + i*17
			in := make([][]byte, n)
			for q := range in {
				in[q] = bytes.Repeat([]byte{byte(q + i), 0, 0, 0}, count*map[bool]int{true: n, false: 1}[c.Op == collective.OpReduceScatter])
			}
			want, err := collectivetest.Reference(c, in)
			if err != nil {
				return err
			}
			var h *collective.Handle
			var out []byte
			switch c.Op {
			case collective.OpAllReduce:
				out = make([]byte, len(in[r]))
				h, err = comms[r].IAllReduce(ctx, in[r], out, c.DType, c.Reduce)
			case collective.OpReduceScatter:
				out = make([]byte, len(in[r])/n)
				h, err = comms[r].IReduceScatter(ctx, in[r], out, c.DType, c.Reduce)
			default:
				if r == c.Root {
					out = make([]byte, len(in[r]))
				}
				h, err = comms[r].IReduce(ctx, in[r], out, c.DType, c.Reduce, c.Root)
			}
			if err != nil {
				return err
			}
			if h.Seq() != uint64(i+1) {
				t.Errorf("rank %d: operation %d has sequence number %d", r, i, h.Seq())
			}
			all[r] = append(all[r], issued{h, out, want[r]})
		}
		for i := ops - 1; i >= 0; i-- {
			if err := all[r][i].h.Wait(ctx); err != nil {
				return err
			}
			if done, err := all[r][i].h.Test(); !done || err != nil {
				t.Errorf("rank %d op %d: Test after Wait: %v %v", r, i, done, err)
			}
			if !bytes.Equal(all[r][i].out, all[r][i].want) {
				t.Errorf("rank %d: operation %d (%v) wrong result", r, i, all[r][i].h.Op())
			}
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// TestCloseFailsLaterCalls: after Close, operations fail with ErrClosed
// and peers' operations with the closed rank fail rather than hang.
func TestCloseFailsLaterCalls(t *testing.T) {
	comms := collectivetest.Comms(t, 2, collectivetest.GroupOptions{}, collective.Options{IgnoreEnv: true, Timeout: 10 * time.Second})
	comms[0].Close()
	if err := comms[0].Barrier(context.Background()); !errors.Is(err, collective.ErrClosed) {
		t.Fatalf("barrier after close: got %v, want ErrClosed", err)
	}
	start := time.Now()
	err := comms[1].AllReduce(context.Background(), nil, make([]byte, 8), collective.Float64, collective.Sum)
	if !errors.Is(err, collective.ErrPeerLost) || time.Since(start) > 3*time.Second {
		t.Fatalf("allreduce with a closed peer: got %v after %v, want ErrPeerLost at once", err, time.Since(start))
	}
}

func TestInvalidArguments(t *testing.T) {
	comms := collectivetest.Comms(t, 2, collectivetest.GroupOptions{}, collective.Options{IgnoreEnv: true})
	c, ctx := comms[0], context.Background()
	for name, err := range map[string]error{
		"size mismatch":     c.AllReduce(ctx, make([]byte, 8), make([]byte, 4), collective.Float32, collective.Sum),
		"partial element":   c.AllReduce(ctx, nil, make([]byte, 6), collective.Float32, collective.Sum),
		"bad type":          c.AllReduce(ctx, nil, make([]byte, 8), collective.DType(99), collective.Sum),
		"bad op":            c.AllReduce(ctx, nil, make([]byte, 8), collective.Float32, collective.Op(99)),
		"bad root":          c.Reduce(ctx, make([]byte, 8), make([]byte, 8), collective.Float32, collective.Sum, 2),
		"reducescatter len": c.ReduceScatter(ctx, make([]byte, 12), make([]byte, 4), collective.Float32, collective.Sum),
		"allgather len":     c.AllGather(ctx, make([]byte, 3), make([]byte, 8)),
		"alltoall len":      c.AllToAll(ctx, make([]byte, 3), make([]byte, 3)),
		"broadcast root":    c.Broadcast(ctx, nil, make([]byte, 3), -1),
	} {
		if !errors.Is(err, collective.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
		}
	}
}
