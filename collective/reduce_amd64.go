//go:build amd64 && !purego

package collective

import "golang.org/x/sys/cpu"

// The AVX2 kernels in reduce_amd64.s: dst = a op b over n bytes, n a
// multiple of 32. They read every block before writing it, so dst may be a
// or b.

//go:noescape
func f32SumAVX2(dst, a, b *byte, n int)

//go:noescape
func f32ProdAVX2(dst, a, b *byte, n int)

//go:noescape
func f32MinAVX2(dst, a, b *byte, n int)

//go:noescape
func f32MaxAVX2(dst, a, b *byte, n int)

//go:noescape
func f64SumAVX2(dst, a, b *byte, n int)

//go:noescape
func f64ProdAVX2(dst, a, b *byte, n int)

//go:noescape
func f64MinAVX2(dst, a, b *byte, n int)

//go:noescape
func f64MaxAVX2(dst, a, b *byte, n int)

//go:noescape
func i32SumAVX2(dst, a, b *byte, n int)

//go:noescape
func i32ProdAVX2(dst, a, b *byte, n int)

//go:noescape
func i32MinAVX2(dst, a, b *byte, n int)

//go:noescape
func i32MaxAVX2(dst, a, b *byte, n int)

//go:noescape
func i64SumAVX2(dst, a, b *byte, n int)

//go:noescape
func i64ProdAVX2(dst, a, b *byte, n int)

//go:noescape
func i64MinAVX2(dst, a, b *byte, n int)

//go:noescape
func i64MaxAVX2(dst, a, b *byte, n int)

//go:noescape
func i8SumAVX2(dst, a, b *byte, n int)

//go:noescape
func i8ProdAVX2(dst, a, b *byte, n int)

//go:noescape
func i8MinAVX2(dst, a, b *byte, n int)

//go:noescape
func i8MaxAVX2(dst, a, b *byte, n int)

//go:noescape
func u8MinAVX2(dst, a, b *byte, n int)

//go:noescape
func u8MaxAVX2(dst, a, b *byte, n int)

//go:noescape
func f16SumF16C(dst, a, b *byte, n int)

//go:noescape
func f16ProdF16C(dst, a, b *byte, n int)

//go:noescape
func f16MinF16C(dst, a, b *byte, n int)

//go:noescape
func f16MaxF16C(dst, a, b *byte, n int)

//go:noescape
func bf16SumAVX2(dst, a, b *byte, n int)

//go:noescape
func bf16ProdAVX2(dst, a, b *byte, n int)

//go:noescape
func bf16MinAVX2(dst, a, b *byte, n int)

//go:noescape
func bf16MaxAVX2(dst, a, b *byte, n int)

// The division kernels behind Finish: buf[i] /= d over n bytes, n a
// multiple of 32.

//go:noescape
func f32DivAVX2(buf *byte, n int, d float32)

//go:noescape
func f64DivAVX2(buf *byte, n int, d float64)

//go:noescape
func f16DivF16C(buf *byte, n int, d float32)

//go:noescape
func bf16DivAVX2(buf *byte, n int, d float32)

// The CPU features the kernels need, read once; tests turn them off to
// reach the portable path.
var (
	useAVX2 = cpu.X86.HasAVX2
	useF16C = cpu.X86.HasAVX2 && cpu.X86.HasF16C
)

// reduceFast is the dispatch behind ReduceInto and ReduceOut: the vector
// kernel over the largest multiple of 32 bytes, the portable loops for the
// rest. op is never Avg here.
func reduceFast(dst, a, b []byte, dt DType, op Op) {
	if n := len(a) &^ 31; n > 0 && useAVX2 && reduceAVX2(dst[:n], a[:n], b[:n], dt, op) {
		dst, a, b = dst[n:], a[n:], b[n:]
	}
	reducePortable(dst, a, b, dt, op)
}

// reduceAVX2 runs the kernel for (dt, op) over len(a) bytes (a multiple of
// 32, at least 32) and reports whether there was one.
func reduceAVX2(dst, a, b []byte, dt DType, op Op) bool {
	d, x, y, n := &dst[0], &a[0], &b[0], len(a)
	switch dt {
	case Float32:
		switch op {
		case Sum:
			f32SumAVX2(d, x, y, n)
		case Prod:
			f32ProdAVX2(d, x, y, n)
		case Min:
			f32MinAVX2(d, x, y, n)
		default:
			f32MaxAVX2(d, x, y, n)
		}
	case Float64:
		switch op {
		case Sum:
			f64SumAVX2(d, x, y, n)
		case Prod:
			f64ProdAVX2(d, x, y, n)
		case Min:
			f64MinAVX2(d, x, y, n)
		default:
			f64MaxAVX2(d, x, y, n)
		}
	case Int32:
		switch op {
		case Sum:
			i32SumAVX2(d, x, y, n)
		case Prod:
			i32ProdAVX2(d, x, y, n)
		case Min:
			i32MinAVX2(d, x, y, n)
		default:
			i32MaxAVX2(d, x, y, n)
		}
	case Int64:
		switch op {
		case Sum:
			i64SumAVX2(d, x, y, n)
		case Prod:
			i64ProdAVX2(d, x, y, n)
		case Min:
			i64MinAVX2(d, x, y, n)
		default:
			i64MaxAVX2(d, x, y, n)
		}
	case Int8, Uint8: // sums and products wrap the same way signed or not
		switch {
		case op == Sum:
			i8SumAVX2(d, x, y, n)
		case op == Prod:
			i8ProdAVX2(d, x, y, n)
		case op == Min && dt == Int8:
			i8MinAVX2(d, x, y, n)
		case op == Min:
			u8MinAVX2(d, x, y, n)
		case dt == Int8:
			i8MaxAVX2(d, x, y, n)
		default:
			u8MaxAVX2(d, x, y, n)
		}
	case Float16:
		if !useF16C {
			return false
		}
		switch op {
		case Sum:
			f16SumF16C(d, x, y, n)
		case Prod:
			f16ProdF16C(d, x, y, n)
		case Min:
			f16MinF16C(d, x, y, n)
		default:
			f16MaxF16C(d, x, y, n)
		}
	case BFloat16:
		switch op {
		case Sum:
			bf16SumAVX2(d, x, y, n)
		case Prod:
			bf16ProdAVX2(d, x, y, n)
		case Min:
			bf16MinAVX2(d, x, y, n)
		default:
			bf16MaxAVX2(d, x, y, n)
		}
	default:
		return false
	}
	return true
}

// divideFast is Finish's division: the vector kernel for the float types
// over the largest multiple of 32 bytes, the portable loops for the rest
// and for the integer types (which have no vector division).
func divideFast(buf []byte, dt DType, n int) {
	if m := len(buf) &^ 31; m > 0 && useAVX2 {
		p, done := &buf[0], true
		switch {
		case dt == Float32:
			f32DivAVX2(p, m, float32(n))
		case dt == Float64:
			f64DivAVX2(p, m, float64(n))
		case dt == Float16 && useF16C:
			f16DivF16C(p, m, float32(n))
		case dt == BFloat16:
			bf16DivAVX2(p, m, float32(n))
		default:
			done = false
		}
		if done {
			buf = buf[m:]
		}
	}
	dividePortable(buf, dt, n)
}
