// Package stack is the one place that assembles a working onetdp stack from
// options: a dataplane port (AF_XDP, or kernel UDP as the fallback), the
// software RoCEv2 engine on it (OpenRDMA), and a collective transport over
// the engine, over kernel TCP, or both with adaptive selection by message
// size (OpenTransport); a collective.Communicator runs on that transport.
// The CLI, the C ABI and tests all build through it; no other package
// wires these layers together.
package stack
