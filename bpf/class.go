package bpf

import "strconv"

// Class is the traffic class the dispatcher puts a frame in. It indexes the
// per-class counters and fault settings.
type Class uint32

// The classes, matching CLASS_* in dispatcher.c.
const (
	// ClassRoCEv2 is a well-formed UDP datagram to port 4791.
	ClassRoCEv2 Class = 0
	// ClassOnet is a well-formed UDP datagram to the configured onet port
	// (DispatcherOptions.OnetPort, SetOnetPort); never matches when that is 0.
	ClassOnet Class = 1
	// ClassOther is everything else: non-IP, non-UDP, IP fragments, other
	// UDP ports, and malformed frames (counted with ClassCounters.ParseErr).
	ClassOther Class = 2
)

// NumClasses is the number of classes; valid classes are 0..NumClasses-1.
const NumClasses = 3

// String returns "rocev2", "onet", "other", or "class(N)" for an invalid one.
func (c Class) String() string {
	switch c {
	case ClassRoCEv2:
		return "rocev2"
	case ClassOnet:
		return "onet"
	case ClassOther:
		return "other"
	}
	return "class(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// Valid reports whether c is one of the defined classes.
func (c Class) Valid() bool { return c < NumClasses }

// ClassCounters are the dispatcher's counters for one class, summed over
// all CPUs. Every frame the program sees is counted in exactly one class's
// Packets and Bytes, so the sum of Packets over all classes is the number
// of frames seen.
//
// For a class whose frames are redirected to a bound AF_XDP socket, the
// frames delivered to the socket are Packets - FaultDrop - RedirectFail.
type ClassCounters struct {
	// Packets counts every frame classified into the class, including
	// fault-dropped, unredirected and (for ClassOther) malformed frames.
	Packets uint64
	// Bytes is the sum of frame lengths (Ethernet header included, FCS not).
	Bytes uint64
	// CE counts frames whose IPv4 or IPv6 ECN field is CE (3). Malformed
	// frames are never counted here.
	CE uint64
	// RedirectFail counts RoCEv2/onet frames that could not be redirected to
	// an AF_XDP socket (none registered for the receive queue, or
	// bpf_redirect_map failed) and were passed to the kernel instead.
	RedirectFail uint64
	// ParseErr counts malformed frames (only ever non-zero for ClassOther);
	// they are passed to the kernel untouched.
	ParseErr uint64
	// FaultDrop counts frames dropped by fault injection (SetFault).
	FaultDrop uint64
}

// add accumulates one CPU's value into c.
func (c *ClassCounters) add(v *dispatcherClassCounters) {
	c.Packets += v.Packets
	c.Bytes += v.Bytes
	c.CE += v.Ce
	c.RedirectFail += v.RedirectFail
	c.ParseErr += v.ParseErr
	c.FaultDrop += v.FaultDrop
}
