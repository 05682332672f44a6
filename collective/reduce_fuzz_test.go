package collective

import "testing"

// FuzzReduce checks the fast path (ReduceOut, ReduceInto) and the typed
// loops against reduceGeneric on arbitrary bytes: data is split into a
// and b, placed off bytes past an aligned start.
func FuzzReduce(f *testing.F) {
	f.Add([]byte{}, uint8(Float32), uint8(Sum), uint8(0))
	f.Add(make([]byte, 130), uint8(Float16), uint8(Max), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, dtRaw, opRaw, offRaw uint8) {
		dt, op, off := DType(dtRaw%uint8(numDTypes)), Op(opRaw%uint8(numOps)), int(offRaw%16)
		n := len(data) / 2 / dt.Size() * dt.Size()
		bufA, bufB, bufD := make([]byte, n+off), make([]byte, n+off), make([]byte, n+off)
		a, b, d := bufA[off:], bufB[off:], bufD[off:]
		copy(a, data[:n])
		copy(b, data[n:2*n])
		want := make([]byte, n)
		reduceGeneric(want, a, b, dt, op)

		if err := ReduceOut(d, a, b, dt, op); err != nil {
			t.Fatal(err)
		}
		if msg := sameReduced(dt, d, want); msg != "" {
			t.Fatalf("ReduceOut %v %v: %s", dt, op, msg)
		}
		clear(d)
		reducePortable(d, a, b, dt, sumForAvg(op))
		if msg := sameReduced(dt, d, want); msg != "" {
			t.Fatalf("portable %v %v: %s", dt, op, msg)
		}
		if err := ReduceInto(a, b, dt, op); err != nil {
			t.Fatal(err)
		}
		if msg := sameReduced(dt, a, want); msg != "" {
			t.Fatalf("ReduceInto %v %v: %s", dt, op, msg)
		}
	})
}
