// Package collective gives distributed training its collective operations:
// AllReduce, ReduceScatter, AllGather, Broadcast, Reduce, Barrier, AllToAll
// and point-to-point Send/Recv, run by a Communicator of Size ranks over a
// small Transport that this package defines.
//
// Layering: collective never imports rdma/ or dataplane/. A Transport is
// anything that moves tagged byte messages between ranks in order; the
// adapters in transport/ implement it over the RoCEv2 engine and over
// kernel TCP, and stack/ assembles port, engine, transport and
// communicator from options.
//
// Buffers are []byte holding Count elements of a DType, as NCCL takes a
// void pointer, a count and a datatype; reductions run in place on them.
package collective
