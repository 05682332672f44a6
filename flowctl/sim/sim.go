package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/opennetworks/onetdp/flowctl"
)

// epoch is simulated time zero as the controllers see it.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// newRNG is the marking RNG for a seed.
func newRNG(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func at(ns int64) time.Time { return epoch.Add(time.Duration(ns)) }

// Result is what Run returns: the summary and the time series.
type Result struct {
	Summary Summary
	Series  Series
}

// packet is one packet in the bottleneck FIFO.
type packet struct {
	sent  int64 // ns the sender started it
	flow  int32
	bytes int32
	ce    bool
}

// sender is one flow's sending side plus its receiver-side state.
type sender struct {
	ctrl     flowctl.Controller // nil for CCNone
	pacer    *flowctl.Pacer
	limiter  flowctl.CNPLimiter
	delay    int64 // one-way, ns
	start    int64
	nicFree  int64 // the NIC is done serializing the last packet
	wakeGen  uint32
	tickGen  uint32
	tickAt   int64 // 0: none pending
	blocked  bool  // waiting for the window to open
	inflight int

	sentPkts, cnps    uint64
	deliveredWin      int64 // bytes delivered within the measured window
	deliveredInterval int64 // bytes delivered since the last sample
}

// simulator is the state of one Run.
type simulator struct {
	o        Options
	rng      *rand.Rand
	q        eventQueue
	flows    []sender
	now      int64
	end      int64
	warm     int64
	pkt      int
	serNIC   float64 // ns per packet at the line rate
	serLink  float64 // ns per packet at the bottleneck
	fifo     []packet
	head     int
	qBytes   int
	busy     bool
	linkNext float64 // exact ns the current transmission ends

	hist      []float64 // time-weighted queue histogram, ns per bin
	binBytes  int
	lastQTime int64
	qMax      int

	drops, marks, delivered, sent uint64
	events                        uint64
	series                        Series
}

// Run simulates o and returns the summary and the series. Errors wrap
// ErrBadOptions (or flowctl's parameter errors).
func Run(o Options) (*Result, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	s := &simulator{
		o:       o,
		rng:     newRNG(o.Seed),
		end:     int64(o.Duration),
		warm:    int64(o.WarmUp),
		pkt:     o.PacketBytes,
		serNIC:  float64(o.PacketBytes) * 8e9 / o.LineRate,
		serLink: float64(o.PacketBytes) * 8e9 / o.BottleneckRate,
		flows:   make([]sender, o.Flows),
	}
	s.binBytes = max(1, (o.BufferBytes+4095)/4096)
	s.hist = make([]float64, o.BufferBytes/s.binBytes+2)
	s.lastQTime = s.warm
	s.series = Series{Interval: o.SampleInterval, Flows: o.Flows}
	for i := range s.flows {
		f := &s.flows[i]
		f.delay = int64(o.flowDelay(i))
		f.start = int64(o.flowStart(i))
		f.limiter = flowctl.NewCNPLimiter(o.DCQCN)
		var err error
		if f.pacer, err = flowctl.NewPacer(o.LineRate, o.PacketBytes); err != nil {
			return nil, fmt.Errorf("sim flow %d: %w", i, err)
		}
		switch o.CC {
		case CCDCQCN:
			f.ctrl, err = flowctl.NewDCQCN(flowctl.DCQCNOptions{Params: o.DCQCN, LineRate: o.LineRate})
		case CCDelay:
			f.ctrl, err = flowctl.NewDelay(o.DelayCC)
		}
		if err != nil {
			return nil, fmt.Errorf("sim flow %d: %w", i, err)
		}
		s.q.push(event{t: f.start, kind: evWake, flow: int32(i)})
	}
	s.q.push(event{t: int64(o.SampleInterval), kind: evSample})
	s.loop()
	s.series.finish(&s.o)
	return &Result{Summary: s.summary(), Series: s.series}, nil
}

func (s *simulator) loop() {
	nextProgress := int64(0)
	for s.q.len() > 0 {
		e := s.q.pop()
		if e.t > s.end {
			break
		}
		s.now = e.t
		s.events++
		if s.o.Progress != nil && s.now >= nextProgress {
			s.o.Progress(time.Duration(s.now), s.o.Duration)
			nextProgress = s.now + max(s.end/100, 1)
		}
		f := &s.flows[e.flow]
		switch e.kind {
		case evWake:
			if e.gen == f.wakeGen {
				s.trySend(int(e.flow))
			}
		case evDepart:
			s.depart()
		case evCNP, evAck, evLoss:
			s.feedback(&e)
		case evTick:
			if e.gen == f.tickGen {
				f.tickAt = 0
				s.feedback(&e)
			}
		case evSample:
			s.sample()
		}
	}
	s.now = s.end
	s.queueChanged() // close the time-weighted histogram at the end
	if s.o.Progress != nil {
		s.o.Progress(s.o.Duration, s.o.Duration)
	}
}

// feedback runs a controller event (CNP, ACK, loss report or tick) for
// its flow, then reschedules the flow's tick and its next send (the rate or
// window may have changed).
func (s *simulator) feedback(e *event) {
	i := int(e.flow)
	f := &s.flows[i]
	now := at(s.now)
	switch e.kind {
	case evCNP:
		f.cnps++
		if f.ctrl != nil {
			f.ctrl.OnCNP(now)
		}
	case evAck:
		f.inflight -= int(e.bytes)
		if f.ctrl != nil {
			f.ctrl.OnAck(now, int(e.bytes), time.Duration(s.now-e.aux))
		}
	case evLoss:
		f.inflight -= int(e.bytes)
		if f.ctrl != nil {
			f.ctrl.OnLoss(now)
		}
	case evTick:
		if f.ctrl != nil {
			f.ctrl.OnTick(now)
		}
	}
	if f.ctrl == nil {
		return
	}
	s.scheduleTick(i)
	if s.now >= f.start {
		f.blocked = false
		s.scheduleWake(i, max(s.now, f.nicFree))
	}
}

func (s *simulator) scheduleWake(i int, t int64) {
	f := &s.flows[i]
	f.wakeGen++
	s.q.push(event{t: t, kind: evWake, flow: int32(i), gen: f.wakeGen})
}

func (s *simulator) scheduleTick(i int) {
	f := &s.flows[i]
	d := f.ctrl.NextDeadline()
	if d.IsZero() {
		if f.tickAt != 0 {
			f.tickGen++
			f.tickAt = 0
		}
		return
	}
	t := max(int64(d.Sub(epoch)), s.now)
	if t == f.tickAt {
		return
	}
	f.tickGen++
	f.tickAt = t
	s.q.push(event{t: t, kind: evTick, flow: int32(i), gen: f.tickGen})
}

// rateOf is the pacing rate of flow f: the controller's, capped by the
// line rate (0 means the line rate).
func (s *simulator) rateOf(f *sender) float64 {
	if f.ctrl == nil {
		return s.o.LineRate
	}
	r := f.ctrl.Rate()
	if r <= 0 || r > s.o.LineRate {
		return s.o.LineRate
	}
	return r
}

// trySend sends flow i's next packet if the NIC, the window and the pacer
// allow, and schedules the next attempt.
func (s *simulator) trySend(i int) {
	f := &s.flows[i]
	if s.now < f.nicFree {
		s.scheduleWake(i, f.nicFree)
		return
	}
	if f.ctrl != nil {
		if w := f.ctrl.Window(); w > 0 && f.inflight+s.pkt > w {
			f.blocked = true // an ACK or a loss report wakes it
			return
		}
	}
	if r := s.rateOf(f); r != f.pacer.Rate() {
		f.pacer.SetRate(r)
	}
	now := at(s.now)
	if d := f.pacer.Delay(now, s.pkt); d > 0 {
		s.scheduleWake(i, s.now+int64(d))
		return
	}
	f.pacer.Reserve(now, s.pkt)
	f.nicFree = s.now + int64(math.Ceil(s.serNIC))
	f.sentPkts++
	s.sent++
	f.inflight += s.pkt
	if f.ctrl != nil {
		f.ctrl.OnSent(now, s.pkt)
		s.scheduleTick(i)
	}
	s.enqueue(packet{sent: s.now, flow: int32(i), bytes: int32(s.pkt)})
	s.scheduleWake(i, f.nicFree)
}

// enqueue offers p to the bottleneck: tail drop, RED marking, and the
// start of transmission when the link is idle.
func (s *simulator) enqueue(p packet) {
	if s.qBytes+int(p.bytes) > s.o.BufferBytes {
		s.drops++
		f := &s.flows[p.flow]
		s.q.push(event{t: s.now + 2*f.delay, kind: evLoss, flow: p.flow, bytes: p.bytes})
		return
	}
	s.queueChanged()
	s.qBytes += int(p.bytes)
	s.qMax = max(s.qMax, s.qBytes)
	s.fifo = append(s.fifo, p)
	if !s.busy {
		s.busy = true
		s.linkNext = float64(s.now) + s.serLink
		s.q.push(event{t: int64(math.Ceil(s.linkNext)), kind: evDepart})
	}
}

// mark applies the RED-style rule to the queue depth q.
func (s *simulator) mark(q int) bool {
	m := s.o.Marking
	switch {
	case m.KmaxBytes == 0 || q < m.KminBytes:
		return false
	case q >= m.KmaxBytes:
		return true
	}
	p := m.Pmax * float64(q-m.KminBytes) / float64(m.KmaxBytes-m.KminBytes)
	return s.rng.Float64() < p
}

// depart finishes the head packet: it is delivered, the receiver answers,
// and the next packet starts.
func (s *simulator) depart() {
	p := s.fifo[s.head]
	s.head++
	if s.head > 4096 && s.head*2 > len(s.fifo) {
		s.fifo = append(s.fifo[:0], s.fifo[s.head:]...)
		s.head = 0
	}
	if s.mark(s.qBytes) {
		p.ce = true
		s.marks++
	}
	s.queueChanged()
	s.qBytes -= int(p.bytes)
	s.delivered++
	f := &s.flows[p.flow]
	f.deliveredInterval += int64(p.bytes)
	if s.now >= s.warm {
		f.deliveredWin += int64(p.bytes)
	}
	arrive := s.now + f.delay
	if p.ce && s.o.CC == CCDCQCN && f.limiter.Allow(at(arrive)) {
		s.q.push(event{t: arrive + f.delay, kind: evCNP, flow: p.flow})
	}
	if s.o.CC == CCDelay {
		s.q.push(event{t: arrive + f.delay, kind: evAck, flow: p.flow, bytes: p.bytes, aux: p.sent})
	}
	if s.head < len(s.fifo) {
		s.linkNext += s.serLink
		s.q.push(event{t: int64(math.Ceil(s.linkNext)), kind: evDepart})
	} else {
		s.busy = false
	}
}

// queueChanged charges the time since the last queue change to the bin of
// the depth that held during it (within the measured window only).
func (s *simulator) queueChanged() {
	if s.now > s.lastQTime {
		b := min(s.qBytes/s.binBytes, len(s.hist)-1)
		s.hist[b] += float64(s.now - s.lastQTime)
		s.lastQTime = s.now
	}
}

func (s *simulator) sample() {
	n := len(s.flows)
	smp := Sample{
		T:          time.Duration(s.now),
		QueueBytes: s.qBytes,
		Goodput:    make([]float64, n),
		Allowed:    make([]float64, n),
	}
	iv := s.o.SampleInterval.Seconds()
	for i := range s.flows {
		f := &s.flows[i]
		smp.Goodput[i] = float64(f.deliveredInterval) * 8 / iv
		f.deliveredInterval = 0
		if s.now >= f.start {
			smp.Allowed[i] = s.rateOf(f)
		}
	}
	s.series.Samples = append(s.series.Samples, smp)
	s.q.push(event{t: s.now + int64(s.o.SampleInterval), kind: evSample})
}
