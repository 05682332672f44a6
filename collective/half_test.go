package collective

import (
	"math"
	"testing"
)

func TestHalfRoundTrip(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := HalfToFloat32(uint16(h))
		if math.IsNaN(float64(f)) {
			if g := Float32ToHalf(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, g)
			}
			continue
		}
		if g := Float32ToHalf(f); g != uint16(h) {
			t.Fatalf("half %#04x -> %g -> %#04x", h, f, g)
		}
	}
	cases := []struct {
		f float32
		h uint16
	}{{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {1 + 1.0/2048, 0x3c00}, {1 + 3.0/2048, 0x3c02}, {5.960464477539063e-08, 0x0001}, {2.98e-08, 0}}
	for _, c := range cases {
		if g := Float32ToHalf(c.f); g != c.h {
			t.Errorf("Float32ToHalf(%g) = %#04x, want %#04x", c.f, g, c.h)
		}
	}
}

func TestBFloat16(t *testing.T) {
	for _, c := range []struct {
		f float32
		h uint16
	}{{1, 0x3f80}, {-2, 0xc000}, {1 + 1.0/256, 0x3f80}, {1 + 3.0/256, 0x3f82}, {float32(math.Inf(1)), 0x7f80}} {
		if g := Float32ToBFloat16(c.f); g != c.h {
			t.Errorf("Float32ToBFloat16(%g) = %#04x, want %#04x", c.f, g, c.h)
		}
		if c.h != 0x3f82 && BFloat16ToFloat32(c.h) != c.f && c.f != 1+1.0/256 {
			t.Errorf("BFloat16ToFloat32(%#04x) = %g", c.h, BFloat16ToFloat32(c.h))
		}
	}
	if !math.IsNaN(float64(BFloat16ToFloat32(Float32ToBFloat16(float32(math.NaN()))))) {
		t.Error("NaN lost")
	}
}
