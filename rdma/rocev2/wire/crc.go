package wire

import (
	"encoding/binary"
	"hash/crc32"
)

// hash/crc32.Update passes its input through a function variable (the
// CPU-specific IEEE implementation), so escape analysis makes every slice
// given to it escape: a masked copy of the headers on the stack would move
// to the heap on every call. The masked headers (at most 80 bytes) are
// therefore run through this small slicing-by-8 CRC-32 instead, and only
// the caller's own packet bytes go to crc32.Update (which uses carry-less
// multiplication on long inputs). Both compute the same IEEE CRC and chain
// the same way (crc32.Update semantics).

// crcTables[k][b] is the CRC contribution of byte b followed by k zero
// bytes (reflected IEEE polynomial 0xEDB88320).
var crcTables = func() (t [8][256]uint32) {
	t[0] = *crc32.IEEETable
	for i := range 256 {
		c := t[0][i]
		for k := 1; k < 8; k++ {
			c = t[0][c&0xFF] ^ c>>8
			t[k][i] = c
		}
	}
	return t
}()

// crcUpdateSmall returns crc32.Update(crc, crc32.IEEETable, p) without
// letting p escape. Meant for short inputs.
func crcUpdateSmall(crc uint32, p []byte) uint32 {
	crc = ^crc
	for len(p) >= 8 {
		crc ^= binary.LittleEndian.Uint32(p[0:4])
		crc = crcTables[7][crc&0xFF] ^ crcTables[6][crc>>8&0xFF] ^
			crcTables[5][crc>>16&0xFF] ^ crcTables[4][crc>>24] ^
			crcTables[3][p[4]] ^ crcTables[2][p[5]] ^
			crcTables[1][p[6]] ^ crcTables[0][p[7]]
		p = p[8:]
	}
	for _, b := range p {
		crc = crcTables[0][byte(crc)^b] ^ crc>>8
	}
	return ^crc
}
