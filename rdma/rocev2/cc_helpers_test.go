package rocev2_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/flowctl"
	"github.com/opennetworks/onetdp/rdma"
)

// nopController hears everything and limits nothing.
type nopController struct{}

func (nopController) OnSent(time.Time, int)               {}
func (nopController) OnAck(time.Time, int, time.Duration) {}
func (nopController) OnCNP(time.Time)                     {}
func (nopController) OnCE(time.Time)                      {}
func (nopController) OnLoss(time.Time)                    {}
func (nopController) OnTick(time.Time)                    {}
func (nopController) Rate() float64                       { return 0 }
func (nopController) Window() int                         { return 0 }
func (nopController) NextDeadline() time.Time             { return time.Time{} }

var _ flowctl.Controller = nopController{}

// stubController returns a fixed rate and window and records what the
// engine reports; the test reads the records from another goroutine.
type stubController struct {
	rate   float64
	window int
	mtu    int

	sentPkts, ackedPkts, losses, cnps atomic.Int64
	maxInFlight                       atomic.Int64
	mu                                sync.Mutex
	rtts                              []time.Duration
}

func (c *stubController) OnSent(time.Time, int) {
	n := c.sentPkts.Add(1) - c.ackedPkts.Load()
	if n > c.maxInFlight.Load() {
		c.maxInFlight.Store(n)
	}
}

func (c *stubController) OnAck(_ time.Time, acked int, rtt time.Duration) {
	if c.mtu > 0 {
		c.ackedPkts.Add(int64(acked / c.mtu))
	}
	if rtt != 0 {
		c.mu.Lock()
		c.rtts = append(c.rtts, rtt)
		c.mu.Unlock()
	}
}
func (c *stubController) OnCNP(time.Time)         { c.cnps.Add(1) }
func (c *stubController) OnCE(time.Time)          {}
func (c *stubController) OnLoss(time.Time)        { c.losses.Add(1) }
func (c *stubController) OnTick(time.Time)        {}
func (c *stubController) Rate() float64           { return c.rate }
func (c *stubController) Window() int             { return c.window }
func (c *stubController) NextDeadline() time.Time { return time.Time{} }

func (c *stubController) samples() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.rtts...)
}

// stubs hands out one stubController per QP, made by mk, in creation
// order (fakePair creates a's QP first; both devices number from the same
// base, so QPNs do not tell the sides apart).
type stubs struct {
	mu  sync.Mutex
	all []*stubController
	mk  func() *stubController
}

func newStubs(mk func() *stubController) *stubs {
	return &stubs{mk: mk}
}

func (s *stubs) factory(uint32) flowctl.Controller {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.mk()
	s.all = append(s.all, c)
	return c
}

// nth is the controller of the i-th QP created.
func (s *stubs) nth(i int) *stubController {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.all[i]
}

// writeAll WRITEs total bytes from a to b in msg-sized messages (at most
// depth outstanding), checks every completion and the bytes that arrived,
// and returns the goodput in bits/s.
func writeAll(t *testing.T, a, b *side, total, msg int, limit time.Duration) float64 {
	t.Helper()
	fill(a.buf[:total], 0x5A)
	clear(b.buf[:total])
	start := time.Now()
	n := total / msg
	for i := 0; i < n; i++ {
		post(t, a.qp, rdma.SendWR{ID: uint64(i), Opcode: rdma.WRRDMAWrite, SGL: sge(a, i*msg, msg),
			RemoteAddr: b.mr.Addr() + uint64(i*msg), RKey: b.mr.RKey(), Signaled: true})
	}
	for _, wc := range waitWC(t, a.scq, n, limit) {
		if wc.Status != rdma.WCSuccess {
			t.Fatalf("completion %+v", wc)
		}
	}
	el := time.Since(start)
	for i := range total {
		if a.buf[i] != b.buf[i] {
			t.Fatalf("byte %d: got %#x, want %#x", i, b.buf[i], a.buf[i])
		}
	}
	return float64(total) * 8 / el.Seconds()
}
