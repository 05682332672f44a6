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
// Optionally it attaches the in-kernel ECN marker (bpf.ECNMarker) to each
// interface's tc egress (Options.ECNMarker, maps pinned in
// PinDir/<ifname>/ecn), runs LLDP on the interfaces (Options.LLDP,
// telemetry/lldp), and it always runs a congestion detector
// (telemetry.CongestionDetector over the dispatchers' CE counts, every
// Options.CongestionInterval) whose warnings appear in the status and as
// onet_congestion_warning{kind}.
//
// The control API speaks newline-delimited JSON: one request object per
// line, one response object per line, any number per connection. Requests:
//
//	{"op":"status"}                                    includes congestion and warnings
//	{"op":"flows","limit":20}                          top flows by bytes
//	{"op":"fault","iface":"eth0","class":"onet","ppm":1000}
//	{"op":"flowctl"}                                   ECN marker parameters and counters, DCQCN presets
//	{"op":"flowctl","iface":"eth0","set":{"kmin_bytes":5000,"kmax_bytes":100000,"pmax_ppm":20000,"rate_bps":950000000,"enabled":true}}
//	{"op":"topology"}                                  links, addresses, LLDP neighbours
//	{"op":"unpin"}                                     remove pins at exit
//
// A flowctl set changes only the keys it gives (iface limits it to one
// interface), is checked on every target before any is changed, and fails
// with code failed when the agent runs without the marker.
//
// A response is {"result":{...}} or {"error":"...","code":"..."} with code
// one of malformed, unknown_op, bad_argument or failed; every error is
// counted in onet_agent_control_errors_total{code}.
//
// Close (and Run when its context ends) stops LLDP (which sends a shutdown
// LLDPDU), detaches every program and closes the maps, leaving the pins in
// place unless Options.UnpinOnExit or an unpin request asked for their
// removal.
package agent
