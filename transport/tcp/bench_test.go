package tcp_test

import (
	"context"
	"fmt"
	"io"
	"net"
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
	go func() { // the next receive is posted before the echo goes out
		bufs := [2][]byte{echo, make([]byte, size)}
		r, _ := ts[1].Irecv(0, 1, bufs[0])
		for i := range b.N {
			if err := r.Wait(ctx); err != nil {
				done <- err
				return
			}
			if i+1 < b.N {
				r, _ = ts[1].Irecv(0, 1, bufs[(i+1)%2])
			}
			s, _ := ts[1].Isend(0, 2, bufs[i%2])
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

// BenchmarkRawTCPPingPong is the baseline: the same round trips over one
// plain loopback net.Conn with blocking reads and writes, no framing.
func BenchmarkRawTCPPingPong(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c0, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c0.Close()
	c1, ok := <-accepted
	if !ok {
		b.Fatal("accept failed")
	}
	defer c1.Close()
	for _, size := range []int{8, 4 << 10, 64 << 10, 1 << 20, 16 << 20} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			msg, echo := make([]byte, size), make([]byte, size)
			done := make(chan error, 1)
			go func() {
				for range b.N {
					if _, err := io.ReadFull(c1, echo); err != nil {
						done <- err
						return
					}
					if _, err := c1.Write(echo); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			b.SetBytes(int64(2 * size))
			b.ResetTimer()
			for range b.N {
				if _, err := c0.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c0, msg); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkUnexpected: a 1 MiB message that arrives before its receive
// (rank 1 first takes a small message sent after it), so it is buffered
// and copied out when the receive comes.
func BenchmarkUnexpected(b *testing.B) {
	ts := loopback(b, 2, tcp.Options{})
	ctx := context.Background()
	const size = 1 << 20
	msg, dst, tick := make([]byte, size), make([]byte, size), make([]byte, 8)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s1, _ := ts[0].Isend(1, 1, msg)
		s2, _ := ts[0].Isend(1, 2, tick)
		r2, _ := ts[1].Irecv(0, 2, tick)
		if err := r2.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		r1, _ := ts[1].Irecv(0, 1, dst) // already buffered
		for _, r := range []collective.Request{r1, s1, s2} {
			if err := r.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}
