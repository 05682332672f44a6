package collective_test

import (
	"context"
	"testing"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

// BenchmarkAllReduceSmall is the communicator's own cost per small
// operation: 8 B allreduce over two ranks on the in-memory transport,
// blocking calls (each runs on the calling goroutine) and calls issued
// eight at a time (the worker runs them), with allocations per call.
func BenchmarkAllReduceSmall(b *testing.B) {
	comms := collectivetest.Comms(b, 2, collectivetest.GroupOptions{}, collective.Options{})
	ctx := context.Background()
	bufs := [2][]byte{make([]byte, 8), make([]byte, 8)}
	other := func(n int, issued bool) chan error {
		done := make(chan error, 1)
		go func() {
			var err error
			for i := 0; i < n && err == nil; i++ {
				if issued {
					var h *collective.Handle
					if h, err = comms[1].IAllReduce(ctx, nil, bufs[1], collective.Float32, collective.Sum); err == nil {
						err = h.Wait(ctx)
					}
				} else {
					err = comms[1].AllReduce(ctx, nil, bufs[1], collective.Float32, collective.Sum)
				}
			}
			done <- err
		}()
		return done
	}
	b.Run("blocking", func(b *testing.B) {
		b.ReportAllocs()
		done := other(b.N, false)
		for range b.N {
			if err := comms[0].AllReduce(ctx, nil, bufs[0], collective.Float32, collective.Sum); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	})
	b.Run("issued", func(b *testing.B) {
		b.ReportAllocs()
		done := other(b.N, true)
		for range b.N {
			h, err := comms[0].IAllReduce(ctx, nil, bufs[0], collective.Float32, collective.Sum)
			if err == nil {
				err = h.Wait(ctx)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	})
}
