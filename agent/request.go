package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opennetworks/onetdp/bpf"
)

// Error codes of control API responses (Response.Code), also the code
// label of onet_agent_control_errors_total.
const (
	CodeMalformed   = "malformed"    // not one JSON object, or unknown/ill-typed fields
	CodeUnknownOp   = "unknown_op"   // op missing or not one of the known ops
	CodeBadArgument = "bad_argument" // an argument out of range or not for this op
	CodeFailed      = "failed"       // a valid request the agent could not carry out
)

// Sentinel errors of DecodeRequest, one per code.
var (
	ErrMalformed   = errors.New("malformed request")
	ErrUnknownOp   = errors.New("unknown op")
	ErrBadArgument = errors.New("bad argument")
)

// Ops are the control API operations.
var Ops = []string{"status", "flows", "fault", "flowctl", "topology", "unpin"}

// MaxRequestBytes bounds one request line.
const MaxRequestBytes = 64 << 10

// MaxFlowLimit bounds the limit of a flows request.
const MaxFlowLimit = 10000

// DefaultFlowLimit is the limit of a flows request that gives none.
const DefaultFlowLimit = 20

// Request is one control API request. Unset optional fields are zero.
type Request struct {
	Op string `json:"op"`
	// Limit (flows): how many flows, 1..MaxFlowLimit, DefaultFlowLimit if 0.
	Limit int `json:"limit,omitempty"`
	// Iface (fault): the interface; empty means every interface.
	Iface string `json:"iface,omitempty"`
	// Class (fault): rocev2, onet or other.
	Class string `json:"class,omitempty"`
	// PPM (fault): drop probability in parts per million, 0..1000000.
	PPM *int64 `json:"ppm,omitempty"`
	// Set (flowctl): ECN marker parameters to change; nil reads them.
	// Iface (flowctl) limits the change to one interface.
	Set *FlowctlSet `json:"set,omitempty"`
}

// rawRequest is decoded first so that numbers of the wrong size are
// reported as bad arguments rather than as JSON type errors.
type rawRequest struct {
	Op    *string          `json:"op"`
	Limit *json.Number     `json:"limit"`
	Iface *string          `json:"iface"`
	Class *string          `json:"class"`
	PPM   *json.Number     `json:"ppm"`
	Set   *json.RawMessage `json:"set"`
}

// DecodeRequest parses and validates one request (a JSON object). Its
// errors wrap ErrMalformed, ErrUnknownOp or ErrBadArgument and say what is
// wrong.
func DecodeRequest(b []byte) (Request, error) {
	var req Request
	if len(b) > MaxRequestBytes {
		return req, fmt.Errorf("%w: request of %d bytes exceeds %d", ErrMalformed, len(b), MaxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var raw rawRequest
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return req, fmt.Errorf("%w: empty request (want a JSON object like {\"op\":\"status\"})", ErrMalformed)
		}
		return req, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, fmt.Errorf("%w: data after the request object", ErrMalformed)
	}
	if raw.Op == nil {
		return req, fmt.Errorf("%w: missing \"op\" (one of %s)", ErrUnknownOp, strings.Join(Ops, ", "))
	}
	req.Op = *raw.Op
	has := map[string]bool{"limit": raw.Limit != nil, "iface": raw.Iface != nil, "class": raw.Class != nil, "ppm": raw.PPM != nil, "set": raw.Set != nil}
	allowed := map[string][]string{
		"status": nil, "topology": nil, "unpin": nil,
		"flows":   {"limit"},
		"fault":   {"iface", "class", "ppm"},
		"flowctl": {"iface", "set"},
	}
	args, ok := allowed[req.Op]
	if !ok {
		return req, fmt.Errorf("%w %q (want one of %s)", ErrUnknownOp, req.Op, strings.Join(Ops, ", "))
	}
	for _, name := range []string{"limit", "iface", "class", "ppm", "set"} {
		if has[name] && !contains(args, name) {
			return req, fmt.Errorf("%w: %q is not an argument of %s", ErrBadArgument, name, req.Op)
		}
	}
	switch req.Op {
	case "flows":
		if raw.Limit != nil {
			n, err := raw.Limit.Int64()
			if err != nil || n < 1 || n > MaxFlowLimit {
				return req, fmt.Errorf("%w: limit %s (want an integer 1..%d)", ErrBadArgument, raw.Limit.String(), MaxFlowLimit)
			}
			req.Limit = int(n)
		} else {
			req.Limit = DefaultFlowLimit
		}
	case "fault":
		if raw.Class == nil {
			return req, fmt.Errorf("%w: fault needs \"class\" (rocev2, onet or other)", ErrBadArgument)
		}
		if _, err := parseClass(*raw.Class); err != nil {
			return req, err
		}
		req.Class = *raw.Class
		if raw.PPM == nil {
			return req, fmt.Errorf("%w: fault needs \"ppm\" (0..%d)", ErrBadArgument, bpf.PPMScale)
		}
		n, err := raw.PPM.Int64()
		if err != nil || n < 0 || n > bpf.PPMScale {
			return req, fmt.Errorf("%w: ppm %s (want an integer 0..%d)", ErrBadArgument, raw.PPM.String(), bpf.PPMScale)
		}
		req.PPM = &n
		if raw.Iface != nil {
			if *raw.Iface == "" {
				return req, fmt.Errorf("%w: empty iface (leave it out for every interface)", ErrBadArgument)
			}
			req.Iface = *raw.Iface
		}
	case "flowctl":
		if raw.Iface != nil {
			if *raw.Iface == "" {
				return req, fmt.Errorf("%w: empty iface (leave it out for every interface)", ErrBadArgument)
			}
			if raw.Set == nil {
				return req, fmt.Errorf("%w: \"iface\" only goes with \"set\" (a read covers every interface)", ErrBadArgument)
			}
			req.Iface = *raw.Iface
		}
		if raw.Set != nil {
			set, err := decodeFlowctlSet(*raw.Set)
			if err != nil {
				return req, err
			}
			req.Set = &set
		}
	}
	return req, nil
}

// parseClass maps a class name to bpf.Class.
func parseClass(s string) (bpf.Class, error) {
	for c := bpf.Class(0); c < bpf.NumClasses; c++ {
		if s == c.String() {
			return c, nil
		}
	}
	return 0, fmt.Errorf("%w: class %q (want rocev2, onet or other)", ErrBadArgument, s)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// errorCode maps an error to its Response code.
func errorCode(err error) string {
	switch {
	case errors.Is(err, ErrMalformed):
		return CodeMalformed
	case errors.Is(err, ErrUnknownOp):
		return CodeUnknownOp
	case errors.Is(err, ErrBadArgument):
		return CodeBadArgument
	}
	return CodeFailed
}
