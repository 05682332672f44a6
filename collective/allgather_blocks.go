package collective

// blocks cuts a buffer into n consecutive pieces. Piece i starts at
// off[i] and ends at off[i+1]; off has n+1 entries, off[0] = 0 and
// off[n] = the buffer's length. The allgather cores address their pieces
// through it, so they also serve pieces of different sizes (Bruck's
// rotated slots, the scatter+allgather broadcast's uneven cut).
type blocks struct {
	off []int
}

// evenBlocks cuts count elements of elem bytes into n pieces whose
// element counts differ by at most one, the larger ones first: piece i
// holds count/n elements, plus one when i < count%n. Cuts fall on element
// boundaries so a piece is always a whole number of elements.
func evenBlocks(count, elem, n int) blocks {
	off := make([]int, n+1)
	q, r := count/n, count%n
	for i := range n {
		c := q
		if i < r {
			c++
		}
		off[i+1] = off[i] + c*elem
	}
	return blocks{off: off}
}

// sizedBlocks lays pieces of the given byte lengths end to end.
func sizedBlocks(sizes []int) blocks {
	off := make([]int, len(sizes)+1)
	for i, s := range sizes {
		off[i+1] = off[i] + s
	}
	return blocks{off: off}
}

// total is the length of the whole buffer.
func (b blocks) total() int { return b.off[len(b.off)-1] }

// size is the length of piece i.
func (b blocks) size(i int) int { return b.off[i+1] - b.off[i] }

// span is the byte range of pieces [i, j).
func (b blocks) span(buf []byte, i, j int) []byte { return buf[b.off[i]:b.off[j]:b.off[j]] }

// piece is piece i of buf.
func (b blocks) piece(buf []byte, i int) []byte { return b.span(buf, i, i+1) }

// powerOfTwo reports whether n is a positive power of two.
func powerOfTwo(n int) bool { return n > 0 && n&(n-1) == 0 }

// ringPos is the non-negative remainder of a divided by n.
func ringPos(a, n int) int {
	r := a % n
	if r < 0 {
		r += n
	}
	return r
}
