package lab

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// ErrBadQuantity: a rate or size string could not be parsed.
var ErrBadQuantity = errors.New("bad quantity")

type unit struct {
	suffix string
	mult   uint64
}

// Rate units as tc(8) spells them: bit units count bits, bps units bytes; a
// bare letter (k, m, g, t) means bits, so "10g" is 10 gbit/s.
var rateUnits = []unit{
	{"tibit", 1 << 40}, {"gibit", 1 << 30}, {"mibit", 1 << 20}, {"kibit", 1 << 10},
	{"tibps", 8 << 40}, {"gibps", 8 << 30}, {"mibps", 8 << 20}, {"kibps", 8 << 10},
	{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3},
	{"tbps", 8e12}, {"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3},
	{"bit", 1}, {"bps", 8},
	{"t", 1e12}, {"g", 1e9}, {"m", 1e6}, {"k", 1e3},
	{"", 1},
}

// Size units as tc(8) spells them: k, kb and kib are all 1024 bytes.
var sizeUnits = []unit{
	{"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10},
	{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10},
	{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1},
	{"", 1},
}

// ParseRate parses a rate such as "1gbit", "500mbit", "10g", "1.5gbit",
// "100mbps" (bytes) or "1000000" (bits) into bits per second. The result is
// rounded down and must be at least 1.
func ParseRate(s string) (uint64, error) {
	v, err := parseQuantity(s, rateUnits)
	if err != nil {
		return 0, fmt.Errorf("parse rate %q: %w", s, err)
	}
	return v, nil
}

// ParseSize parses a size such as "64k", "1500", "2mb" or "1kib" into bytes
// (k = 1024, as tc does). The result must be at least 1.
func ParseSize(s string) (uint64, error) {
	v, err := parseQuantity(s, sizeUnits)
	if err != nil {
		return 0, fmt.Errorf("parse size %q: %w", s, err)
	}
	return v, nil
}

func parseQuantity(s string, units []unit) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, u := range units {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok {
			continue
		}
		if !isDecimal(num) {
			break
		}
		r, ok := new(big.Rat).SetString(num)
		if !ok {
			break
		}
		r.Mul(r, new(big.Rat).SetUint64(u.mult))
		v := new(big.Int).Quo(r.Num(), r.Denom())
		if !v.IsUint64() {
			return 0, fmt.Errorf("%w: too large", ErrBadQuantity)
		}
		if v.Uint64() == 0 {
			return 0, fmt.Errorf("%w: must be positive", ErrBadQuantity)
		}
		return v.Uint64(), nil
	}
	return 0, fmt.Errorf("%w: want a number and a unit", ErrBadQuantity)
}

// isDecimal reports whether s is digits with at most one '.', at most 30
// characters (bounded work in big.Rat).
func isDecimal(s string) bool {
	if s == "" || s == "." || len(s) > 30 {
		return false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' && !dot:
			dot = true
		case c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

// FormatRate prints bits per second with the largest decimal bit unit that
// divides it exactly ("1gbit", "1500kbit", "7bit"); ParseRate reads it back.
func FormatRate(bps uint64) string {
	for _, u := range []unit{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}} {
		if bps != 0 && bps%u.mult == 0 {
			return strconv.FormatUint(bps/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(bps, 10) + "bit"
}

// FormatSize prints bytes with the largest binary unit that divides it
// exactly ("64k", "1500b"); ParseSize reads it back.
func FormatSize(b uint64) string {
	for _, u := range []unit{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if b != 0 && b%u.mult == 0 {
			return strconv.FormatUint(b/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(b, 10) + "b"
}
