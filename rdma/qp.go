package rdma

import (
	"fmt"
	"time"
)

// QPState is a queue pair state (enum ibv_qp_state).
type QPState uint8

// Queue pair states. A QP is created in Reset and moves forward with
// Modify; any state may move to Error, and Error only to Reset.
const (
	QPSReset QPState = 0
	QPSInit  QPState = 1
	QPSRTR   QPState = 2 // ready to receive
	QPSRTS   QPState = 3 // ready to send
	QPSError QPState = 6
)

func (s QPState) String() string {
	switch s {
	case QPSReset:
		return "RESET"
	case QPSInit:
		return "INIT"
	case QPSRTR:
		return "RTR"
	case QPSRTS:
		return "RTS"
	case QPSError:
		return "ERR"
	}
	return fmt.Sprintf("QPState(%d)", uint8(s))
}

// QPAttrMask says which QPAttr fields a Modify call sets (IBV_QP_*).
type QPAttrMask uint32

// Attribute mask bits.
const (
	AttrState           QPAttrMask = 1 << 0
	AttrAccessFlags     QPAttrMask = 1 << 3
	AttrPKeyIndex       QPAttrMask = 1 << 4
	AttrPort            QPAttrMask = 1 << 5
	AttrAV              QPAttrMask = 1 << 7 // address vector: remote GID, traffic class, hop limit, flow label
	AttrPathMTU         QPAttrMask = 1 << 8
	AttrTimeout         QPAttrMask = 1 << 9
	AttrRetryCnt        QPAttrMask = 1 << 10
	AttrRNRRetry        QPAttrMask = 1 << 11
	AttrRQPSN           QPAttrMask = 1 << 12
	AttrMaxRdAtomic     QPAttrMask = 1 << 13
	AttrMinRNRTimer     QPAttrMask = 1 << 15
	AttrSQPSN           QPAttrMask = 1 << 16
	AttrMaxDestRdAtomic QPAttrMask = 1 << 17
	AttrDestQPN         QPAttrMask = 1 << 20
)

// AddressVector says how to reach the remote QP (struct ibv_ah_attr with a
// GRH, as RoCEv2 always has).
type AddressVector struct {
	// DGID is the remote GID (its IP address).
	DGID GID
	// SGIDIndex selects the local GID (address) to send from.
	SGIDIndex int
	// TrafficClass is the IP TOS / traffic class: DSCP<<2; the engine adds
	// ECT(0) on data packets.
	TrafficClass uint8
	// HopLimit is the IP TTL / hop limit (0 means 64).
	HopLimit uint8
	// FlowLabel is the IPv6 flow label (20 bits).
	FlowLabel uint32
	// UDPSrcPort is the RoCEv2 UDP source port (ECMP entropy, 0xC000-0xFFFF);
	// 0 lets the implementation derive one per QP.
	UDPSrcPort uint16
}

// QPAttr are a queue pair's attributes (struct ibv_qp_attr, RC subset).
type QPAttr struct {
	State QPState
	// AccessFlags is what the responder allows remote peers: remote write,
	// read, atomic.
	AccessFlags AccessFlags
	PKeyIndex   uint16
	Port        uint8
	AV          AddressVector
	PathMTU     MTU
	// Timeout is the local ACK timeout: 4.096 µs × 2^Timeout (0 = infinite).
	Timeout uint8
	// RetryCnt is how often a request is retransmitted after a timeout or
	// NAK before it completes with WCRetryExcErr (0-7).
	RetryCnt uint8
	// RNRRetry is how often a request is resent after an RNR NAK (0-6;
	// 7 = forever) before it completes with WCRNRRetryExcErr.
	RNRRetry uint8
	// MinRNRTimer is the RNR NAK timer code this QP's responder sends (0-31).
	MinRNRTimer uint8
	// RQPSN is the PSN the responder expects first; SQPSN the first PSN the
	// requester sends.
	RQPSN, SQPSN uint32
	// MaxRdAtomic is the READs/atomics this QP may have outstanding as a
	// requester; MaxDestRdAtomic the ones it serves at once as responder.
	MaxRdAtomic, MaxDestRdAtomic uint8
	// DestQPN is the remote QP number.
	DestQPN uint32
}

// AckTimeout converts the Timeout exponent to a duration (0 = no timeout).
func AckTimeout(exp uint8) time.Duration {
	if exp == 0 {
		return 0
	}
	return time.Duration(4096<<min(exp, 31)) * time.Nanosecond
}

// QPCap sizes a queue pair's queues.
type QPCap struct {
	MaxSendWR, MaxRecvWR   int
	MaxSendSGE, MaxRecvSGE int
}

// QPInitAttr are the creation parameters of a queue pair.
type QPInitAttr struct {
	SendCQ, RecvCQ CQ
	Cap            QPCap
	// SigAll makes every send-queue request signaled.
	SigAll bool
}

// QP is a reliable-connected queue pair.
//
// PostSend and PostRecv may be called from any goroutine, concurrently; the
// requests of one call are posted in order. They return how many requests
// were posted; on error, wrs[n] is the one that was refused (a full queue is
// ErrQueueFull, a request that can never run is ErrInvalidWR).
type QP interface {
	QPN() uint32
	Modify(attr *QPAttr, mask QPAttrMask) error
	Query() (QPAttr, error)
	PostSend(wrs []SendWR) (int, error)
	PostRecv(wrs []RecvWR) (int, error)
	// Destroy moves the QP to Error (flushing what is outstanding) and
	// releases it.
	Destroy() error
}
