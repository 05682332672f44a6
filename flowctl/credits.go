package flowctl

import (
	"fmt"
	"math"
	"time"
)

// Grant is credit for one sender: it may send Bytes more.
type Grant struct {
	Sender uint32 // the sender's id as registered with SetDemand
	Bytes  int    // bytes granted
}

// CreditOptions configure a CreditScheduler.
type CreditOptions struct {
	// DrainRate is the receiver's drain rate in bits/s, divided among the
	// senders. Required.
	DrainRate float64
	// MaxBurst caps the bytes one Grant call hands out (unused budget is
	// not banked beyond it); default 64 KiB.
	MaxBurst int
	// MaxSenders bounds the senders tracked; default 1024.
	MaxSenders int
}

// CreditScheduler is the receiver side of receiver-driven credits (in the
// spirit of UET's RCCC): senders announce their backlog, and the receiver
// hands out credit at its drain rate, divided max-min fairly among senders
// with backlog, so an incast cannot overrun the receiver's link. Grant does
// not allocate once the senders are registered. Owned by the receiver's
// goroutine.
type CreditScheduler struct {
	o       CreditOptions
	ids     []uint32
	demand  []int
	share   []int
	index   map[uint32]int
	last    time.Time
	began   bool
	budget  float64 // bytes carried (fractions and unspent, up to MaxBurst)
	rotate  int
	granted uint64
}

// NewCreditScheduler makes a receiver-side credit scheduler.
func NewCreditScheduler(opts CreditOptions) (*CreditScheduler, error) {
	if opts.MaxBurst == 0 {
		opts.MaxBurst = 64 << 10
	}
	if opts.MaxSenders == 0 {
		opts.MaxSenders = 1024
	}
	if !(opts.DrainRate > 0) || math.IsInf(opts.DrainRate, 0) || opts.MaxBurst < 1 || opts.MaxSenders < 1 {
		return nil, fmt.Errorf("new credit scheduler: %+v: %w", opts, ErrBadOptions)
	}
	return &CreditScheduler{
		o:      opts,
		ids:    make([]uint32, 0, opts.MaxSenders),
		demand: make([]int, 0, opts.MaxSenders),
		share:  make([]int, 0, opts.MaxSenders),
		index:  make(map[uint32]int, opts.MaxSenders),
	}, nil
}

// SetDemand records that sender has backlog bytes waiting (0 when idle). It
// fails only when MaxSenders distinct senders are already tracked.
func (s *CreditScheduler) SetDemand(sender uint32, backlog int) error {
	backlog = max(backlog, 0)
	i, ok := s.index[sender]
	if !ok {
		if len(s.ids) == s.o.MaxSenders {
			return fmt.Errorf("credit demand of sender %d: %d senders tracked: %w", sender, len(s.ids), ErrBadOptions)
		}
		i = len(s.ids)
		s.index[sender] = i
		s.ids = append(s.ids, sender)
		s.demand = append(s.demand, 0)
		s.share = append(s.share, 0)
	}
	s.demand[i] = backlog
	return nil
}

// Granted is the total bytes granted so far.
func (s *CreditScheduler) Granted() uint64 { return s.granted }

// Grant divides the credit accrued since the last call (DrainRate times the
// elapsed time, plus what was carried, at most MaxBurst) among senders with
// backlog, max-min fair: no sender gets more than its backlog, the rest is
// split evenly, the odd bytes going round-robin. It appends to out and
// returns it; granted bytes are taken off the senders' backlog.
func (s *CreditScheduler) Grant(now time.Time, out []Grant) []Grant {
	if !s.began {
		s.began, s.last = true, now
	}
	if el := now.Sub(s.last); el > 0 {
		s.budget += s.o.DrainRate / 8 * el.Seconds()
		s.last = now
	}
	s.budget = math.Min(s.budget, float64(s.o.MaxBurst))
	budget := int(s.budget)
	n := len(s.ids)
	active := 0
	for i := range n {
		s.share[i] = 0
		if s.demand[i] > 0 {
			active++
		}
	}
	// Water filling: each round gives every unsatisfied sender an equal
	// share; senders that need less take only their backlog.
	for active > 0 && budget >= active {
		each := budget / active
		for i := range n {
			if want := s.demand[i] - s.share[i]; want > 0 {
				g := min(want, each)
				s.share[i] += g
				budget -= g
				if g == want {
					active--
				}
			}
		}
	}
	// Fewer bytes than senders left: one each, round-robin from where the
	// last call stopped.
	for k := 0; k < n && budget > 0 && active > 0; k++ {
		i := (s.rotate + k) % n
		if s.demand[i]-s.share[i] > 0 {
			s.share[i]++
			budget--
			if s.share[i] == s.demand[i] {
				active--
			}
			if budget == 0 {
				s.rotate = (i + 1) % n
			}
		}
	}
	spent := 0
	for i := range n {
		if g := s.share[i]; g > 0 {
			s.demand[i] -= g
			spent += g
			out = append(out, Grant{Sender: s.ids[i], Bytes: g})
		}
	}
	s.budget -= float64(spent)
	s.granted += uint64(spent)
	return out
}

// CreditGate is the sender side: credit granted by the receiver is added,
// and a packet may leave only when credit covers it. Owned by the sender's
// goroutine; the zero value holds no credit.
type CreditGate struct {
	credit int64
}

// Add adds granted credit (bytes).
func (g *CreditGate) Add(bytes int) {
	if bytes > 0 {
		g.credit += int64(bytes)
	}
}

// Available is the credit left, bytes.
func (g *CreditGate) Available() int64 { return g.credit }

// Allow reports whether bytes are covered by credit and, if so, spends it.
func (g *CreditGate) Allow(bytes int) bool {
	if bytes < 0 || int64(bytes) > g.credit {
		return false
	}
	g.credit -= int64(bytes)
	return true
}
