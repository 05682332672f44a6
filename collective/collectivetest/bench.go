package collectivetest

import (
	"context"
	"errors"
	"testing"

	"github.com/opennetworks/onetdp/collective"
)

// BenchPingPong runs b.N round trips of size bytes between ranks 0 and 1
// of ts (tag i for the i-th) and reports the one-way time in µs/one-way.
// Rank 1 waits for each answer's send only after the next message
// arrived, as an MPI echo does.
func BenchPingPong(b *testing.B, ts []collective.Transport, size int) {
	ctx := context.Background()
	done := make(chan error, 1)
	buf1 := make([]byte, size)
	go func() { done <- echo(ctx, ts[1], 0, buf1, b.N) }()
	buf0 := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		r, err := ts[0].Irecv(1, collective.Tag(i), buf0)
		if err != nil {
			b.Fatal(err)
		}
		s, err := ts[0].Isend(1, collective.Tag(i), buf0)
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

// echo answers n messages from peer (tag i for the i-th).
func echo(ctx context.Context, tr collective.Transport, peer int, buf []byte, n int) error {
	var prev collective.Request
	for i := range n {
		r, err := tr.Irecv(peer, collective.Tag(i), buf)
		if err == nil {
			err = r.Wait(ctx)
		}
		if err == nil && prev != nil {
			err = prev.Wait(ctx)
		}
		if err == nil {
			prev, err = tr.Isend(peer, collective.Tag(i), buf)
		}
		if err != nil {
			return err
		}
	}
	if prev != nil {
		return prev.Wait(ctx)
	}
	return nil
}

// BenchStream sends b.N messages of size bytes from rank 0 to rank 1 of
// ts with four in flight and reports GB/s.
func BenchStream(b *testing.B, ts []collective.Transport, size int) {
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
		if recvs[k], err = ts[1].Irecv(0, collective.Tag(k), dst[k]); err != nil {
			b.Fatal(err)
		}
		if sends[k], err = ts[0].Isend(1, collective.Tag(k), src[k]); err != nil {
			b.Fatal(err)
		}
	}
	for k := range depth {
		flush(k)
	}
	b.StopTimer()
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}
