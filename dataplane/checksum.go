package dataplane

import (
	"encoding/binary"
	"math/bits"
)

// The Internet checksum (RFC 1071) is the one's complement of the one's
// complement sum of 16-bit big-endian words. Because 2^16 ≡ 1 modulo 2^16-1,
// the sum can be accumulated in 64-bit words with end-around carry and folded
// down to 16 bits at the end (RFC 1071 §2(C)); that is what checksumAdd does,
// 32 bytes per iteration.

// Checksum returns the Internet checksum of b: the value to store in an IPv4
// header checksum field computed with that field zeroed.
func Checksum(b []byte) uint16 {
	return ChecksumFinish(ChecksumPartial(b, 0))
}

// ChecksumPartial adds the 16-bit one's complement sum of b to sum and returns
// the result folded to 16 bits (always ≤ 0xFFFF). Use it to chain the parts of
// a checksum (pseudo-header, header, payload); every part except the last must
// have an even length, because b is summed as if it started on an even offset.
func ChecksumPartial(b []byte, sum uint32) uint32 {
	return uint32(fold64(checksumAdd(b, uint64(sum))))
}

// ChecksumFinish returns the checksum field value for a folded partial sum
// (the one's complement of sum).
func ChecksumFinish(sum uint32) uint16 {
	return ^uint16(fold64(uint64(sum)))
}

// checksumAdd adds the one's complement sum of b, as 16-bit big-endian words
// starting at an even offset, to acc (a 64-bit one's complement accumulator).
func checksumAdd(b []byte, acc uint64) uint64 {
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b[0:4])), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b[0:2])), c)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0])<<8, c)
	}
	// End-around carry: 2^64 ≡ 1, and acc+1 cannot carry again after a carry.
	acc, _ = bits.Add64(acc, 0, c)
	return acc
}

// fold64 folds a 64-bit one's complement accumulator to 16 bits.
func fold64(acc uint64) uint16 {
	s := acc>>32 + acc&0xffffffff // ≤ 2^33-2
	s = s>>32 + s&0xffffffff      // ≤ 2^32-1
	s = s>>16 + s&0xffff          // ≤ 0x1fffe
	s = s>>16 + s&0xffff          // ≤ 0xffff
	return uint16(s)
}

// pseudoHeaderSum returns the folded one's complement sum of the UDP/TCP
// pseudo-header: source and destination addresses (4 or 16 bytes each), the
// protocol number and the upper-layer length.
func pseudoHeaderSum(src, dst []byte, proto uint8, length int) uint32 {
	acc := checksumAdd(src, 0)
	acc = checksumAdd(dst, acc)
	acc, c := bits.Add64(acc, uint64(proto)+uint64(length), 0)
	acc += c
	return uint32(fold64(acc))
}
