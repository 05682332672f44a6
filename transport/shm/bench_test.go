package shm_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
	"github.com/opennetworks/onetdp/transport/shm"
	"github.com/opennetworks/onetdp/transport/tcp"
)

var benchSizes = []int{8, 4 << 10, 64 << 10, 1 << 20, 16 << 20}

// BenchmarkPingPong compares the shm transport with the tcp transport on
// loopback, side by side in one run (collectivetest.BenchPingPong: ns/op
// is a round trip, µs/one-way half of it).
func BenchmarkPingPong(b *testing.B) {
	b.Run("transport=shm", func(b *testing.B) {
		ts := asTransports(open(b, 2, shm.Options{}))
		for _, size := range benchSizes {
			b.Run(fmt.Sprint(size), func(b *testing.B) { collectivetest.BenchPingPong(b, ts, size) })
		}
	})
	b.Run("transport=tcp", func(b *testing.B) {
		store := collective.NewMemStore()
		tt := collectivetest.OpenGroup(b, 2, func(r int) (*tcp.Transport, error) {
			return tcp.New(context.Background(), tcp.Options{Store: store, Rank: r, Size: 2,
				ListenAddr: "127.0.0.1:0", Timeout: 20 * time.Second})
		})
		ts := []collective.Transport{tt[0], tt[1]}
		for _, size := range benchSizes {
			b.Run(fmt.Sprint(size), func(b *testing.B) { collectivetest.BenchPingPong(b, ts, size) })
		}
	})
}

// BenchmarkStream: one direction, four messages in flight (GB/s).
func BenchmarkStream(b *testing.B) {
	ts := asTransports(open(b, 2, shm.Options{}))
	for _, size := range []int{64 << 10, 1 << 20, 16 << 20} {
		b.Run(fmt.Sprint(size), func(b *testing.B) { collectivetest.BenchStream(b, ts, size) })
	}
}
