// Package rocev2 is a software RoCEv2 engine: reliable-connected queue pairs
// (SEND/RECV, RDMA WRITE and READ, atomics) over a dataplane.Port, with
// packets that are RoCEv2 byte for byte (BTH and extension headers, pad,
// ICRC, UDP port 4791, per-QP source port entropy, ECT(0) on data).
//
// It implements the rdma contract. Inside, three kinds of goroutine meet:
//
//   - the receive goroutine (rxLoop) decodes packets, checks their ICRC,
//     runs the responder (PSN checks, placement into registered memory,
//     RNR and access NAKs, duplicates) and the requester's response
//     handling (ACKs, NAKs, READ responses, atomic ACKs), and after each
//     batch sends the coalesced ACKs, NAKs and CNPs;
//   - posting goroutines (PostSend/PostRecv) queue requests and, when the
//     transmit path is free, send inline;
//   - the transmit goroutine (txPath.loop) sends what did not fit inline,
//     READ responses and atomic ACKs, and runs the retransmission (go-back-N,
//     4.096 µs × 2^timeout) and RNR timers.
//
// Mechanism only: the engine tracks PSNs and moves packets; rates are the
// business of a FlowController (package flowctl), which hears CNPs.
package rocev2
