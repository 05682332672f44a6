//go:build linux

package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkUDPPortSendRecv moves batches of 32 datagrams over loopback from
// one port to another in one goroutine (send a batch, receive it) and reports
// datagrams per second. "plain" turns GSO/GRO off; "offload" leaves them on,
// so equal-size batches travel as one segmented send.
func BenchmarkUDPPortSendRecv(b *testing.B) {
	const batch = 32
	for _, size := range []int{64, 1472} {
		for _, off := range []Offload{OffloadOff, OffloadAuto} {
			mode := "offload"
			if off == OffloadOff {
				mode = "plain"
			}
			b.Run(fmt.Sprintf("%dB/%s", size, mode), func(b *testing.B) {
				opts := UDPPortOptions{GSO: off, GRO: off, BatchSize: batch}
				tx, rx := newUDPPair(b, netip.MustParseAddr("127.0.0.1"), opts, opts)
				rx.SetRecvTimeout(100 * time.Millisecond)
				out := make([]Packet, batch)
				for i := range out {
					out[i] = Packet{Buf: make([]byte, size), Addr: rx.LocalAddr()}
				}
				in := makeRecvBatch(batch, 2048)
				var received, lost uint64
				b.SetBytes(int64(size * batch))
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					for sent := 0; sent < batch; {
						n, err := tx.Send(out[sent:])
						if err != nil {
							b.Fatal(err)
						}
						sent += n
					}
					for got := 0; got < batch; {
						n, err := rx.Recv(in)
						if errors.Is(err, ErrTimeout) {
							lost += uint64(batch - got)
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						got += n
						received += uint64(n)
					}
				}
				el := time.Since(start)
				b.ReportMetric(float64(received)/el.Seconds(), "pps")
				b.ReportMetric(float64(lost), "lost")
			})
		}
	}
}
