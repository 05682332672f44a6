package collective

import (
	"fmt"
	"math"
	"testing"
	"time"
)

const bench16MiB = 16 << 20

// benchBuffers returns dst and src of n bytes holding ones of dt (dst 1.5
// for floats), values whose sums, products, minima and maxima stay
// ordinary numbers however often a benchmark repeats them.
func benchBuffers(dt DType, n int) (dst, src []byte) {
	dst, src = make([]byte, n), make([]byte, n)
	size := dt.Size()
	for i := 0; i+size <= n; i += size {
		var one, start uint64
		switch dt {
		case Float32:
			one, start = uint64(math.Float32bits(1)), uint64(math.Float32bits(1.5))
		case Float64:
			one, start = math.Float64bits(1), math.Float64bits(1.5)
		case Float16:
			one, start = uint64(Float32ToHalf(1)), uint64(Float32ToHalf(1.5))
		case BFloat16:
			one, start = uint64(Float32ToBFloat16(1)), uint64(Float32ToBFloat16(1.5))
		default:
			one, start = 1, 1
		}
		putElem(src[i:], size, one)
		putElem(dst[i:], size, start)
	}
	return dst, src
}

// BenchmarkMemcpy16MiB is the ceiling a reduction is measured against:
// the same bytes/s accounting (len(dst) per operation) as BenchmarkReduce.
func BenchmarkMemcpy16MiB(b *testing.B) {
	dst, src := make([]byte, bench16MiB), make([]byte, bench16MiB)
	for i := range src {
		src[i] = byte(i)
	}
	b.SetBytes(bench16MiB)
	for b.Loop() {
		copy(dst, src)
	}
}

// BenchmarkReduce is dst op= src through ReduceInto, by type, op and size.
func BenchmarkReduce(b *testing.B) {
	for _, dt := range DTypes() {
		for _, op := range []Op{Sum, Prod, Min, Max} {
			for _, size := range []int{4 << 10, 256 << 10, bench16MiB} {
				b.Run(fmt.Sprintf("%v/%v/%s", dt, op, sizeName(size)), func(b *testing.B) {
					dst, src := benchBuffers(dt, size)
					b.SetBytes(int64(size))
					for b.Loop() {
						if err := ReduceInto(dst, src, dt, op); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkReducePaths compares the vector kernels (ReduceInto), the
// portable typed loops and the element-by-element reference on a += b.
func BenchmarkReducePaths(b *testing.B) {
	paths := []struct {
		name string
		fn   func(dst, src []byte, dt DType)
	}{
		{"fast", func(d, s []byte, dt DType) { _ = ReduceInto(d, s, dt, Sum) }},
		{"portable", func(d, s []byte, dt DType) { reducePortable(d, d, s, dt, Sum) }},
		{"generic", func(d, s []byte, dt DType) { reduceGeneric(d, d, s, dt, Sum) }},
	}
	for _, dt := range []DType{Float32, Float16, BFloat16, Int64} {
		for _, p := range paths {
			b.Run(fmt.Sprintf("%v/sum/%s/16MiB", dt, p.name), func(b *testing.B) {
				dst, src := benchBuffers(dt, bench16MiB)
				b.SetBytes(bench16MiB)
				for b.Loop() {
					p.fn(dst, src, dt)
				}
			})
		}
	}
}

// BenchmarkFinish is the Avg division over 7 ranks, by type, at 16 MiB;
// the buffer is refilled (untimed) so values never drift to zero.
func BenchmarkFinish(b *testing.B) {
	for _, dt := range DTypes() {
		b.Run(fmt.Sprintf("%v/16MiB", dt), func(b *testing.B) {
			orig, _ := benchBuffers(dt, bench16MiB)
			buf := make([]byte, bench16MiB)
			b.SetBytes(bench16MiB)
			for b.Loop() {
				b.StopTimer()
				copy(buf, orig)
				b.StartTimer()
				_ = Finish(buf, dt, Avg, 7)
			}
		})
	}
}

// BenchmarkReduceVsMemcpy16MiB alternates a 16 MiB copy and a 16 MiB
// float32 a += b so both see the same machine state, and reports each
// one's GB/s and their ratio (the design target is >= 0.7).
func BenchmarkReduceVsMemcpy16MiB(b *testing.B) {
	dst, src := benchBuffers(Float32, bench16MiB)
	cdst := make([]byte, bench16MiB)
	var tCopy, tReduce time.Duration
	for b.Loop() {
		t0 := time.Now()
		copy(cdst, src)
		t1 := time.Now()
		_ = ReduceInto(dst, src, Float32, Sum)
		tReduce += time.Since(t1)
		tCopy += t1.Sub(t0)
	}
	gbs := func(d time.Duration) float64 { return float64(b.N) * bench16MiB / d.Seconds() / 1e9 }
	b.ReportMetric(gbs(tCopy), "memcpy-GB/s")
	b.ReportMetric(gbs(tReduce), "reduce-GB/s")
	b.ReportMetric(tCopy.Seconds()/tReduce.Seconds(), "ratio")
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
