package tcp_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/transport/tcp"
)

// pingPong runs b.N round trips of size bytes between rank 0 and rank 1.
func pingPong(b *testing.B, ts []collective.Transport, size int) {
	ctx := context.Background()
	msg, back := make([]byte, size), make([]byte, size)
	echo := make([]byte, size)
	done := make(chan error, 1)
	go func() {
		for range b.N {
			r, _ := ts[1].Irecv(0, 1, echo)
			if err := r.Wait(ctx); err != nil {
				done <- err
				return
			}
			s, _ := ts[1].Isend(0, 2, echo)
			if err := s.Wait(ctx); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.SetBytes(int64(2 * size))
	b.ResetTimer()
	for range b.N {
		r, _ := ts[0].Irecv(1, 2, back)
		s, _ := ts[0].Isend(1, 1, msg)
		if err := s.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		if err := r.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPingPong reports round trips on loopback; ns/op is the RTT,
// MB/s counts both directions. sockbuf=4M is the default, auto leaves the
// kernel's buffer autotuning on.
func BenchmarkPingPong(b *testing.B) {
	for _, buf := range []struct {
		name string
		size int
	}{{"4M", 0}, {"auto", -1}} {
		b.Run("sockbuf="+buf.name, func(b *testing.B) {
			ts := asTransports(loopback(b, 2, tcp.Options{SocketBuffer: buf.size}))
			for _, size := range []int{8, 4 << 10, 64 << 10, 1 << 20, 16 << 20} {
				b.Run(fmt.Sprint(size), func(b *testing.B) { pingPong(b, ts, size) })
			}
		})
	}
}
