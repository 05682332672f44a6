// Package rdma is onetdp's verbs contract: devices, protection domains,
// memory regions, completion queues and reliable-connected queue pairs,
// with the work requests and completion statuses named as libibverbs names
// them.
//
// Two implementations stand behind it: rdma/rocev2, a software RoCEv2
// engine over a dataplane.Port (AF_XDP or kernel UDP), for hosts without an
// RDMA NIC; and rdma/verbs, libibverbs through cgo, for real InfiniBand and
// RoCE NICs. Code above (the collective transport, benchmarks) is written
// against these interfaces only.
//
// The model follows verbs closely so that a verbs programmer finds no
// surprises: a QP walks RESET → INIT → RTR → RTS (and ERROR); work requests
// carry scatter/gather lists of (address, length, lkey); remote addresses are
// virtual addresses inside a memory region, checked against its rkey, bounds
// and access flags; completions carry the work request ID and a status.
package rdma
