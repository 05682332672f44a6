package flowctl

import (
	"errors"
	"time"
)

// ErrBadOptions is wrapped by constructors given options they cannot use.
var ErrBadOptions = errors.New("flowctl: bad options")

// Controller is the per-flow congestion controller a transport drives. The
// transport calls the On* methods as things happen, in non-decreasing order
// of now, from the one goroutine that owns the flow; it reads Rate and Window
// before sending and arranges to call OnTick at NextDeadline.
//
// A controller ignores the events it has no use for (DCQCN ignores RTT
// samples and losses; the delay controller ignores CNPs), so a transport can
// report everything it sees.
type Controller interface {
	// OnSent reports bytes handed to the wire (payload plus headers, as the
	// controller's byte counters count them).
	OnSent(now time.Time, bytes int)
	// OnAck reports bytes newly acknowledged and, when rtt > 0, an RTT
	// sample measured on that ACK (send to ACK arrival).
	OnAck(now time.Time, ackedBytes int, rtt time.Duration)
	// OnCNP reports a congestion notification packet for this flow.
	OnCNP(now time.Time)
	// OnCE reports a data packet or ACK of this flow that arrived CE-marked
	// (or carried an ECN echo).
	OnCE(now time.Time)
	// OnLoss reports a loss: a NAK sequence error, a go-back or a
	// retransmission timeout.
	OnLoss(now time.Time)
	// OnTick lets time pass; the transport calls it at or after
	// NextDeadline, and may call it at any other time.
	OnTick(now time.Time)
	// Rate is the allowed sending rate in bits per second; 0 means
	// unlimited (the controller does not pace).
	Rate() float64
	// Window is the most unacknowledged bytes allowed in flight; 0 means
	// unlimited (the controller does not bound the window).
	Window() int
	// NextDeadline is the earliest instant at which the controller's output
	// may change without another event; the zero Time means none.
	NextDeadline() time.Time
}

var (
	_ Controller = (*DCQCN)(nil)
	_ Controller = (*Delay)(nil)
)
