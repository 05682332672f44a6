package tcp

import (
	"math/bits"
	"sync"
)

// Buffers for messages that arrive before their receive (unexpected) come
// from pools by power-of-two size class and go back once copied out: a
// fresh allocation clears every byte and faults its pages in, which for a
// 1 MiB broadcast issued many at a time cost as much as the copy (a
// quarter of the receiving rank's CPU in a profile).
const (
	minBufShift = 12 // 4 KiB: smaller messages come through the staging buffer anyway
	maxBufShift = 26 // 64 MiB: larger ones are allocated each time
)

var bufPools [maxBufShift - minBufShift + 1]sync.Pool

// bufClass is the pool for a buffer of n bytes, -1 for none.
func bufClass(n int) int {
	if n <= 0 || n > 1<<maxBufShift {
		return -1
	}
	shift := max(bits.Len(uint(n-1)), minBufShift)
	return shift - minBufShift
}

// getBuf returns a buffer of n bytes (contents undefined).
func getBuf(n int) []byte {
	c := bufClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if b, ok := bufPools[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<(c+minBufShift))
}

// putBuf gives back a buffer from getBuf that nobody uses any more.
func putBuf(b []byte) {
	c := bufClass(cap(b))
	if c < 0 || cap(b) != 1<<(c+minBufShift) {
		return
	}
	b = b[:cap(b)]
	bufPools[c].Put(&b)
}
