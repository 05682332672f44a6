// Package sim is a deterministic discrete-event simulation of N senders
// into one bottleneck link, each sender driven by a flowctl.Controller
// (DCQCN, Delay, or none for line rate) and paced by a flowctl.Pacer, so
// congestion-control parameters can be tried before they touch a fabric.
//
// The model (one Run):
//
//   - Time is simulated (int64 nanoseconds from a fixed epoch, handed to the
//     controllers as time.Time); events sit in one priority queue ordered by
//     time, ties broken by insertion order. No goroutines, no wall clock;
//     the only randomness (RED marking) comes from a PCG generator seeded
//     with Options.Seed, so the same Options give the same Result.
//   - Each flow has an infinite backlog from its start time. A sender
//     serializes packets of PacketBytes at LineRate through its NIC and
//     paces them with a flowctl.Pacer (burst one packet) at the
//     controller's Rate() (0 means the line rate); a controller Window()
//     above 0 bounds the bytes in flight.
//   - A packet enters the bottleneck the moment its sender starts
//     serializing it (cut-through, no delay sender to switch). The bottleneck is a FIFO
//     of BufferBytes with tail drop, drained at BottleneckRate. The queue
//     depth counts every byte accepted and not yet fully transmitted (the
//     packet on the wire included).
//   - ECN: when a packet finishes transmission, with q the instantaneous
//     queue depth including that packet (marking on departure, as bpf's
//     onet_ecn_mark marks a frame as it leaves, so the mark is not delayed
//     by the queue behind it), it is marked CE with probability 0 below Kmin,
//     Pmax*(q-Kmin)/(Kmax-Kmin) from Kmin up to Kmax, and 1 at Kmax or
//     above. Every simulated packet is ECT. Kmax 0 turns marking off.
//   - After leaving the bottleneck a packet reaches the receiver one
//     propagation delay later (Delay, or the flow's own). The receiver is
//     the notification point: a CE packet yields a CNP if the flow's
//     flowctl.CNPLimiter (min_time_between_cnps of the DCQCN params)
//     allows, which reaches the sender one propagation delay later (OnCNP).
//     With the Delay controller the receiver ACKs every packet; the ACK
//     reaches the sender one propagation delay later and carries the RTT
//     sample (ACK arrival minus send start). A dropped packet is reported
//     to its sender (OnLoss, bytes out of flight) one base RTT after the
//     drop; it is not retransmitted (the backlog is fungible).
//   - OnSent is called for every packet sent, OnTick at the controller's
//     NextDeadline.
//
// Measurements: goodput is bytes delivered to the receiver; utilization is
// delivered bits over BottleneckRate times the measured window [WarmUp,
// Duration]. Queue percentiles are time-weighted over the measured window
// (the fraction of time the queue spent at or below the value), in bins of
// Summary.QueueBinBytes. The time series samples every SampleInterval the
// instantaneous queue depth, each flow's goodput over the interval and
// each controller's allowed rate. Convergence time is the first sample
// time after which, until the end, every flow's goodput smoothed over
// ConvergenceWindow stays within ConvergenceTolerance of the fair share
// (BottleneckRate divided by the flows started so far), counted from when
// the last flow started.
package sim
