package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/opennetworks/onetdp/bpf"
)

// FlowctlSet is the parameters a flowctl request changes on the in-kernel
// ECN marker (bpf.ECNMarkerParams); nil fields keep their value. JSON keys:
//
//	rate_bps    drain rate of the phantom queue, bit/s
//	kmin_bytes  queue length below which nothing is marked
//	kmax_bytes  queue length at or above which every ECT packet is marked
//	pmax_ppm    marking probability just below kmax, parts per million
//	enabled     false: count only, no marks
type FlowctlSet struct {
	RateBps   *uint64 `json:"rate_bps,omitempty"`
	KminBytes *uint32 `json:"kmin_bytes,omitempty"`
	KmaxBytes *uint32 `json:"kmax_bytes,omitempty"`
	PmaxPPM   *uint32 `json:"pmax_ppm,omitempty"`
	Enabled   *bool   `json:"enabled,omitempty"`
}

// FlowctlKeys are the keys of a flowctl set object.
var FlowctlKeys = []string{"rate_bps", "kmin_bytes", "kmax_bytes", "pmax_ppm", "enabled"}

// apply returns p with s's fields set.
func (s *FlowctlSet) apply(p bpf.ECNMarkerParams) bpf.ECNMarkerParams {
	if s.RateBps != nil {
		p.RateBps = *s.RateBps
	}
	if s.KminBytes != nil {
		p.KminBytes = *s.KminBytes
	}
	if s.KmaxBytes != nil {
		p.KmaxBytes = *s.KmaxBytes
	}
	if s.PmaxPPM != nil {
		p.PmaxPPM = *s.PmaxPPM
	}
	if s.Enabled != nil {
		p.Disabled = !*s.Enabled
	}
	return p
}

// decodeFlowctlSet checks a set object key by key, so that each bad value
// gets its own error (wrapping ErrMalformed or ErrBadArgument).
func decodeFlowctlSet(b []byte) (FlowctlSet, error) {
	var s FlowctlSet
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil || m == nil {
		return s, fmt.Errorf("%w: \"set\" must be an object like {\"kmin_bytes\":20000} (keys %s)", ErrBadArgument, strings.Join(FlowctlKeys, ", "))
	}
	if len(m) == 0 {
		return s, fmt.Errorf("%w: empty \"set\" (keys %s)", ErrBadArgument, strings.Join(FlowctlKeys, ", "))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := bytes.TrimSpace(m[k])
		switch k {
		case "enabled":
			var e bool
			if err := json.Unmarshal(v, &e); err != nil {
				return s, fmt.Errorf("%w: set.enabled %s (want true or false)", ErrBadArgument, v)
			}
			s.Enabled = &e
		case "rate_bps":
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil || n > bpf.MaxECNRateBps || n == 0 {
				return s, fmt.Errorf("%w: set.rate_bps %s (want an integer 1..%d bit/s)", ErrBadArgument, v, uint64(bpf.MaxECNRateBps))
			}
			s.RateBps = &n
		case "kmin_bytes", "kmax_bytes", "pmax_ppm":
			limit := uint64(1<<32 - 1)
			if k == "pmax_ppm" {
				limit = bpf.PPMScale
			}
			n, err := strconv.ParseUint(string(v), 10, 32)
			if err != nil || n > limit {
				return s, fmt.Errorf("%w: set.%s %s (want an integer 0..%d)", ErrBadArgument, k, v, limit)
			}
			u := uint32(n)
			switch k {
			case "kmin_bytes":
				s.KminBytes = &u
			case "kmax_bytes":
				s.KmaxBytes = &u
			default:
				s.PmaxPPM = &u
			}
		default:
			return s, fmt.Errorf("%w: unknown flowctl parameter %q (want %s)", ErrBadArgument, k, strings.Join(FlowctlKeys, ", "))
		}
	}
	if s.KminBytes != nil && s.KmaxBytes != nil && *s.KminBytes > *s.KmaxBytes {
		return s, fmt.Errorf("%w: set.kmin_bytes %d above set.kmax_bytes %d", ErrBadArgument, *s.KminBytes, *s.KmaxBytes)
	}
	return s, nil
}
