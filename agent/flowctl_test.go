package agent

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/flowctl"
	"github.com/opennetworks/onetdp/telemetry"
)

func telemetryThresholds(ce float64) telemetry.CongestionThresholds {
	return telemetry.CongestionThresholds{CERatio: ce}
}

func TestDecodeFlowctl(t *testing.T) {
	r, err := DecodeRequest([]byte(`{"op":"flowctl"}`))
	if err != nil || r.Op != "flowctl" || r.Set != nil || r.Iface != "" {
		t.Fatalf("read: %+v %v", r, err)
	}
	r, err = DecodeRequest([]byte(`{"op":"flowctl","iface":"eth0","set":{"kmin_bytes":1000,"kmax_bytes":5000,"pmax_ppm":1000000,"rate_bps":950000000,"enabled":false}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := r.Set
	if r.Iface != "eth0" || s == nil || *s.KminBytes != 1000 || *s.KmaxBytes != 5000 || *s.PmaxPPM != 1_000_000 || *s.RateBps != 950_000_000 || *s.Enabled {
		t.Fatalf("set: %+v %+v", r, s)
	}
	p := s.apply(bpf.ECNMarkerParams{RateBps: 1, KminBytes: 2, KmaxBytes: 3, PmaxPPM: 4})
	if p != (bpf.ECNMarkerParams{RateBps: 950_000_000, KminBytes: 1000, KmaxBytes: 5000, PmaxPPM: 1_000_000, Disabled: true}) {
		t.Fatalf("apply: %+v", p)
	}
	r, _ = DecodeRequest([]byte(`{"op":"flowctl","set":{"pmax_ppm":7}}`))
	if p := r.Set.apply(bpf.ECNMarkerParams{RateBps: 1, KminBytes: 2, KmaxBytes: 3, PmaxPPM: 4}); p != (bpf.ECNMarkerParams{RateBps: 1, KminBytes: 2, KmaxBytes: 3, PmaxPPM: 7}) {
		t.Fatalf("partial apply: %+v", p)
	}
	bad := []struct{ in, code, msg string }{
		{`{"op":"flowctl","limit":3}`, CodeBadArgument, `"limit" is not an argument of flowctl`},
		{`{"op":"flowctl","iface":"eth0"}`, CodeBadArgument, `"iface" only goes with "set"`},
		{`{"op":"flowctl","iface":"","set":{"pmax_ppm":1}}`, CodeBadArgument, "empty iface"},
		{`{"op":"flowctl","set":{}}`, CodeBadArgument, `empty "set"`},
		{`{"op":"flowctl","set":[1]}`, CodeBadArgument, `"set" must be an object`},
		{`{"op":"flowctl","set":"kmin=1"}`, CodeBadArgument, `"set" must be an object`},
		{`{"op":"flowctl","set":{"kmin":1}}`, CodeBadArgument, `unknown flowctl parameter "kmin"`},
		{`{"op":"flowctl","set":{"kmin_bytes":-1}}`, CodeBadArgument, "set.kmin_bytes -1"},
		{`{"op":"flowctl","set":{"kmax_bytes":4294967296}}`, CodeBadArgument, "set.kmax_bytes 4294967296"},
		{`{"op":"flowctl","set":{"kmax_bytes":1.5}}`, CodeBadArgument, "set.kmax_bytes 1.5"},
		{`{"op":"flowctl","set":{"pmax_ppm":1000001}}`, CodeBadArgument, "set.pmax_ppm 1000001"},
		{`{"op":"flowctl","set":{"pmax_ppm":"5"}}`, CodeBadArgument, `set.pmax_ppm "5"`},
		{`{"op":"flowctl","set":{"rate_bps":0}}`, CodeBadArgument, "set.rate_bps 0"},
		{`{"op":"flowctl","set":{"rate_bps":1000000000001}}`, CodeBadArgument, "set.rate_bps 1000000000001"},
		{`{"op":"flowctl","set":{"enabled":1}}`, CodeBadArgument, "set.enabled 1"},
		{`{"op":"flowctl","set":{"kmin_bytes":10,"kmax_bytes":5}}`, CodeBadArgument, "set.kmin_bytes 10 above set.kmax_bytes 5"},
		{`{"op":"flowctl","set":{"pmax_ppm":1}`, CodeMalformed, "unexpected EOF"},
	}
	for _, c := range bad {
		_, err := DecodeRequest([]byte(c.in))
		if err == nil {
			t.Fatalf("%s: accepted", c.in)
		}
		if code := errorCode(err); code != c.code || !strings.Contains(err.Error(), c.msg) {
			t.Fatalf("%s: code %s error %q, want code %s containing %q", c.in, code, err, c.code, c.msg)
		}
	}
}

// TestFlowctlWithoutMarker: a read reports the presets and no marker; a
// change is refused with code failed.
func TestFlowctlWithoutMarker(t *testing.T) {
	a := newBareAgent()
	r := a.Handle([]byte(`{"op":"flowctl"}`))
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	var res FlowctlResult
	if err := json.Unmarshal(r.Result, &res); err != nil {
		t.Fatal(err)
	}
	if res.ECNMarkerEnabled || len(res.Interfaces) != 0 || len(res.DCQCNPresets) != len(flowctl.DCQCNPresets) {
		t.Fatalf("result %+v", res)
	}
	nv := flowctl.DefaultDCQCNParams()
	if p := res.DCQCNPresets[0]; p.Name != "nvidia" || p.Params["rpg_time_reset"] != nv.RPGTimeReset || p.Params["min_time_between_cnps"] != nv.MinTimeBetweenCNPs || len(p.Params) < 15 {
		t.Fatalf("nvidia preset %+v", p)
	}
	if p := res.DCQCNPresets[2]; p.Name != "lab" || p.Params["rpg_time_reset"] != flowctl.LabDCQCNParams().RPGTimeReset {
		t.Fatalf("lab preset %+v", p)
	}
	r = a.Handle([]byte(`{"op":"flowctl","set":{"pmax_ppm":5}}`))
	if r.Code != CodeFailed || !strings.Contains(r.Error, "without the ECN marker") {
		t.Fatalf("set without a marker: %+v", r)
	}
	if _, err := a.Flowctl("", &FlowctlSet{}); !errors.Is(err, ErrNoECNMarker) {
		t.Fatalf("Flowctl: %v", err)
	}
}

func TestOptionsECNAndDurations(t *testing.T) {
	var o Options
	if err := json.Unmarshal([]byte(`{"interfaces":["eth0"],"ecn_marker":{"rate_bps":1000000000},"lldp":true,"lldp_interval":"2s","congestion_interval":"250ms","congestion":{"ce_ratio":0.02}}`), &o); err != nil {
		t.Fatal(err)
	}
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if p := o.ECNMarker.params(); p != (bpf.ECNMarkerParams{RateBps: 1e9, KminBytes: DefaultECNKminBytes, KmaxBytes: DefaultECNKmaxBytes, PmaxPPM: DefaultECNPmaxPPM}) {
		t.Fatalf("marker params %+v", p)
	}
	if o.LLDPInterval.String() != "2s" || o.CongestionInterval.String() != "250ms" || o.Congestion.CERatio != 0.02 || !o.LLDP {
		t.Fatalf("options %+v", o)
	}
	b, err := json.Marshal(o)
	if err != nil || !strings.Contains(string(b), `"lldp_interval":"2s"`) {
		t.Fatalf("marshal: %s %v", b, err)
	}
	for _, bad := range []Options{
		{Interfaces: []string{"eth0"}, ECNMarker: &ECNMarkerOptions{}},
		{Interfaces: []string{"eth0"}, ECNMarker: &ECNMarkerOptions{RateBps: 1e9, KminBytes: 10, KmaxBytes: 5}},
		{Interfaces: []string{"eth0"}, ECNMarker: &ECNMarkerOptions{RateBps: 1e9, PmaxPPM: 2e6}},
		{Interfaces: []string{"eth0"}, Congestion: telemetryThresholds(2)},
		{Interfaces: []string{"eth0"}, LLDPInterval: -1},
	} {
		if err := bad.withDefaults().validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%+v: %v, want ErrInvalidOptions", bad, err)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`5`), &d); err == nil {
		t.Fatal("a number accepted as a duration")
	}
}
