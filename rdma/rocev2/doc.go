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
//     batch sends the coalesced ACKs, NAKs and CNPs. On a port that can be
//     polled (dataplane.Poller: AF_XDP) an application goroutine waiting
//     for a completion may run this receive path itself (rdma.Poller:
//     StartPolling, Poll, StopPolling; rdmatransport's waiters do), under
//     the same lock, while the receive goroutine stands aside: the packet
//     that completes a request is then processed on the goroutine waiting
//     for it. Spinning follows the port's busy-poll rule
//     (dataplane.Poller.TakeSpin); the receive goroutine itself spins for
//     a while after traffic under that rule when nobody polls. A polled
//     batch of SENDs keeps its ACKs staged for the next transmit (the
//     answer a receiver usually sends), so that both leave in one system
//     call; they go anyway once held 50 µs (whoever polls next, the
//     receive goroutine before it parks, at the latest the transmit
//     goroutine's 200 µs tick), and never on a QP under a delay-based or
//     custom controller, whose RTT samples they would stretch
//     (Stats.AcksHeld counts them);
//   - posting goroutines (PostSend/PostRecv) queue requests and, when the
//     transmit path is free, send inline;
//   - the transmit goroutine (txPath.loop) sends what did not fit inline,
//     READ responses and atomic ACKs, and runs the retransmission (go-back-N,
//     4.096 µs × 2^timeout) and RNR timers.
//
// Mechanism only: the engine tracks PSNs and moves packets; rates are the
// business of a flowctl.Controller per QP (Options.FlowControl: none,
// DCQCN or delay-based; or Options.NewFlowController). Under the QP's lock
// the engine reports every data packet sent (OnSent), ACK progress with an
// RTT sample taken from AckReq packets (OnAck), CNPs (OnCNP), go-backs after
// a sequence NAK, a missing READ response or a timeout (OnLoss), and the
// controller's deadlines from the transmit goroutine's 200 µs tick
// (OnTick). A flowctl.Pacer at the controller's Rate gates data packets in
// the transmit path (a held-back QP stays queued and the tick or the next
// kick brings it back), and Window bounds the bytes in flight besides the
// engine's packet window. The notification point turns CE-marked data into
// CNPs through a flowctl.CNPLimiter per QP (Options.CNPInterval). Without a
// controller nothing of this runs. Device.FlowControl, SetFlowControl,
// SetDCQCNParams and QPFlowStats read and change it at run time.
//
// Stats are plain atomics for telemetry to read at scrape time. Among them,
// Stats.OpLatency holds, per operation class (OpClassOf: send, write, read,
// atomic), the time from PostSend to the successful completion of each
// request, signaled or not, in an internal/lathist histogram: a clock read
// per PostSend call and per completion and two atomic adds, no allocation.
package rocev2
