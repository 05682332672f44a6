package collective

import (
	"encoding/binary"
	"math"
)

// A rank's sparse piece on the wire holds room for slots pairs: slots
// little-endian uint32 indices, then slots values of elem bytes; the
// first nnz of each are used, the rest is padding.

// sparseIndexSize is the wire size of one index.
const sparseIndexSize = 4

// packSparse writes indices and values into dst, a piece of slots pairs.
func packSparse(dst []byte, slots int, indices []uint32, values []byte) {
	for i, ix := range indices {
		binary.LittleEndian.PutUint32(dst[i*sparseIndexSize:], ix)
	}
	copy(dst[slots*sparseIndexSize:], values)
}

// scatterAddPacked adds the first nnz pairs of a piece of slots pairs
// into the dense vector out, in order. Indices were checked by their
// owner; one beyond out is skipped, never a panic.
func scatterAddPacked(out, piece []byte, slots, nnz int, dt DType) {
	e := dt.Size()
	vals := piece[slots*sparseIndexSize:]
	n := len(out) / e
	for i := range nnz {
		ix := int(binary.LittleEndian.Uint32(piece[i*sparseIndexSize:]))
		if ix >= n {
			continue
		}
		addElement(out[ix*e:(ix+1)*e], vals[i*e:(i+1)*e], dt)
	}
}

// scatterAdd adds pairs given as separate slices into out.
func scatterAdd(out []byte, indices []uint32, values []byte, dt DType) {
	e := dt.Size()
	n := len(out) / e
	for i, ix := range indices {
		if int(ix) >= n {
			continue
		}
		addElement(out[int(ix)*e:(int(ix)+1)*e], values[i*e:(i+1)*e], dt)
	}
}

// addElement adds one element; float32 and float64, the usual gradient
// types, skip the generic reduction's dispatch.
func addElement(dst, src []byte, dt DType) {
	le := binary.LittleEndian
	switch dt {
	case Float32:
		le.PutUint32(dst, math.Float32bits(math.Float32frombits(le.Uint32(dst))+math.Float32frombits(le.Uint32(src))))
	case Float64:
		le.PutUint64(dst, math.Float64bits(math.Float64frombits(le.Uint64(dst))+math.Float64frombits(le.Uint64(src))))
	default:
		_ = ReduceInto(dst, src, dt, Sum) // cannot fail: one valid element each
	}
}
