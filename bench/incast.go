package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/opennetworks/onetdp/rdma"
)

// IncastFlow is one sender → receiver connection of an incast run. The
// receivers of all flows are normally one device (the incast victim).
type IncastFlow struct {
	Sender, Receiver RDMASide
}

// IncastOptions configure Incast. Zero fields take the defaults.
type IncastOptions struct {
	// Size is the RDMA WRITE size in bytes; default 64 KiB.
	Size int
	// Duration is how long every flow keeps writing; default 3 s.
	Duration time.Duration
	// TxDepth is the most outstanding WRITEs per flow; default 16.
	TxDepth int
	// MTU is the path MTU; default 1024.
	MTU rdma.MTU
	// QPTimeout is the ACK timeout exponent (4.096 µs × 2^n); default 14
	// (67 ms, perftest's): shorter ones fire spuriously behind a full
	// bottleneck queue on a busy machine.
	QPTimeout uint8
	// Timeout bounds the wait for any one completion; default 10 s.
	Timeout time.Duration
	// OnStart, if set, hears every sender's QP number (in flow order)
	// once all flows are connected, just before traffic starts; stop is
	// closed when the traffic ends. Callers sample engine state with it.
	OnStart func(senderQPNs []uint32, stop <-chan struct{})
}

// IncastFlowResult is one flow's goodput: bytes that the receiver holds
// and the sender saw acknowledged.
type IncastFlowResult struct {
	Flow     int           `json:"flow"`
	Messages int           `json:"messages"`
	Bytes    int64         `json:"bytes"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	Gbps     float64       `json:"goodput_gbit_s"`
}

// IncastResult is an incast run: every flow's goodput, their sum and
// Jain's fairness index over them.
type IncastResult struct {
	Flows         []IncastFlowResult `json:"flows"`
	AggregateGbps float64            `json:"aggregate_gbit_s"`
	Jain          float64            `json:"jain"`
}

// Incast connects every flow, then runs them at once: each sender keeps
// TxDepth RDMA WRITEs of Size bytes outstanding to its receiver for
// Duration, and the last transfer of each flow is checked byte for byte.
// Connections are made one flow after another (their Connect functions
// may share a listener address only if they take turns).
func Incast(ctx context.Context, flows []IncastFlow, o IncastOptions) (IncastResult, error) {
	var res IncastResult
	if len(flows) == 0 {
		return res, errors.New("bench incast: no flows")
	}
	if o.Size == 0 {
		o.Size = 64 << 10
	}
	if o.Duration == 0 {
		o.Duration = 3 * time.Second
	}
	if o.TxDepth == 0 {
		o.TxDepth = 16
	}
	if o.QPTimeout == 0 {
		o.QPTimeout = 14
	}
	ro := RDMAOptions{Op: RDMAWrite, Sizes: []int{o.Size}, Duration: o.Duration, TxDepth: o.TxDepth, RxDepth: o.TxDepth,
		CQMod: max(1, o.TxDepth/4), MTU: o.MTU, QPTimeout: o.QPTimeout, Timeout: o.Timeout}
	if err := ro.setDefaults(true); err != nil {
		return res, fmt.Errorf("bench incast: %w", err)
	}
	pairs := make([]*rdmaPair, 0, len(flows))
	defer func() {
		for _, p := range pairs {
			p.close()
		}
	}()
	for i, f := range flows {
		p, err := connectPair(ctx, f.Sender, f.Receiver, ro, ro.TxDepth, 1, ro.TxDepth)
		if err != nil {
			return res, fmt.Errorf("bench incast: flow %d: %w", i, err)
		}
		pairs = append(pairs, p)
	}
	if o.OnStart != nil {
		qpns := make([]uint32, len(pairs))
		for i, p := range pairs {
			qpns[i] = p.c.qp.QPN()
		}
		stop := make(chan struct{})
		defer close(stop)
		o.OnStart(qpns, stop)
	}
	res.Flows = make([]IncastFlowResult, len(pairs))
	errs := make([]error, len(pairs))
	var wg sync.WaitGroup
	for i, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.bandwidth(ctx, o.Size)
			if err != nil {
				errs[i] = fmt.Errorf("bench incast: flow %d: %w", i, err)
				return
			}
			res.Flows[i] = IncastFlowResult{Flow: i, Messages: r.Iterations, Bytes: int64(r.Iterations) * int64(o.Size),
				Elapsed: r.Elapsed, Gbps: r.Gbps}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	rates := make([]float64, len(res.Flows))
	for i, f := range res.Flows {
		rates[i] = f.Gbps
		res.AggregateGbps += f.Gbps
	}
	res.Jain = Jain(rates)
	return res, nil
}

// Jain is Jain's fairness index (Σx)² / (n·Σx²): 1 when every x is equal,
// 1/n when one takes everything; 0 for no values or all zero.
func Jain(x []float64) float64 {
	var s, sq float64
	for _, v := range x {
		s += v
		sq += v * v
	}
	if sq == 0 {
		return 0
	}
	return s * s / (float64(len(x)) * sq)
}
