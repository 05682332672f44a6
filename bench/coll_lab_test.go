package bench_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/stack"
	"github.com/opennetworks/onetdp/transport/rdmatransport"
)

// labComms opens one rank per lab host over kind ("rocev2/af_xdp" or
// "tcp") and builds the communicators; everything closes at cleanup.
func labComms(t *testing.T, l *lab.Lab, kind string) []*collective.Communicator {
	t.Helper()
	n := len(l.Hosts)
	store := collective.NewMemStore()
	ts := make([]collective.Transport, n)
	comms := make([]*collective.Communicator, n)
	errs := make([]error, n)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for r := range n {
		h := &l.Hosts[r]
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = h.Do(func() error {
				kinds := map[string]stack.TransportKind{"tcp": stack.TransportTCP, "rocev2/af_xdp": stack.TransportRoCEv2}
				var err error
				ts[r], err = stack.OpenTransport(ctx, stack.TransportOptions{Kind: kinds[kind], Store: store, Rank: r, Size: n,
					RDMA:   stack.RDMAOptions{Addr: h.Addr.Addr(), Transport: dataplane.TransportAFXDP},
					RoCEv2: rdmatransport.Options{MTU: rdma.MTU2048}})
				if err != nil {
					return err
				}
				comms[r], err = collective.NewCommunicator(ctx, ts[r], collective.Options{})
				return err
			})
			if errs[r] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for r := range n {
			if comms[r] != nil {
				comms[r].Close()
			} else if ts[r] != nil {
				ts[r].Close()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("open %s: %v", kind, err)
	}
	if name := ts[0].(collective.Describer).Info().Name; name != kind {
		t.Fatalf("transport %s, want %s", name, kind)
	}
	return comms
}

func requireNoWrong(t *testing.T, what string, rows []bench.CollResult, wantRows int) {
	t.Helper()
	if len(rows) != wantRows {
		t.Errorf("%s: %d rows, want %d", what, len(rows), wantRows)
	}
	for _, r := range rows {
		for _, tm := range []*bench.CollTiming{r.OutOfPlace, r.InPlace} {
			if tm == nil || tm.Wrong != 0 || tm.TimeUs <= 0 {
				t.Errorf("%s %d B: %+v: want measured with no wrong element", what, r.Size, tm)
			}
		}
	}
}

// TestCollectiveLab runs the bench with the check on over 4 ranks in 4
// lab hosts (ONET_LAB_HOSTS=2..16 ranks instead: the scale check on a
// bigger machine, scripts/device-scale.sh), over RoCEv2 on AF_XDP and over
// kernel TCP: every collective at a few sizes (the algorithms' small and
// pipelined paths), then a random sample of types, reductions, roots and
// odd element counts (ONET_SEED replays a sample).
func TestCollectiveLab(t *testing.T) {
	testutil.Exclusive(t) // CPU-heavy: keeps the rate-measuring lab tests elsewhere fair
	n := 4
	if v := os.Getenv("ONET_LAB_HOSTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 || n > 16 {
			t.Fatalf("ONET_LAB_HOSTS=%q: want 2..16", v)
		}
	}
	l := labtest.New(t, lab.Options{Hosts: n, MTU: 3000})
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("ONET_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("ONET_SEED=%q: %v", v, err)
		}
	}
	t.Logf("%d ranks; random cases from seed %d", n, seed)
	for _, kind := range []string{"rocev2/af_xdp", "tcp"} {
		t.Run(kind, func(t *testing.T) {
			comms := labComms(t, l, kind)
			ctx := context.Background()
			for _, op := range []collective.OpKind{collective.OpAllReduce, collective.OpAllGather, collective.OpBroadcast,
				collective.OpReduceScatter, collective.OpAllToAll} {
				rows, err := bench.Collective(ctx, comms, bench.CollOptions{Op: op, MinBytes: 8, MaxBytes: 8 << 20, StepFactor: 16,
					Iters: 2, Warmup: 1, Check: 1, Root: n - 1, Transport: kind, OpTimeout: time.Minute})
				if err != nil {
					t.Fatalf("%v: %v", op, err)
				}
				requireNoWrong(t, op.String(), rows, 6) // 8 B .. 8 MiB by 16
			}
			rng := rand.New(rand.NewPCG(seed, 0))
			ops := []collective.OpKind{collective.OpAllReduce, collective.OpReduceScatter, collective.OpAllGather,
				collective.OpBroadcast, collective.OpAllToAll, collective.OpReduce}
			for range 8 {
				o := bench.CollOptions{Op: ops[rng.IntN(len(ops))], DType: collective.DTypes()[rng.IntN(len(collective.DTypes()))],
					Reduce: collective.Ops()[rng.IntN(len(collective.Ops()))], Root: rng.IntN(n),
					Iters: 1, Warmup: -1, Check: 1, Transport: kind, OpTimeout: time.Minute}
				// An odd element count: not a power of two, not a
				// multiple of the rank count for the blocked operations.
				o.MinBytes = int64((4*rng.IntN(40000) + 1 + 2*rng.IntN(2)) * o.DType.Size())
				rows, err := bench.Collective(ctx, comms, o)
				if err != nil {
					t.Fatalf("%v %v %v root %d, %d B: %v", o.Op, o.DType, o.Reduce, o.Root, o.MinBytes, err)
				}
				requireNoWrong(t, o.Op.String()+" "+o.DType.String()+" "+o.Reduce.String(), rows, 1)
			}
		})
	}
}
