// Package incastlab runs the incast experiment of `onetdp bench incast`:
// K senders write to one receiver through a lab bottleneck (a TBF on the
// link into the receiver) with the in-kernel ECN marker in front of it,
// once without flow control, once with DCQCN (driven by the marker's CE
// marks through CNPs) and once with the delay-based controller, and
// reports per-flow goodput, Jain's index, the bottleneck's drops, CE
// marks, CNPs and retransmissions of each run side by side.
//
// It assembles lab, bpf, stack and bench; the measurement itself is
// bench.Incast, which touches only the rdma contract.
package incastlab
