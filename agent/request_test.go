package agent

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opennetworks/onetdp/bpf"
)

func TestDecodeRequest(t *testing.T) {
	ok := []struct {
		in   string
		want Request
	}{
		{`{"op":"status"}`, Request{Op: "status"}},
		{` {"op":"topology"} `, Request{Op: "topology"}},
		{`{"op":"flows"}`, Request{Op: "flows", Limit: DefaultFlowLimit}},
		{`{"op":"flows","limit":3}`, Request{Op: "flows", Limit: 3}},
		{`{"op":"unpin"}`, Request{Op: "unpin"}},
	}
	for _, c := range ok {
		got, err := DecodeRequest([]byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if got.Op != c.want.Op || got.Limit != c.want.Limit || got.PPM != nil {
			t.Fatalf("%s: got %+v, want %+v", c.in, got, c.want)
		}
	}
	f, err := DecodeRequest([]byte(`{"op":"fault","iface":"eth0","class":"onet","ppm":1000000}`))
	if err != nil || f.Iface != "eth0" || f.Class != "onet" || f.PPM == nil || *f.PPM != 1000000 {
		t.Fatalf("fault: %+v %v", f, err)
	}

	bad := []struct {
		in, code, msg string
	}{
		{``, CodeMalformed, "empty request"},
		{`{`, CodeMalformed, "unexpected EOF"},
		{`[]`, CodeMalformed, "cannot unmarshal array"},
		{`"status"`, CodeMalformed, "cannot unmarshal string"},
		{`{"op":"status"} {"op":"status"}`, CodeMalformed, "data after the request object"},
		{`{"op":"status","x":1}`, CodeMalformed, `unknown field "x"`},
		{`{"op":5}`, CodeMalformed, "cannot unmarshal number"},
		{`{}`, CodeUnknownOp, `missing "op"`},
		{`{"op":"reboot"}`, CodeUnknownOp, `unknown op "reboot"`},
		{`{"op":"status","limit":1}`, CodeBadArgument, `"limit" is not an argument of status`},
		{`{"op":"flows","limit":0}`, CodeBadArgument, "limit 0"},
		{`{"op":"flows","limit":-4}`, CodeBadArgument, "limit -4"},
		{`{"op":"flows","limit":1.5}`, CodeBadArgument, "limit 1.5"},
		{`{"op":"flows","limit":99999999999999999999}`, CodeBadArgument, "limit 99999999999999999999"},
		{`{"op":"fault","ppm":1}`, CodeBadArgument, `needs "class"`},
		{`{"op":"fault","class":"bulk","ppm":1}`, CodeBadArgument, `class "bulk"`},
		{`{"op":"fault","class":"onet"}`, CodeBadArgument, `needs "ppm"`},
		{`{"op":"fault","class":"onet","ppm":1000001}`, CodeBadArgument, "ppm 1000001"},
		{`{"op":"fault","class":"onet","ppm":-1}`, CodeBadArgument, "ppm -1"},
		{`{"op":"fault","class":"onet","ppm":1,"iface":""}`, CodeBadArgument, "empty iface"},
		{`{"op":"fault","class":"onet","ppm":1,"limit":2}`, CodeBadArgument, `"limit" is not an argument of fault`},
		{strings.Repeat(" ", MaxRequestBytes+1), CodeMalformed, "exceeds"},
	}
	for _, c := range bad {
		_, err := DecodeRequest([]byte(c.in))
		if err == nil {
			t.Fatalf("%.60s: accepted", c.in)
		}
		if code := errorCode(err); code != c.code || !strings.Contains(err.Error(), c.msg) {
			t.Fatalf("%.60s: code %s error %q, want code %s containing %q", c.in, code, err, c.code, c.msg)
		}
	}
}

// newBareAgent is an agent with no interfaces and no servers, enough for
// Handle.
func newBareAgent() *Agent {
	a := &Agent{opts: Options{}.withDefaults()}
	a.metrics = newMetrics(a)
	return a
}

func TestHandleCountsErrors(t *testing.T) {
	a := newBareAgent()
	for _, in := range []string{`{`, `{"op":"x"}`, `{"op":"fault","class":"onet","ppm":5}`, `{"op":"flows","limit":0}`} {
		r := a.Handle([]byte(in))
		if r.Error == "" || r.Result != nil {
			t.Fatalf("%s: %+v", in, r)
		}
	}
	got := a.metrics.controlErrorCounts()
	want := map[string]uint64{CodeMalformed: 1, CodeUnknownOp: 1, CodeBadArgument: 2}
	if len(got) != len(want) {
		t.Fatalf("error counts %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("error counts %v, want %v", got, want)
		}
	}
	r := a.Handle([]byte(`{"op":"flows","limit":5}`))
	if r.Error != "" || string(r.Result) != "[]" {
		t.Fatalf("flows on no interfaces: %+v", r)
	}
	r = a.Handle([]byte(`{"op":"unpin"}`))
	if r.Error != "" || !a.unpin {
		t.Fatalf("unpin: %+v (unpin %v)", r, a.unpin)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"interfaces":["eth0","eth1"],"metrics_addr":"127.0.0.1:0","mode":"generic","onet_port":5000}`), 0o600)
	o, err := LoadConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	o = o.withDefaults()
	if len(o.Interfaces) != 2 || o.Mode != "generic" || o.OnetPort != 5000 || o.PinDir != DefaultPinDir || o.ControlSocket != DefaultControlSocket {
		t.Fatalf("config %+v", o)
	}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"unknown":  `{"interfaces":["eth0"],"metric_addr":"x"}`,
		"trailing": `{"interfaces":["eth0"]} x`,
		"type":     `{"interfaces":"eth0"}`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := LoadConfig(p); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("%s: %v, want ErrInvalidOptions", name, err)
		}
	}
	for _, o := range []Options{
		{},
		{Interfaces: []string{"eth0", "eth0"}},
		{Interfaces: []string{"../x"}},
		{Interfaces: []string{"eth0"}, Mode: "fast"},
		{Interfaces: []string{"eth0"}, OnetPort: 4791},
	} {
		if err := o.withDefaults().validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("%+v: %v, want ErrInvalidOptions", o, err)
		}
	}
	if _, err := Start(Options{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Start without interfaces: %v", err)
	}
}

// FuzzDecodeRequest: any input gives a request or a coded error, never a
// panic, and the error response encodes as JSON.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"op":"status"}`, `{"op":"flows","limit":10}`, `{"op":"fault","iface":"eth0","class":"rocev2","ppm":500}`,
		`{"op":"topology"}`, `{"op":"unpin"}`, `{`, `[]`, `{"op":"fault","class":"onet","ppm":1e6}`, `{"op":"flows","limit":1e400}`,
		`{"op":"flowctl"}`, `{"op":"flowctl","iface":"eth0","set":{"kmin_bytes":1000,"kmax_bytes":5000,"enabled":true}}`,
		`{"op":"flowctl","set":{"pmax_ppm":1e3}}`, `{"op":"flowctl","set":{"rate_bps":18446744073709551616}}`,
	} {
		f.Add([]byte(s))
	}
	a := newBareAgent()
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeRequest(b)
		if err != nil {
			if errorCode(err) == CodeFailed {
				t.Fatalf("decode error without a code: %v", err)
			}
			return
		}
		if !contains(Ops, req.Op) {
			t.Fatalf("accepted op %q", req.Op)
		}
		if req.Op == "flows" && (req.Limit < 1 || req.Limit > MaxFlowLimit) {
			t.Fatalf("accepted limit %d", req.Limit)
		}
		if req.Op == "fault" && (req.PPM == nil || *req.PPM < 0 || *req.PPM > 1_000_000) {
			t.Fatalf("accepted ppm %v", req.PPM)
		}
		if req.Op == "flowctl" && req.Set != nil {
			s := req.Set
			if s.RateBps == nil && s.KminBytes == nil && s.KmaxBytes == nil && s.PmaxPPM == nil && s.Enabled == nil {
				t.Fatal("accepted an empty set")
			}
			if s.PmaxPPM != nil && *s.PmaxPPM > 1_000_000 || s.RateBps != nil && (*s.RateBps == 0 || *s.RateBps > bpf.MaxECNRateBps) {
				t.Fatalf("accepted set %+v", s)
			}
		}
		if req.Op == "topology" {
			return // netlink per input is slow and tested elsewhere
		}
		if _, err := json.Marshal(a.Handle(b)); err != nil {
			t.Fatal(err)
		}
	})
}
