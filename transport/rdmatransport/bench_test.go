package rdmatransport_test

import (
	"testing"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

// BenchmarkFake measures Isend/Irecv between two ranks on the in-memory
// network: ping-pong latency (one way) and streaming bandwidth with four
// messages in flight. stack.BenchmarkTransportLab measures the same over
// AF_XDP between lab hosts.
func BenchmarkFake(b *testing.B) {
	tr := fakeGroup(b, 2, nil)
	ts := []collective.Transport{tr[0], tr[1]}
	for _, n := range []int{64, 4096, 65536} {
		b.Run(name("latency/%dB", n), func(b *testing.B) { collectivetest.BenchPingPong(b, ts, n) })
	}
	polled := fakeGroupPorts(b, 2, true, nil)
	b.Run("latency/64B/polled", func(b *testing.B) {
		collectivetest.BenchPingPong(b, []collective.Transport{polled[0], polled[1]}, 64)
	})
	for _, n := range []int{65536, 4 << 20} {
		b.Run(name("bandwidth/%dB", n), func(b *testing.B) { collectivetest.BenchStream(b, ts, n) })
	}
}
