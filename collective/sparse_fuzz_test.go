package collective

import (
	"bytes"
	"testing"
)

// FuzzSparseDecode feeds arbitrary bytes to the sparse allgather's wire
// decoders: a header must decode without panicking and round-trip, and a
// piece of any content (indices beyond the vector included) must add
// into the dense vector without panicking or writing outside it.
func FuzzSparseDecode(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}, uint8(0), uint8(2), uint8(2), uint8(4))
	f.Add(bytes.Repeat([]byte{0xff}, 40), uint8(6), uint8(3), uint8(3), uint8(1))
	f.Add([]byte{}, uint8(2), uint8(0), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, dtb, slots, nnz, n uint8) {
		if len(data) >= sparseHeaderSize {
			h := getSparseHeader(data)
			var b, c [sparseHeaderSize]byte
			h.put(b[:])
			getSparseHeader(b[:]).put(c[:])
			if b != c || !bytes.Equal(b[:24], data[:24]) {
				t.Fatalf("header %+v does not round-trip", h)
			}
		}
		dt := DType(dtb % uint8(numDTypes))
		e := dt.Size()
		k := min(int(nnz), int(slots))
		piece := make([]byte, int(slots)*(sparseIndexSize+e))
		copy(piece, data)
		out := make([]byte, int(n)*e+8)
		guard := append([]byte(nil), out[len(out)-8:]...)
		scatterAddPacked(out[:int(n)*e], piece, int(slots), k, dt)
		if !bytes.Equal(out[len(out)-8:], guard) {
			t.Fatal("wrote beyond the dense vector")
		}
	})
}
