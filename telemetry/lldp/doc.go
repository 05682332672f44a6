// Package lldp speaks the Link Layer Discovery Protocol (IEEE 802.1AB):
// an LLDPDU codec (Encode/Append, Decode, DecodeFrame) and an Agent that
// sends our LLDPDU on chosen interfaces every interval and keeps a table of
// the neighbours it hears, with TTL expiry.
//
// The codec checks every length against the standard's bounds and against
// the buffer; a bad frame is an error wrapping ErrMalformed, never a panic.
// TLVs it does not model (organizationally specific ones, LLDP-MED,
// 802.1/802.3 extensions) are kept raw in LLDPDU.Unknown, in order.
//
// The Agent uses one AF_PACKET socket per interface bound to ethertype
// 0x88cc in the network namespace current when NewAgent runs (run NewAgent
// inside internal/nsenter to use another one); frames go to the
// nearest-bridge group 01:80:c2:00:00:0e, which 802.1D bridges never
// forward, so a neighbour is always the device at the other end of the
// wire. Malformed frames are counted (AgentStats.Malformed) and dropped.
package lldp
