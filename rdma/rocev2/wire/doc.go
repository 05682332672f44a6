// Package wire encodes and decodes RoCEv2 packets (InfiniBand Architecture
// Specification Vol. 1, chapter 9 "Transport layer", and annex A17
// "RoCEv2") and computes their invariant CRC.
//
// What this package calls a packet is the UDP payload of a RoCEv2 frame:
//
//	BTH (12) | extension headers | payload | pad (0-3) | ICRC (4)
//
// The extension headers an opcode carries are fixed by the opcode (see
// OpCode and its Has* methods); the pad brings payload+pad to a multiple of
// four bytes and its length is BTH.PadCount. Only the reliable-connected
// (RC) opcodes and the congestion notification packet (CNP, opcode 0x81)
// are known; everything else is rejected with ErrUnknownOpcode.
//
// The Ethernet, IP and UDP headers around the packet are built by
// dataplane.WriteUDPFrame. The ICRC covers those IP and UDP headers too
// (with the fields routers may change masked to ones), so it is computed on
// the IP packet (ICRC, PutICRC, CheckICRC) or, where the IP header is not in
// hand, from the endpoint addresses (ICRCFromParts, PutICRCFromParts).
//
// # Building a frame
//
// Because the UDP checksum covers the ICRC and the ICRC covers the IP
// header, the order matters. The simple order for a frame with a UDP
// checksum is:
//
//	n, _ := wire.Encode(buf[hl:], &pkt)                  // hl = spec.HeaderLen()
//	_ = wire.PutICRCFromParts(spec.Src, spec.Dst, 0, buf[hl:hl+n])
//	_, _ = dataplane.WriteUDPFrame(buf, &spec, n)         // UDP checksum last
//
// (our frames carry IPv4 ID 0, see ICRCFromParts). For IPv4 frames without
// a UDP checksum (FrameSpec.NoUDPChecksum, as RoCE NICs send them) the
// frame may be written first and PutICRC applied to it afterwards.
//
// # Receiving
//
// Decode parses and validates the structure (version, opcode, lengths, pad)
// but does not check the ICRC; call CheckICRC on the IP packet (or compare
// with ICRCFromParts) before acting on a packet. Decode makes Packet.Payload
// alias the input buffer: nothing is copied.
//
// # Errors and allocation
//
// Every function here is pure: no I/O, no goroutines, no allocation
// (asserted by the tests with testing.AllocsPerRun). Errors are bare
// exported sentinels, compared with == or errors.Is, never wrapped, so a
// per-packet error costs nothing.
//
// # PSNs
//
// Packet sequence numbers are 24-bit and wrap; use PSNAdd, PSNDiff and
// PSNLess rather than plain arithmetic.
package wire
