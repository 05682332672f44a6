package collective

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// floatSpecials are bit patterns every float test mixes in: zeros, Infs,
// quiet, signalling and negative NaNs, the extremes of the subnormal and
// normal ranges, and ordinary values.
var floatSpecials = map[DType][]uint64{
	Float32: {0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc00001, 0x7fffffff,
		0x00000001, 0x807fffff, 0x00800000, 0x7f7fffff, 0xff7fffff, 0x3f800000, 0xbf800000, 0x3f800001},
	Float64: {0, 1 << 63, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, 0x7ff0000000000001,
		0xfff8000000000001, 1, 0x800fffffffffffff, 0x0010000000000000, 0x7fefffffffffffff, 0x3ff0000000000000,
		0xbff0000000000000, 0x3ff0000000000001},
	Float16: {0, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe01, 0x0001, 0x83ff, 0x0400, 0x7bff, 0xfbff,
		0x3c00, 0xbc00, 0x3c01, 0x7800},
	BFloat16: {0, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x7f81, 0xffc1, 0x0001, 0x807f, 0x0080, 0x7f7f, 0xff7f,
		0x3f80, 0xbf80, 0x3f81, 0x7f00},
}

var intSpecials = []uint64{0, 1, 2, 0xff, 0x7f, 0x80, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 1 << 63, 1<<63 - 1, math.MaxUint64}

// randomElem draws one element of dt as its bit pattern.
func randomElem(rng *rand.Rand, dt DType) uint64 {
	bits := uint64(dt.Size()) * 8
	mask := uint64(math.MaxUint64) >> (64 - bits)
	r := rng.Uint64()
	switch k := rng.IntN(8); {
	case k == 0 && dt.IsFloat():
		s := floatSpecials[dt]
		return s[rng.IntN(len(s))]
	case k == 0:
		return intSpecials[rng.IntN(len(intSpecials))] & mask
	case k == 1 && dt.IsFloat(): // subnormal, either sign
		mant := map[DType]uint64{Float32: 23, Float64: 52, Float16: 10, BFloat16: 7}[dt]
		return r&(1<<mant-1) | r&(1<<(bits-1))
	case k == 2 && dt.IsFloat(): // moderate magnitudes whose products stay finite
		switch dt {
		case Float32:
			return uint64(math.Float32bits(float32(rng.NormFloat64() * 100)))
		case Float64:
			return math.Float64bits(rng.NormFloat64() * 1e6)
		case Float16:
			return uint64(Float32ToHalf(float32(rng.NormFloat64() * 10)))
		default:
			return uint64(Float32ToBFloat16(float32(rng.NormFloat64() * 100)))
		}
	case k == 3 && !dt.IsFloat(): // small values, either sign
		return uint64(rng.Int64N(19)-9) & mask
	}
	return r & mask
}

// randomPair fills a and b with n elements each; some pairs are equal or
// differ only in sign, the cases min, max and sum are touchiest about.
func randomPair(rng *rand.Rand, dt DType, a, b []byte) {
	size := dt.Size()
	for i := 0; i+size <= len(a); i += size {
		x, y := randomElem(rng, dt), randomElem(rng, dt)
		switch rng.IntN(8) {
		case 0:
			y = x
		case 1:
			if dt.IsFloat() {
				y = x ^ 1<<(size*8-1)
			}
		}
		putElem(a[i:], size, x)
		putElem(b[i:], size, y)
	}
}

func putElem(p []byte, size int, v uint64) {
	var w [8]byte
	binary.LittleEndian.PutUint64(w[:], v)
	copy(p[:size], w[:size])
}

func getElem(p []byte, size int) uint64 {
	var w [8]byte
	copy(w[:size], p[:size])
	return binary.LittleEndian.Uint64(w[:])
}

func isNaNBits(dt DType, v uint64) bool {
	switch dt {
	case Float32:
		return v&0x7fffffff > 0x7f800000
	case Float64:
		return v&(1<<63-1) > 0x7ff0000000000000
	case Float16:
		return v&0x7fff > 0x7c00
	case BFloat16:
		return v&0x7fff > 0x7f80
	}
	return false
}

// sameReduced returns "" when got matches the reference want: identical
// bytes, except that any NaN stands for any other.
func sameReduced(dt DType, got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d bytes, want %d", len(got), len(want))
	}
	size := dt.Size()
	for i := 0; i < len(want); i += size {
		g, w := getElem(got[i:], size), getElem(want[i:], size)
		if g != w && !(isNaNBits(dt, g) && isNaNBits(dt, w)) {
			return fmt.Sprintf("element %d: got %#x, want %#x", i/size, g, w)
		}
	}
	return ""
}

// offsets are the (dst, a, b) misalignments every comparison runs at.
var offsets = [][3]int{{0, 0, 0}, {1, 1, 1}, {0, 3, 5}, {7, 2, 0}, {4, 8, 12}, {2, 6, 1}}

func TestReduceMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dt := range DTypes() {
		for _, op := range Ops() {
			t.Run(dt.String()+"/"+op.String(), func(t *testing.T) {
				checkAgainstGeneric(t, rng, dt, op, ReduceOut)
			})
		}
	}
}

// TestReducePortableMatchesGeneric reaches the typed loops directly, so
// they are checked on machines where the vector kernels take over.
func TestReducePortableMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	portable := func(dst, a, b []byte, dt DType, op Op) error {
		reducePortable(dst, a, b, dt, sumForAvg(op))
		return nil
	}
	for _, dt := range DTypes() {
		for _, op := range Ops() {
			t.Run(dt.String()+"/"+op.String(), func(t *testing.T) {
				checkAgainstGeneric(t, rng, dt, op, portable)
			})
		}
	}
}

// checkAgainstGeneric runs reduce over 0..300 elements at every offset
// triple into a separate destination, into a, into b, and via ReduceInto,
// comparing with reduceGeneric each time.
func checkAgainstGeneric(t *testing.T, rng *rand.Rand, dt DType, op Op, reduce func(dst, a, b []byte, dt DType, op Op) error) {
	t.Helper()
	size := dt.Size()
	const maxElems = 300
	bufA, bufB, bufD := make([]byte, maxElems*size+16), make([]byte, maxElems*size+16), make([]byte, maxElems*size+16)
	want, origA, origB := make([]byte, maxElems*size), make([]byte, maxElems*size), make([]byte, maxElems*size)
	for n := 0; n <= maxElems; n++ {
		nb := n * size
		for _, off := range offsets {
			d, a, b := bufD[off[0]:off[0]+nb], bufA[off[1]:off[1]+nb], bufB[off[2]:off[2]+nb]
			randomPair(rng, dt, a, b)
			reduceGeneric(want[:nb], a, b, dt, op)
			copy(origA, a)
			copy(origB, b)
			for _, mode := range []string{"out", "dst=a", "dst=b", "into"} {
				var err error
				var got []byte
				switch mode {
				case "out":
					err, got = reduce(d, a, b, dt, op), d
				case "dst=a":
					err, got = reduce(a, a, b, dt, op), a
				case "dst=b":
					err, got = reduce(b, a, b, dt, op), b
				case "into":
					err, got = ReduceInto(a, b, dt, op), a
				}
				if err != nil {
					t.Fatalf("%d elements, offsets %v, %s: %v", n, off, mode, err)
				}
				if msg := sameReduced(dt, got, want[:nb]); msg != "" {
					t.Fatalf("%d elements, offsets %v, %s: %s", n, off, mode, msg)
				}
				copy(a, origA[:nb])
				copy(b, origB[:nb])
			}
		}
	}
}

// TestReduceHalfExhaustive reduces every float16 and bfloat16 value
// against a spread of partners (one vector-sized buffer per partner).
func TestReduceHalfExhaustive(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	a, b := make([]byte, 1<<17), make([]byte, 1<<17)
	got, want := make([]byte, 1<<17), make([]byte, 1<<17)
	for i := range 1 << 16 {
		binary.LittleEndian.PutUint16(a[2*i:], uint16(i))
	}
	for _, dt := range []DType{Float16, BFloat16} {
		partners := append([]uint64(nil), floatSpecials[dt]...)
		for range 8 {
			partners = append(partners, randomElem(rng, dt))
		}
		for _, op := range []Op{Sum, Prod, Min, Max} {
			for _, p := range partners {
				for i := 0; i < len(b); i += 2 {
					binary.LittleEndian.PutUint16(b[i:], uint16(p))
				}
				for _, swap := range []bool{false, true} {
					x, y := a, b
					if swap {
						x, y = b, a
					}
					if err := ReduceOut(got, x, y, dt, op); err != nil {
						t.Fatal(err)
					}
					reduceGeneric(want, x, y, dt, op)
					if msg := sameReduced(dt, got, want); msg != "" {
						t.Fatalf("%v %v with %#04x (swapped %v): %s", dt, op, p, swap, msg)
					}
				}
			}
		}
	}
}

// TestReduceMinMaxSpecials pins the cases vector min/max get wrong by
// default: NaN in either operand, and signed zeros in either order.
func TestReduceMinMaxSpecials(t *testing.T) {
	for _, dt := range []DType{Float32, Float64, Float16, BFloat16} {
		size := dt.Size()
		sp := floatSpecials[dt]
		var pairs [][2]uint64
		for _, x := range sp {
			for _, y := range sp {
				pairs = append(pairs, [2]uint64{x, y})
			}
		}
		a, b, got := make([]byte, len(pairs)*size), make([]byte, len(pairs)*size), make([]byte, len(pairs)*size)
		for i, p := range pairs {
			putElem(a[i*size:], size, p[0])
			putElem(b[i*size:], size, p[1])
		}
		negZero := uint64(1) << (size*8 - 1)
		for _, op := range []Op{Min, Max} {
			if err := ReduceOut(got, a, b, dt, op); err != nil {
				t.Fatal(err)
			}
			for i, p := range pairs {
				g := getElem(got[i*size:], size)
				switch {
				case isNaNBits(dt, p[0]) || isNaNBits(dt, p[1]):
					if !isNaNBits(dt, g) {
						t.Errorf("%v %v(%#x, %#x) = %#x, want NaN", dt, op, p[0], p[1], g)
					}
				case p[0]|p[1] == negZero && p[0]&p[1] == 0: // +0 and -0
					want := negZero
					if op == Max {
						want = 0
					}
					if g != want {
						t.Errorf("%v %v(%#x, %#x) = %#x, want %#x", dt, op, p[0], p[1], g, want)
					}
				}
			}
		}
	}
}

func TestFinishMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, dt := range DTypes() {
		size := dt.Size()
		buf, want, scratch := make([]byte, 300*size+8), make([]byte, 300*size), make([]byte, 300*size+8)
		for _, ranks := range []int{2, 3, 7, 128, 200, 1 << 20, math.MaxInt32} {
			for n := 0; n <= 300; n += 1 + n/16 {
				for _, off := range []int{0, 1, 3} {
					p := buf[off : off+n*size]
					randomPair(rng, dt, p, scratch[:len(p)])
					copy(want, p)
					divideGeneric(want[:len(p)], dt, ranks)
					if err := Finish(p, dt, Avg, ranks); err != nil {
						t.Fatal(err)
					}
					if msg := sameReduced(dt, p, want[:len(p)]); msg != "" {
						t.Fatalf("%v over %d ranks, %d elements at +%d: %s", dt, ranks, n, off, msg)
					}
				}
			}
		}
	}
}

// TestFinishHalfExhaustive divides every float16 and bfloat16 value.
func TestFinishHalfExhaustive(t *testing.T) {
	buf, want := make([]byte, 1<<17), make([]byte, 1<<17)
	for _, dt := range []DType{Float16, BFloat16} {
		for _, ranks := range []int{2, 3, 5, 6, 7, 8, 100, 1000, 12345} {
			for i := range 1 << 16 {
				binary.LittleEndian.PutUint16(buf[2*i:], uint16(i))
			}
			copy(want, buf)
			divideGeneric(want, dt, ranks)
			if err := Finish(buf, dt, Avg, ranks); err != nil {
				t.Fatal(err)
			}
			if msg := sameReduced(dt, buf, want); msg != "" {
				t.Fatalf("%v over %d ranks: %s", dt, ranks, msg)
			}
		}
	}
}

func TestFinishLeavesOtherOps(t *testing.T) {
	buf := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	for _, op := range []Op{Sum, Prod, Min, Max} {
		if err := Finish(buf, Int32, op, 4); err != nil || buf[0] != 1 || buf[7] != 8 {
			t.Fatalf("Finish(%v) = %v, buf %v", op, err, buf)
		}
	}
	if err := Finish(buf, Int32, Avg, 1); err != nil || buf[0] != 1 {
		t.Fatalf("Finish over one rank = %v, buf %v", err, buf)
	}
}

func TestReduceErrors(t *testing.T) {
	b4, b8 := make([]byte, 4), make([]byte, 8)
	tooMany := math.MaxInt32
	tooMany++ // negative where int has 32 bits: rejected either way
	cases := []struct {
		name string
		err  error
	}{
		{"unequal", ReduceInto(b4, b8, Float32, Sum)},
		{"partial element", ReduceInto(b4, b4, Float64, Sum)},
		{"bad type", ReduceInto(b4, b4, DType(99), Sum)},
		{"bad op", ReduceInto(b4, b4, Float32, Op(99))},
		{"short destination", ReduceOut(b4, b8, b8, Float32, Sum)},
		{"zero ranks", Finish(b4, Float32, Avg, 0)},
		{"too many ranks", Finish(b4, Int32, Avg, tooMany)},
		{"finish partial", Finish(b4[:3], Float32, Avg, 2)},
	}
	for _, c := range cases {
		if !errors.Is(c.err, ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", c.name, c.err)
		}
	}
}

func TestReduceKnownValues(t *testing.T) {
	f32 := func(v ...float32) []byte {
		p := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(p[4*i:], math.Float32bits(x))
		}
		return p
	}
	a := f32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)
	b := f32(16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0.5)
	if err := ReduceInto(a, b, Float32, Avg); err != nil {
		t.Fatal(err)
	}
	if err := Finish(a, Float32, Avg, 2); err != nil {
		t.Fatal(err)
	}
	for i := range 16 {
		if v := math.Float32frombits(binary.LittleEndian.Uint32(a[4*i:])); v != 8.5 {
			t.Fatalf("element %d = %g, want 8.5", i, v)
		}
	}
	if v := math.Float32frombits(binary.LittleEndian.Uint32(a[64:])); v != 8.75 {
		t.Fatalf("element 16 = %g, want 8.75", v)
	}
	x, y := make([]byte, 64), make([]byte, 64)
	for i := range x {
		x[i], y[i] = 200, byte(i)
	}
	if err := ReduceInto(x, y, Uint8, Sum); err != nil {
		t.Fatal(err)
	}
	if x[0] != 200 || x[55] != 255 || x[56] != 0 || x[63] != 7 {
		t.Fatalf("uint8 sums do not wrap: %v", x)
	}
}

func TestReduceAllocs(t *testing.T) {
	a, b, d := make([]byte, 4096+3), make([]byte, 4096+3), make([]byte, 4096+3)
	for _, dt := range DTypes() {
		for _, op := range Ops() {
			for _, off := range []int{0, 3} {
				n := 4096 - 4096%dt.Size()
				x, y, z := a[off:off+n], b[off:off+n], d[off:off+n]
				allocs := testing.AllocsPerRun(20, func() {
					_ = ReduceInto(x, y, dt, op)
					_ = ReduceOut(z, x, y, dt, op)
					_ = Finish(z, dt, op, 3)
				})
				if allocs != 0 {
					t.Errorf("%v %v at +%d: %g allocations per call", dt, op, off, allocs)
				}
			}
		}
	}
}

// TestFinishIntegerExhaustive divides every int8 and uint8 value by
// every rank count that matters for bytes, and some int32/int64 extremes,
// against truncating integer division done here.
func TestFinishIntegerExhaustive(t *testing.T) {
	for _, ranks := range []int{2, 3, 127, 128, 129, 200, 255, 256, 257, 1000, math.MaxInt32} {
		for _, dt := range []DType{Int8, Uint8} {
			buf := make([]byte, 512) // the table path (>= 256 bytes)
			for i := range buf {
				buf[i] = byte(i)
			}
			short := append([]byte(nil), buf[:200]...) // the generic path
			if err := Finish(buf, dt, Avg, ranks); err != nil {
				t.Fatal(err)
			}
			if err := Finish(short, dt, Avg, ranks); err != nil {
				t.Fatal(err)
			}
			for i, got := range buf {
				var want byte
				if dt == Int8 {
					want = byte(int8(int(int8(byte(i))) / ranks))
				} else {
					want = byte(int(byte(i)) / ranks)
				}
				if got != want || (i < len(short) && short[i] != want) {
					t.Fatalf("%v %d / %d ranks = %d (short path %d), want %d", dt, int8(byte(i)), ranks, got, short[min(i, len(short)-1)], want)
				}
			}
		}
		le := binary.LittleEndian
		for _, v := range []int64{math.MinInt32, math.MinInt32 + 1, -1, 1, math.MaxInt32} {
			b := le.AppendUint32(nil, uint32(int32(v)))
			if err := Finish(b, Int32, Avg, ranks); err != nil {
				t.Fatal(err)
			}
			if got, want := int32(le.Uint32(b)), int32(v/int64(ranks)); got != want {
				t.Fatalf("int32 %d / %d ranks = %d, want %d", v, ranks, got, want)
			}
		}
		for _, v := range []int64{math.MinInt64, math.MinInt64 + 1, -1, 1, math.MaxInt64} {
			b := le.AppendUint64(nil, uint64(v))
			if err := Finish(b, Int64, Avg, ranks); err != nil {
				t.Fatal(err)
			}
			if got, want := int64(le.Uint64(b)), v/int64(ranks); got != want {
				t.Fatalf("int64 %d / %d ranks = %d, want %d", v, ranks, got, want)
			}
		}
	}
}
