package collective

import (
	"encoding/binary"
	"fmt"
	"math"
)

// ReduceInto sets dst[i] = dst[i] op src[i] for every element. Avg reduces
// as Sum (Finish divides). dst and src hold the same whole number of
// elements of dt. Float16 and BFloat16 compute in float32 and round once.
// Integer sums and products wrap (two's complement).
func ReduceInto(dst, src []byte, dt DType, op Op) error {
	if err := checkReduce(len(dst), len(src), dt, op); err != nil {
		return err
	}
	reduceFast(dst, dst, src, dt, sumForAvg(op))
	return nil
}

// ReduceOut sets dst[i] = a[i] op b[i]; dst may be a or b.
func ReduceOut(dst, a, b []byte, dt DType, op Op) error {
	if err := checkReduce(len(a), len(b), dt, op); err != nil {
		return err
	}
	if len(dst) != len(a) {
		return fmt.Errorf("reduce: destination of %d bytes for %d: %w", len(dst), len(a), ErrInvalidArgument)
	}
	reduceFast(dst, a, b, dt, sumForAvg(op))
	return nil
}

// Finish completes a reduction over n ranks: Avg divides every element by
// n (integers truncate toward zero); the other reductions leave buf as is.
// n runs from 1 to math.MaxInt32.
func Finish(buf []byte, dt DType, op Op, n int) error {
	if err := checkReduce(len(buf), len(buf), dt, op); err != nil {
		return err
	}
	if op != Avg || n == 1 {
		return nil
	}
	if n < 1 || n > math.MaxInt32 {
		return fmt.Errorf("reduce: average over %d ranks: %w", n, ErrInvalidArgument)
	}
	divideFast(buf, dt, n)
	return nil
}

// sumForAvg maps Avg to the Sum it reduces as.
func sumForAvg(op Op) Op {
	if op == Avg {
		return Sum
	}
	return op
}

func checkReduce(nd, ns int, dt DType, op Op) error {
	switch {
	case !dt.Valid():
		return fmt.Errorf("reduce: %v: %w", dt, ErrInvalidArgument)
	case !op.Valid():
		return fmt.Errorf("reduce: %v: %w", op, ErrInvalidArgument)
	case nd != ns:
		return fmt.Errorf("reduce: buffers of %d and %d bytes: %w", nd, ns, ErrInvalidArgument)
	case nd%dt.Size() != 0:
		return fmt.Errorf("reduce: %d bytes is not a whole number of %v: %w", nd, dt, ErrInvalidArgument)
	}
	return nil
}

// reduceGeneric is the portable element-by-element reduction, the
// reference the vector paths are tested against.
func reduceGeneric(dst, a, b []byte, dt DType, op Op) {
	le := binary.LittleEndian
	switch dt {
	case Float32:
		for i := 0; i+4 <= len(a); i += 4 {
			x, y := math.Float32frombits(le.Uint32(a[i:])), math.Float32frombits(le.Uint32(b[i:]))
			le.PutUint32(dst[i:], math.Float32bits(float32(applyFloat(float64(x), float64(y), op))))
		}
	case Float64:
		for i := 0; i+8 <= len(a); i += 8 {
			x, y := math.Float64frombits(le.Uint64(a[i:])), math.Float64frombits(le.Uint64(b[i:]))
			le.PutUint64(dst[i:], math.Float64bits(applyFloat(x, y, op)))
		}
	case Float16, BFloat16:
		from, to := HalfToFloat32, Float32ToHalf
		if dt == BFloat16 {
			from, to = BFloat16ToFloat32, Float32ToBFloat16
		}
		for i := 0; i+2 <= len(a); i += 2 {
			x, y := from(le.Uint16(a[i:])), from(le.Uint16(b[i:]))
			le.PutUint16(dst[i:], to(float32(applyFloat(float64(x), float64(y), op))))
		}
	case Int8:
		for i := range a {
			dst[i] = byte(int8(applyInteger(int64(int8(a[i])), int64(int8(b[i])), op)))
		}
	case Uint8:
		for i := range a {
			dst[i] = byte(applyInteger(uint64(a[i]), uint64(b[i]), op))
		}
	case Int32:
		for i := 0; i+4 <= len(a); i += 4 {
			le.PutUint32(dst[i:], uint32(applyInteger(int64(int32(le.Uint32(a[i:]))), int64(int32(le.Uint32(b[i:]))), op)))
		}
	case Int64:
		for i := 0; i+8 <= len(a); i += 8 {
			le.PutUint64(dst[i:], uint64(applyInteger(int64(le.Uint64(a[i:])), int64(le.Uint64(b[i:])), op)))
		}
	}
}

func applyFloat(x, y float64, op Op) float64 {
	switch op {
	case Prod:
		return x * y
	case Min:
		if math.IsNaN(x) || math.IsNaN(y) {
			return math.NaN()
		}
		return math.Min(x, y)
	case Max:
		if math.IsNaN(x) || math.IsNaN(y) {
			return math.NaN()
		}
		return math.Max(x, y)
	}
	return x + y
}

// applyInteger is op on two integers; sums and products wrap.
func applyInteger[T int64 | uint64](x, y T, op Op) T {
	switch op {
	case Prod:
		return x * y
	case Min:
		return min(x, y)
	case Max:
		return max(x, y)
	}
	return x + y
}

func divideGeneric(buf []byte, dt DType, n int) {
	le := binary.LittleEndian
	switch dt {
	case Float32:
		for i := 0; i+4 <= len(buf); i += 4 {
			le.PutUint32(buf[i:], math.Float32bits(math.Float32frombits(le.Uint32(buf[i:]))/float32(n)))
		}
	case Float64:
		for i := 0; i+8 <= len(buf); i += 8 {
			le.PutUint64(buf[i:], math.Float64bits(math.Float64frombits(le.Uint64(buf[i:]))/float64(n)))
		}
	case Float16, BFloat16:
		from, to := HalfToFloat32, Float32ToHalf
		if dt == BFloat16 {
			from, to = BFloat16ToFloat32, Float32ToBFloat16
		}
		for i := 0; i+2 <= len(buf); i += 2 {
			le.PutUint16(buf[i:], to(from(le.Uint16(buf[i:]))/float32(n)))
		}
	case Int8:
		for i := range buf {
			buf[i] = byte(int8(int(int8(buf[i])) / n))
		}
	case Uint8:
		for i := range buf {
			buf[i] = byte(int(buf[i]) / n)
		}
	case Int32:
		for i := 0; i+4 <= len(buf); i += 4 {
			le.PutUint32(buf[i:], uint32(int32(le.Uint32(buf[i:]))/int32(n)))
		}
	case Int64:
		for i := 0; i+8 <= len(buf); i += 8 {
			le.PutUint64(buf[i:], uint64(int64(le.Uint64(buf[i:]))/int64(n)))
		}
	}
}
