package bench_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/dataplane/porttest"
)

// BenchmarkRDMAWrite measures write_bw over the in-memory network: b.N
// messages per size through bench.RDMABandwidth (setup, data check and all),
// reporting the bench's own MB/s (2^20) and the allocations per message.
func BenchmarkRDMAWrite(b *testing.B) {
	for _, size := range []int{64, 4096, 65536} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			c, s, _ := rdmaSides(b, porttest.NetworkOptions{}, nil)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			rows, err := bench.RDMABandwidth(context.Background(), "fake", c, s, bench.RDMAOptions{Op: bench.RDMAWrite, Sizes: []int{size}, Iterations: max(b.N, 1)})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(rows[0].AvgMBps, "MB/s(2^20)")
			b.ReportMetric(rows[0].MsgRateMpps, "Mpps")
		})
	}
}
