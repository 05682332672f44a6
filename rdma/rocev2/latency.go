package rocev2

import (
	"time"

	"github.com/opennetworks/onetdp/rdma"
)

// OpClass groups send-queue opcodes for latency accounting.
type OpClass uint8

// Operation classes of Stats.OpLatency.
const (
	OpClassSend   OpClass = iota // SEND, SEND with immediate
	OpClassWrite                 // RDMA WRITE, with or without immediate
	OpClassRead                  // RDMA READ
	OpClassAtomic                // compare-and-swap, fetch-and-add
	NumOpClasses
)

// OpClasses lists every class, in order.
func OpClasses() []OpClass { return []OpClass{OpClassSend, OpClassWrite, OpClassRead, OpClassAtomic} }

// String returns "send", "write", "read" or "atomic" (the op label of the
// telemetry metrics).
func (c OpClass) String() string {
	switch c {
	case OpClassSend:
		return "send"
	case OpClassWrite:
		return "write"
	case OpClassRead:
		return "read"
	case OpClassAtomic:
		return "atomic"
	}
	return "unknown"
}

// OpClassOf maps a send-queue opcode to its class.
func OpClassOf(op rdma.WROpcode) OpClass {
	switch op {
	case rdma.WRRDMAWrite, rdma.WRRDMAWriteWithImm:
		return OpClassWrite
	case rdma.WRRDMARead:
		return OpClassRead
	case rdma.WRAtomicCmpAndSwp, rdma.WRAtomicFetchAndAdd:
		return OpClassAtomic
	}
	return OpClassSend
}

// monoNow is the device's monotonic clock in ns since Open, the time stamp
// of posted requests.
func (d *Device) monoNow() int64 { return int64(time.Since(d.epoch)) }

// recordLatency accounts a request completing successfully now: the time
// since its PostSend, in its class's histogram. Called under the QP's lock;
// two atomic adds, no allocation.
func (q *queuePair) recordLatency(w *sendWQE) {
	q.dev.stats.OpLatency[OpClassOf(w.wr.Opcode)].Observe(time.Duration(q.dev.monoNow() - w.posted))
}
