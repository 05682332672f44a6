package flowctl

import (
	"errors"
	"testing"
)

func TestDefaultDCQCNParams(t *testing.T) {
	p := DefaultDCQCNParams()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	// DESIGN.md §4 and NVIDIA's documented defaults.
	want := DCQCNParams{300, 32767, 1, 5, 50, 11, 50, 1, 0, 1019, 1, 4, 1023, 0, 0, 1, 4, 48}
	if p != want {
		t.Fatalf("defaults %+v, want %+v", p, want)
	}
}

func TestParseDCQCNParamsRoundTrip(t *testing.T) {
	p := DefaultDCQCNParams()
	p.RPGTimeReset, p.RPGGD, p.DCETCPG, p.ClampTgtRate = 55, 10, 1000, 1
	q, err := ParseDCQCNParams(p.String())
	if err != nil {
		t.Fatal(err)
	}
	if q != p {
		t.Fatalf("round trip:\n%+v\n%+v", q, p)
	}
}

func TestParseDCQCNParamsFormats(t *testing.T) {
	in := `# grep . /sys/class/net/eth0/ecn/roce_rp/*
/sys/class/net/eth0/ecn/roce_rp/rpg_time_reset:55
/sys/class/net/eth0/ecn/roce_rp/RPG_GD:10
rpg_ai_rate = 10, rpg_hai_rate: 100; dce_tcp_g=1000 dce_tcp_rtt =2
initial_alpha_value= 512   # comment
`
	p, err := ParseDCQCNParams(in)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultDCQCNParams()
	want.RPGTimeReset, want.RPGGD, want.RPGAIRate, want.RPGHAIRate = 55, 10, 10, 100
	want.DCETCPG, want.DCETCPRTT, want.InitialAlphaValue = 1000, 2, 512
	if p != want {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
	if p, err := ParseDCQCNParams(""); err != nil || p != DefaultDCQCNParams() {
		t.Fatalf("empty input: %+v %v", p, err)
	}
}

func TestParseDCQCNParamsErrors(t *testing.T) {
	for in, want := range map[string]error{
		"rpg_bogus=1":          ErrUnknownParam,
		"rpg_gd=":              ErrBadParam,
		"=5":                   ErrBadParam,
		"rpg_gd":               ErrBadParam,
		"rpg_gd=eleven":        ErrBadParam,
		"rpg_gd=-1":            ErrBadParam,
		"dce_tcp_g=1024":       ErrBadParam,
		"rpg_threshold=0":      ErrBadParam,
		"rpg_min_dec_fac=101":  ErrBadParam,
		"rpg_time_reset=1e3":   ErrBadParam,
		"cnp_dscp=99999999999": ErrBadParam,
	} {
		_, err := ParseDCQCNParams(in)
		if !errors.Is(err, want) {
			t.Errorf("%q: error %v, want %v", in, err, want)
		}
	}
	var p DCQCNParams
	if err := p.Set("nope", 1); !errors.Is(err, ErrUnknownParam) {
		t.Fatalf("Set unknown: %v", err)
	}
}

func FuzzParseDCQCNParams(f *testing.F) {
	f.Add(DefaultDCQCNParams().String())
	f.Add("/sys/class/net/eth0/ecn/roce_rp/rpg_gd:10\nrpg_ai_rate = 7")
	f.Add("rpg_gd=,=:;# x")
	f.Add("dce_tcp_g=1024")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseDCQCNParams(s)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed %q to invalid %+v: %v", s, p, err)
		}
		q, err := ParseDCQCNParams(p.String())
		if err != nil || q != p {
			t.Fatalf("round trip of %q: %+v %v", s, q, err)
		}
	})
}
