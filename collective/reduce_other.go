//go:build !amd64 || purego

package collective

// reduceFast is the dispatch behind ReduceInto and ReduceOut; without the
// amd64 kernels it is the portable typed loops. op is never Avg here.
func reduceFast(dst, a, b []byte, dt DType, op Op) { reducePortable(dst, a, b, dt, op) }

// divideFast is Finish's division, the portable typed loops here.
func divideFast(buf []byte, dt DType, n int) { dividePortable(buf, dt, n) }
