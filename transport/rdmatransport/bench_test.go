package rdmatransport_test

import (
	"context"
	"errors"
	"testing"

	"github.com/opennetworks/onetdp/collective"
)

// BenchmarkFake measures Isend/Irecv between two ranks on the in-memory
// network: ping-pong latency (one way) and streaming bandwidth with four
// messages in flight. stack.BenchmarkTransportLab measures the same over
// AF_XDP between lab hosts.
func BenchmarkFake(b *testing.B) {
	tr := fakeGroup(b, 2, nil)
	ts := []collective.Transport{tr[0], tr[1]}
	for _, n := range []int{64, 4096, 65536} {
		b.Run(name("latency/%dB", n), func(b *testing.B) { pingPong(b, ts, n) })
	}
	for _, n := range []int{65536, 4 << 20} {
		b.Run(name("bandwidth/%dB", n), func(b *testing.B) { stream(b, ts, n) })
	}
}

func pingPong(b *testing.B, tr []collective.Transport, size int) {
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, size)
		var prev collective.Request
		for i := range b.N {
			r, err := tr[1].Irecv(0, collective.Tag(i), buf)
			if err == nil {
				err = r.Wait(ctx)
			}
			if err == nil && prev != nil {
				err = prev.Wait(ctx)
			}
			if err == nil {
				prev, err = tr[1].Isend(0, collective.Tag(i), buf)
			}
			if err != nil {
				done <- err
				return
			}
		}
		if prev != nil {
			done <- prev.Wait(ctx)
			return
		}
		done <- nil
	}()
	buf := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		r, err := tr[0].Irecv(1, collective.Tag(i), buf)
		if err != nil {
			b.Fatal(err)
		}
		s, err := tr[0].Isend(1, collective.Tag(i), buf)
		if err != nil {
			b.Fatal(err)
		}
		if err := errors.Join(r.Wait(ctx), s.Wait(ctx)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N)/2, "µs/one-way")
}

func stream(b *testing.B, tr []collective.Transport, size int) {
	ctx := context.Background()
	const depth = 4
	var src, dst [depth][]byte
	for i := range depth {
		src[i], dst[i] = make([]byte, size), make([]byte, size)
	}
	var sends, recvs [depth]collective.Request
	flush := func(k int) {
		if sends[k] != nil {
			if err := errors.Join(sends[k].Wait(ctx), recvs[k].Wait(ctx)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		k := i % depth
		flush(k)
		var err error
		if recvs[k], err = tr[1].Irecv(0, collective.Tag(k), dst[k]); err != nil {
			b.Fatal(err)
		}
		if sends[k], err = tr[0].Isend(1, collective.Tag(k), src[k]); err != nil {
			b.Fatal(err)
		}
	}
	for k := range depth {
		flush(k)
	}
	b.StopTimer()
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}
