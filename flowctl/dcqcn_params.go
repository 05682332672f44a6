package flowctl

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Sentinel errors of ParseDCQCNParams and DCQCNParams.Validate.
var (
	// ErrUnknownParam: a key that is not one of NVIDIA's DCQCN names.
	ErrUnknownParam = errors.New("unknown dcqcn parameter")
	// ErrBadParam: a malformed pair or a value out of NVIDIA's range.
	ErrBadParam = errors.New("bad dcqcn parameter")
)

// DCQCNParams are the DCQCN reaction-point and notification-point settings
// of an NVIDIA ConnectX NIC (ConnectX-4 and later), with NVIDIA's names in
// the nv struct tag and NVIDIA's units: the same numbers mlxconfig and
// /sys/class/net/<if>/ecn/roce_rp and roce_np show, so a NIC's configuration
// can be pasted (ParseDCQCNParams). Source: NVIDIA "DCQCN CC Parameters"
// (DOCA / MLNX_OFED documentation) and the Mellanox community post "DCQCN
// Parameters". The value is plain data, owned by whoever holds it.
type DCQCNParams struct {
	// RPGTimeReset is the rate-increase timer period in µs: without CNPs
	// the rate increases once per period (one time stage).
	RPGTimeReset uint32 `nv:"rpg_time_reset"`
	// RPGByteReset is the byte-counter period in bytes: without CNPs the
	// rate increases once per this many bytes sent (one byte stage); 0
	// disables the byte counter.
	RPGByteReset uint32 `nv:"rpg_byte_reset"`
	// RPGThreshold is how many byte or time stages run fast recovery before
	// the state machine moves to additive, then hyper increase (1..31).
	RPGThreshold uint32 `nv:"rpg_threshold"`
	// RPGAIRate is the additive-increase step of the target rate, Mb/s.
	RPGAIRate uint32 `nv:"rpg_ai_rate"`
	// RPGHAIRate is the hyper-increase step of the target rate, Mb/s.
	RPGHAIRate uint32 `nv:"rpg_hai_rate"`
	// RPGGD is log2 of the alpha-to-decrease divisor with alpha as a 10-bit
	// fixed-point fraction: a CNP cuts the rate by alpha*1024/2^RPGGD of
	// itself, so the default 11 gives the paper's (1 - alpha/2).
	RPGGD uint32 `nv:"rpg_gd"`
	// RPGMinDecFac bounds one decrease, in percent: the new rate is at
	// least RPGMinDecFac % of the old one (100 disables decreases).
	RPGMinDecFac uint32 `nv:"rpg_min_dec_fac"`
	// RPGMinRate is the least rate a flow is cut to, Mb/s.
	RPGMinRate uint32 `nv:"rpg_min_rate"`
	// RPGMaxRate caps the rate in Mb/s; 0 means the line rate.
	RPGMaxRate uint32 `nv:"rpg_max_rate"`
	// DCETCPG is (1-g)*1024 of the alpha EWMA: each alpha period alpha
	// becomes DCETCPG/1024*alpha, plus (1024-DCETCPG)/1024 if a CNP arrived
	// in the period (1019 gives g = 5/1024).
	DCETCPG uint32 `nv:"dce_tcp_g"`
	// DCETCPRTT is the alpha update period in µs.
	DCETCPRTT uint32 `nv:"dce_tcp_rtt"`
	// RateReduceMonitorPeriod is the least time between two rate decreases
	// in µs; CNPs arriving sooner cause one decrease at the period's end.
	RateReduceMonitorPeriod uint32 `nv:"rate_reduce_monitor_period"`
	// InitialAlphaValue is alpha at a flow's first CNP, in 1/1024 (1023
	// is ~1.0).
	InitialAlphaValue uint32 `nv:"initial_alpha_value"`
	// RateToSetOnFirstCNP, when not 0, is the current and target rate a
	// flow is set to on its first CNP (Mb/s) instead of an alpha decrease.
	RateToSetOnFirstCNP uint32 `nv:"rate_to_set_on_first_cnp"`
	// ClampTgtRate, when 1, sets the target rate to the current rate on
	// every decrease.
	ClampTgtRate uint32 `nv:"clamp_tgt_rate"`
	// ClampTgtRateAfterTimeInc, when 1 (and ClampTgtRate is 0), sets the
	// target rate to the current rate on a decrease only if the timer has
	// raised the rate since the last decrease; when 0, if either counter
	// has.
	ClampTgtRateAfterTimeInc uint32 `nv:"clamp_tgt_rate_after_time_inc"`
	// MinTimeBetweenCNPs is the notification point's least time between
	// two CNPs for one flow, µs (see CNPLimiter).
	MinTimeBetweenCNPs uint32 `nv:"min_time_between_cnps"`
	// CNPDSCP is the DSCP the notification point sends CNPs with.
	CNPDSCP uint32 `nv:"cnp_dscp"`
}

// DefaultDCQCNParams returns NVIDIA's firmware defaults (DESIGN.md §4).
func DefaultDCQCNParams() DCQCNParams {
	return DCQCNParams{
		RPGTimeReset:             300,
		RPGByteReset:             32767,
		RPGThreshold:             1,
		RPGAIRate:                5,
		RPGHAIRate:               50,
		RPGGD:                    11,
		RPGMinDecFac:             50,
		RPGMinRate:               1,
		RPGMaxRate:               0,
		DCETCPG:                  1019,
		DCETCPRTT:                1,
		RateReduceMonitorPeriod:  4,
		InitialAlphaValue:        1023,
		RateToSetOnFirstCNP:      0,
		ClampTgtRate:             0,
		ClampTgtRateAfterTimeInc: 1,
		MinTimeBetweenCNPs:       4,
		CNPDSCP:                  48,
	}
}

// paramRange is NVIDIA's documented range of each parameter.
var paramRange = map[string][2]uint32{
	"rpg_time_reset":                {1, 131071},
	"rpg_byte_reset":                {0, 32767},
	"rpg_threshold":                 {1, 31},
	"rpg_ai_rate":                   {1, 1 << 31},
	"rpg_hai_rate":                  {1, 1 << 31},
	"rpg_gd":                        {1, 31},
	"rpg_min_dec_fac":               {0, 100},
	"rpg_min_rate":                  {1, 1 << 31},
	"rpg_max_rate":                  {0, 1 << 31},
	"dce_tcp_g":                     {0, 1023},
	"dce_tcp_rtt":                   {1, 131071},
	"rate_reduce_monitor_period":    {0, 1 << 31},
	"initial_alpha_value":           {1, 1023},
	"rate_to_set_on_first_cnp":      {0, 1 << 31},
	"clamp_tgt_rate":                {0, 1},
	"clamp_tgt_rate_after_time_inc": {0, 1},
	"min_time_between_cnps":         {0, 1 << 31},
	"cnp_dscp":                      {0, 63},
}

// paramField maps an NVIDIA name to its field index in DCQCNParams.
var paramField = func() map[string]int {
	m := map[string]int{}
	t := reflect.TypeFor[DCQCNParams]()
	for i := range t.NumField() {
		m[t.Field(i).Tag.Get("nv")] = i
	}
	return m
}()

// Validate checks every field against NVIDIA's documented range.
func (p DCQCNParams) Validate() error {
	v := reflect.ValueOf(p)
	t := v.Type()
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("nv")
		r := paramRange[name]
		x := uint32(v.Field(i).Uint())
		if x < r[0] || x > r[1] {
			return fmt.Errorf("dcqcn %s=%d not in [%d, %d]: %w", name, x, r[0], r[1], ErrBadParam)
		}
	}
	return nil
}

// String writes p as "name=value" lines in field order, the format
// ParseDCQCNParams reads back.
func (p DCQCNParams) String() string {
	var b strings.Builder
	v := reflect.ValueOf(p)
	t := v.Type()
	for i := range t.NumField() {
		b.WriteString(t.Field(i).Tag.Get("nv"))
		b.WriteByte('=')
		b.WriteString(strconv.FormatUint(v.Field(i).Uint(), 10))
		b.WriteByte('\n')
	}
	return b.String()
}

// Set sets the parameter NVIDIA calls name (case-insensitive) to value,
// after checking its range.
func (p *DCQCNParams) Set(name string, value uint32) error {
	name = strings.ToLower(name)
	i, ok := paramField[name]
	if !ok {
		return fmt.Errorf("dcqcn %q: %w", name, ErrUnknownParam)
	}
	if r := paramRange[name]; value < r[0] || value > r[1] {
		return fmt.Errorf("dcqcn %s=%d not in [%d, %d]: %w", name, value, r[0], r[1], ErrBadParam)
	}
	reflect.ValueOf(p).Elem().Field(i).SetUint(uint64(value))
	return nil
}

// ParseDCQCNParams reads pairs over DefaultDCQCNParams and returns the
// result. Pairs are name=value or name:value (spaces around the separator
// allowed), separated by newlines, commas, semicolons or spaces; '#' starts
// a comment to the end of the line. A name may carry a path, so the output
// of `grep . /sys/class/net/eth0/ecn/roce_rp/*` pastes as is. Values are
// decimal in NVIDIA's units; a later pair overrides an earlier one.
// Errors wrap ErrUnknownParam or ErrBadParam.
func ParseDCQCNParams(s string) (DCQCNParams, error) {
	p := DefaultDCQCNParams()
	for ln, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, f := range pairFields(line) {
			sep := strings.LastIndexAny(f, "=:")
			if sep <= 0 || sep == len(f)-1 {
				return p, fmt.Errorf("dcqcn line %d: %q is not name=value: %w", ln+1, f, ErrBadParam)
			}
			name := f[:sep]
			if j := strings.LastIndexByte(name, '/'); j >= 0 {
				name = name[j+1:]
			}
			val, err := strconv.ParseUint(f[sep+1:], 10, 32)
			if err != nil {
				return p, fmt.Errorf("dcqcn line %d: %s: %w", ln+1, name, errors.Join(ErrBadParam, err))
			}
			if err := p.Set(name, uint32(val)); err != nil {
				return p, fmt.Errorf("line %d: %w", ln+1, err)
			}
		}
	}
	return p, nil
}

// pairFields splits a line into name=value fields, gluing "a = b" and
// "a: b" together.
func pairFields(line string) []string {
	raw := strings.FieldsFunc(line, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == ',' || r == ';'
	})
	out := raw[:0]
	for i := 0; i < len(raw); i++ {
		f := raw[i]
		for i+1 < len(raw) && (strings.HasSuffix(f, "=") || strings.HasSuffix(f, ":") ||
			strings.HasPrefix(raw[i+1], "=") || strings.HasPrefix(raw[i+1], ":")) {
			i++
			f += raw[i]
		}
		out = append(out, f)
	}
	return out
}
