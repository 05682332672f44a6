// Package agent is the long-running onetdp daemon behind `onetdp agent`.
//
// Start attaches the XDP dispatcher (package bpf) to each configured
// interface with its maps pinned under Options.PinDir/<ifname>, so a
// restarted agent re-attaches to the same maps and its counters continue
// where they were. It serves Prometheus metrics on /metrics and a health
// check on /healthz (Options.MetricsAddr, default 127.0.0.1:9469), and a
// local control API on a unix socket (Options.ControlSocket, default
// /run/onetdp/agent.sock).
//
// The control API speaks newline-delimited JSON: one request object per
// line, one response object per line, any number per connection. Requests:
//
//	{"op":"status"}
//	{"op":"flows","limit":20}                          top flows by bytes
//	{"op":"fault","iface":"eth0","class":"onet","ppm":1000}
//	{"op":"topology"}                                  links and addresses
//	{"op":"unpin"}                                     remove pins at exit
//
// A response is {"result":{...}} or {"error":"...","code":"..."} with code
// one of malformed, unknown_op, bad_argument or failed; every error is
// counted in onet_agent_control_errors_total{code}.
//
// Close (and Run when its context ends) detaches every program and closes
// the maps, leaving the pins in place unless Options.UnpinOnExit or an
// unpin request asked for their removal.
package agent
