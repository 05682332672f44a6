package collective

import "unsafe"

// The portable fast path: typed loops over the byte slices reinterpreted
// in place. They are exact stand-ins for reduceGeneric (same float32
// rounding, builtin min/max propagate NaN and order -0 below +0 as
// math.Min/Max do) and run wherever the host is little-endian (the wire
// order) and the buffers are aligned for the element type; anything else
// goes element by element through reduceGeneric.

// littleEndian reports whether the host stores integers least
// significant byte first, as the buffers do.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// typedOK reports whether p can be viewed as elements of size bytes.
func typedOK(p []byte, size int) bool {
	return littleEndian && uintptr(unsafe.Pointer(unsafe.SliceData(p)))%uintptr(size) == 0
}

// view reinterprets b (non-empty, aligned for T) as a slice of T.
func view[T any](b []byte) []T {
	var z T
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/int(unsafe.Sizeof(z)))
}

// reducePortable sets dst = a op b with typed loops where it can. op is
// never Avg.
func reducePortable(dst, a, b []byte, dt DType, op Op) {
	if len(a) == 0 {
		return
	}
	if size := dt.Size(); !typedOK(dst, size) || !typedOK(a, size) || !typedOK(b, size) {
		reduceGeneric(dst, a, b, dt, op)
		return
	}
	switch dt {
	case Float32:
		reduceFloat(view[float32](dst), view[float32](a), view[float32](b), op)
	case Float64:
		reduceFloat(view[float64](dst), view[float64](a), view[float64](b), op)
	case Int8:
		reduceInt(view[int8](dst), view[int8](a), view[int8](b), op)
	case Uint8:
		reduceInt(dst, a, b, op)
	case Int32:
		reduceInt(view[int32](dst), view[int32](a), view[int32](b), op)
	case Int64:
		reduceInt(view[int64](dst), view[int64](a), view[int64](b), op)
	case Float16:
		reduceFloat16(view[uint16](dst), view[uint16](a), view[uint16](b), op)
	case BFloat16:
		reduceBFloat16(view[uint16](dst), view[uint16](a), view[uint16](b), op)
	}
}

func reduceFloat[T float32 | float64](d, a, b []T, op Op) {
	a, b = a[:len(d)], b[:len(d)]
	switch op {
	case Sum:
		for i := range d {
			d[i] = a[i] + b[i]
		}
	case Prod:
		for i := range d {
			d[i] = a[i] * b[i]
		}
	case Min:
		for i := range d {
			d[i] = min(a[i], b[i])
		}
	case Max:
		for i := range d {
			d[i] = max(a[i], b[i])
		}
	}
}

func reduceInt[T int8 | uint8 | int32 | int64](d, a, b []T, op Op) {
	a, b = a[:len(d)], b[:len(d)]
	switch op {
	case Sum:
		for i := range d {
			d[i] = a[i] + b[i]
		}
	case Prod:
		for i := range d {
			d[i] = a[i] * b[i]
		}
	case Min:
		for i := range d {
			d[i] = min(a[i], b[i])
		}
	case Max:
		for i := range d {
			d[i] = max(a[i], b[i])
		}
	}
}

func reduceFloat16(d, a, b []uint16, op Op) {
	a, b = a[:len(d)], b[:len(d)]
	switch op {
	case Sum:
		for i := range d {
			d[i] = Float32ToHalf(HalfToFloat32(a[i]) + HalfToFloat32(b[i]))
		}
	case Prod:
		for i := range d {
			d[i] = Float32ToHalf(HalfToFloat32(a[i]) * HalfToFloat32(b[i]))
		}
	case Min:
		for i := range d {
			d[i] = Float32ToHalf(min(HalfToFloat32(a[i]), HalfToFloat32(b[i])))
		}
	case Max:
		for i := range d {
			d[i] = Float32ToHalf(max(HalfToFloat32(a[i]), HalfToFloat32(b[i])))
		}
	}
}

func reduceBFloat16(d, a, b []uint16, op Op) {
	a, b = a[:len(d)], b[:len(d)]
	switch op {
	case Sum:
		for i := range d {
			d[i] = Float32ToBFloat16(BFloat16ToFloat32(a[i]) + BFloat16ToFloat32(b[i]))
		}
	case Prod:
		for i := range d {
			d[i] = Float32ToBFloat16(BFloat16ToFloat32(a[i]) * BFloat16ToFloat32(b[i]))
		}
	case Min:
		for i := range d {
			d[i] = Float32ToBFloat16(min(BFloat16ToFloat32(a[i]), BFloat16ToFloat32(b[i])))
		}
	case Max:
		for i := range d {
			d[i] = Float32ToBFloat16(max(BFloat16ToFloat32(a[i]), BFloat16ToFloat32(b[i])))
		}
	}
}

// dividePortable divides every element by n (2 <= n <= MaxInt32) exactly
// as divideGeneric does, with typed loops where the buffer allows and a
// 256-entry quotient table for the byte types.
func dividePortable(buf []byte, dt DType, n int) {
	if len(buf) == 0 {
		return
	}
	if !typedOK(buf, dt.Size()) {
		divideGeneric(buf, dt, n)
		return
	}
	switch dt {
	case Float32:
		s, d := view[float32](buf), float32(n)
		for i := range s {
			s[i] /= d
		}
	case Float64:
		s, d := view[float64](buf), float64(n)
		for i := range s {
			s[i] /= d
		}
	case Float16:
		s, d := view[uint16](buf), float32(n)
		for i := range s {
			s[i] = Float32ToHalf(HalfToFloat32(s[i]) / d)
		}
	case BFloat16:
		s, d := view[uint16](buf), float32(n)
		for i := range s {
			s[i] = Float32ToBFloat16(BFloat16ToFloat32(s[i]) / d)
		}
	case Int8, Uint8:
		if len(buf) < 256 {
			divideGeneric(buf, dt, n)
			return
		}
		var q [256]byte
		for i := range q {
			q[i] = byte(i)
		}
		divideGeneric(q[:], dt, n)
		for i, v := range buf {
			buf[i] = q[v]
		}
	case Int32:
		s, d := view[int32](buf), int32(n)
		for i := range s {
			s[i] /= d
		}
	case Int64:
		s, d := view[int64](buf), int64(n)
		for i := range s {
			s[i] /= d
		}
	}
}
