package wire

// PSNAdd returns a+n modulo 2^24.
func PSNAdd(a, n uint32) uint32 { return (a + n) & Mask24 }

// PSNDiff returns the signed distance a-b on the 24-bit PSN circle, in
// [-2^23, 2^23): positive when a comes after b (b is before a), negative
// when a comes before b, zero when equal. Bits above 24 are ignored.
func PSNDiff(a, b uint32) int32 {
	return int32((a-b)<<8) >> 8
}

// PSNLess reports whether a comes before b on the 24-bit PSN circle (that
// is, PSNDiff(a, b) < 0).
func PSNLess(a, b uint32) bool { return PSNDiff(a, b) < 0 }
