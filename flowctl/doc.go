// Package flowctl is congestion- and flow-control policy: it decides how
// fast a flow may send, never moves a packet itself.
//
// Everything here is pure: no I/O, no goroutines, no timers, no reading of
// the wall clock. Every method that depends on time takes the current time as
// its first argument (now time.Time), so a discrete-event simulator and a
// real engine drive the same code, and tests step time by hand.
//
// The pieces:
//
//   - Controller: the event interface a transport drives per flow (per QP):
//     bytes sent, ACKs with RTT samples, CNPs, CE marks, losses and timer
//     ticks in; an allowed rate (bits/s) and a window (bytes) out, plus the
//     next instant at which the controller wants a tick.
//   - DCQCN: the DCQCN reaction point as NVIDIA ConnectX firmware runs it,
//     configured by DCQCNParams whose fields carry NVIDIA's names (struct
//     tag nv:"rpg_time_reset" and so on) and units, parsed from pasted
//     key=value lists (ParseDCQCNParams).
//   - CNPLimiter: the notification point's min_time_between_cnps limiter.
//   - Delay: a Swift-style delay-based AIMD window controller for paths
//     where nothing marks ECN.
//   - Pacer: a token bucket (GCRA) that turns a rate into send permission
//     without allocating.
//   - CreditScheduler and CreditGate: receiver-driven credits (RCCC-like)
//     against incast.
//
// None of the types is safe for concurrent use: each belongs to the
// goroutine that drives its flow (in rdma/rocev2, the engine goroutine that
// owns the QP). The package imports nothing from this module.
package flowctl
