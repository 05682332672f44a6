package tcp

import "testing"

// TestBufPool: buffers have the asked length, come back from their size
// class, and sizes outside the classes are plain allocations.
func TestBufPool(t *testing.T) {
	for _, n := range []int{1, 4096, 4097, 1 << 20, 3<<20 + 5, 1 << 26} {
		b := getBuf(n)
		if len(b) != n {
			t.Fatalf("getBuf(%d): len %d", n, len(b))
		}
		c := bufClass(n)
		if cap(b) != 1<<(c+minBufShift) || cap(b) < n || (c > 0 && cap(b)/2 >= n) {
			t.Errorf("getBuf(%d): cap %d, class %d", n, cap(b), c)
		}
		putBuf(b)
	}
	if c := bufClass(1<<26 + 1); c != -1 {
		t.Errorf("64 MiB + 1: class %d, want none", c)
	}
	if b := getBuf(1<<26 + 1); len(b) != 1<<26+1 {
		t.Errorf("unpooled size: len %d", len(b))
	}
	putBuf(make([]byte, 5000)) // not from a class: ignored
	if c := bufClass(0); c != -1 {
		t.Errorf("0 bytes: class %d", c)
	}
}
