package bpf

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Counters returns the per-class counters, summed over all CPUs and indexed
// by Class.
func (d *Dispatcher) Counters() ([NumClasses]ClassCounters, error) {
	var out [NumClasses]ClassCounters
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return out, ErrClosed
	}
	var perCPU []dispatcherClassCounters
	for c := Class(0); c < NumClasses; c++ {
		if err := d.objs.OnetCounters.Lookup(uint32(c), &perCPU); err != nil {
			return out, fmt.Errorf("read %s counters: %w", c, err)
		}
		for i := range perCPU {
			out[c].add(&perCPU[i])
		}
	}
	return out, nil
}

// ResetCounters zeroes the per-class counters on every CPU.
func (d *Dispatcher) ResetCounters() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("reset counters: %w", err)
	}
	vals := make([]dispatcherClassCounters, n)
	for c := Class(0); c < NumClasses; c++ {
		if err := d.objs.OnetCounters.Put(uint32(c), vals); err != nil {
			return fmt.Errorf("reset %s counters: %w", c, err)
		}
	}
	return nil
}

// FlowKey identifies a RoCEv2 or onet flow seen by the dispatcher.
type FlowKey struct {
	Src, Dst         netip.Addr // IPv4 flows have 4-byte (unmapped) addresses
	SrcPort, DstPort uint16
	// QP is the RoCEv2 destination QP (24 bits of the BTH); 0 for onet flows
	// and for RoCEv2 datagrams with fewer than 12 bytes of payload.
	QP    uint32
	Class Class // ClassRoCEv2 or ClassOnet
}

// FlowStats are a flow's counters. Times are CLOCK_MONOTONIC (time since
// boot, as bpf_ktime_get_ns); compare them with MonotonicNow.
type FlowStats struct {
	Packets, Bytes, CE  uint64
	FirstSeen, LastSeen time.Duration
}

// Flows calls yield for every flow in the LRU flow table (16384 entries;
// the least recently used are evicted) until yield returns false. The table
// changes while it is walked: a flow may be missed or seen twice. yield
// must not call methods of d.
func (d *Dispatcher) Flows(yield func(FlowKey, FlowStats) bool) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	var k dispatcherFlowKey
	var v dispatcherFlowValue
	it := d.objs.OnetFlows.Iterate()
	for it.Next(&k, &v) {
		fk := FlowKey{
			Src:     netip.AddrFrom16(k.Src),
			Dst:     netip.AddrFrom16(k.Dst),
			SrcPort: k.Sport,
			DstPort: k.Dport,
			QP:      k.Qp,
			Class:   Class(k.Class),
		}
		if k.Family == 4 {
			fk.Src, fk.Dst = fk.Src.Unmap(), fk.Dst.Unmap()
		}
		fs := FlowStats{
			Packets:   v.Packets,
			Bytes:     v.Bytes,
			CE:        v.Ce,
			FirstSeen: time.Duration(v.FirstSeenNs),
			LastSeen:  time.Duration(v.LastSeenNs),
		}
		if !yield(fk, fs) {
			return nil
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("walk flow table: %w", err)
	}
	return nil
}

// MonotonicNow returns CLOCK_MONOTONIC, the clock of FlowStats times.
func MonotonicNow() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0 // CLOCK_MONOTONIC does not fail on Linux
	}
	return time.Duration(ts.Nano())
}
