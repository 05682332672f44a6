package lab

import (
	"errors"
	"testing"
)

func TestParseRate(t *testing.T) {
	good := map[string]uint64{
		"1gbit": 1e9, "500mbit": 500e6, "10g": 10e9, "1.5gbit": 1.5e9, "100kbit": 100e3,
		"1000000": 1e6, "7bit": 7, "100mbps": 800e6, "2bps": 16, "1GBit": 1e9, " 1t ": 1e12,
		"1kibit": 1024, "1mibps": 8 << 20, "0.5k": 500,
	}
	for in, want := range good {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "gbit", "0", "0.0001bit", "-1gbit", "1e9", "1x", "1..2g", ".", "1gbitx", "99999999999999999999tbit", "NaN", "1 gbit"} {
		if got, err := ParseRate(in); !errors.Is(err, ErrBadQuantity) {
			t.Errorf("ParseRate(%q) = %d, %v; want ErrBadQuantity", in, got, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]uint64{"64k": 65536, "64kb": 65536, "1500": 1500, "1500b": 1500, "2m": 2 << 20, "1mib": 1 << 20, "1g": 1 << 30, "1.5k": 1536}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "0", "-1", "1kbit", "1t", "1e3"} {
		if got, err := ParseSize(in); !errors.Is(err, ErrBadQuantity) {
			t.Errorf("ParseSize(%q) = %d, %v; want ErrBadQuantity", in, got, err)
		}
	}
}

func TestFormat(t *testing.T) {
	rates := map[uint64]string{1e9: "1gbit", 1.5e9: "1500mbit", 7: "7bit", 10e12: "10tbit", 100e3: "100kbit"}
	for in, want := range rates {
		if got := FormatRate(in); got != want {
			t.Errorf("FormatRate(%d) = %q, want %q", in, got, want)
		}
	}
	sizes := map[uint64]string{65536: "64k", 1500: "1500b", 3 << 20: "3m", 1 << 30: "1g"}
	for in, want := range sizes {
		if got := FormatSize(in); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"1gbit", "10g", "1.5mbps", "0", "", "1e9", "99999999999999999999tbit"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseRate(s)
		if err != nil {
			if !errors.Is(err, ErrBadQuantity) {
				t.Fatalf("ParseRate(%q): error %v does not wrap ErrBadQuantity", s, err)
			}
			return
		}
		if v == 0 {
			t.Fatalf("ParseRate(%q) = 0 without error", s)
		}
		if back, err := ParseRate(FormatRate(v)); err != nil || back != v {
			t.Fatalf("round trip %d -> %q -> %d, %v", v, FormatRate(v), back, err)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64k", "1500", "1.5m", "0", "", "k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err != nil {
			if !errors.Is(err, ErrBadQuantity) {
				t.Fatalf("ParseSize(%q): error %v does not wrap ErrBadQuantity", s, err)
			}
			return
		}
		if v == 0 {
			t.Fatalf("ParseSize(%q) = 0 without error", s)
		}
		if back, err := ParseSize(FormatSize(v)); err != nil || back != v {
			t.Fatalf("round trip %d -> %q -> %d, %v", v, FormatSize(v), back, err)
		}
	})
}

func FuzzParseEntry(f *testing.F) {
	for _, s := range []string{"onet-h0", "onet-sw", "a-h1-h0", "-h0", "x-h999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, h, ok := parseEntry(s)
		if !ok {
			return
		}
		want := SwitchNetns(l)
		if h >= 0 {
			want = HostNetns(l, h)
		}
		if want != s || ValidateName(l) != nil {
			t.Fatalf("parseEntry(%q) = %q %d, which names %q", s, l, h, want)
		}
	})
}
