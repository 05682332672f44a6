package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
)

// LatOptions configure a ping-pong latency run.
type LatOptions struct {
	// Size is the UDP payload in bytes (at least 8); default 64.
	Size int
	// Iterations is the number of measured round trips; default 10,000.
	Iterations int
	// Warmup round trips run first and are not measured; default 1,000.
	Warmup int
	// Timeout is how long the client waits for one reply before it counts a
	// loss and sends again; default 100ms.
	Timeout time.Duration
	// MaxLosses ends the run with an error after this many lost round
	// trips; default 100.
	MaxLosses int
}

// LatResult holds one-way latencies (round trip / 2), as perftest reports
// them.
type LatResult struct {
	Transport  string        `json:"transport"`
	Size       int           `json:"bytes"`
	Iterations int           `json:"iterations"`
	Losses     int           `json:"losses"`
	Min        time.Duration `json:"t_min_ns"`
	Max        time.Duration `json:"t_max_ns"`
	Typical    time.Duration `json:"t_typical_ns"` // median
	Avg        time.Duration `json:"t_avg_ns"`
	Stdev      time.Duration `json:"t_stdev_ns"`
	P99        time.Duration `json:"p99_ns"`
	P999       time.Duration `json:"p99_9_ns"`
}

func (o *LatOptions) setDefaults() error {
	if o.Size == 0 {
		o.Size = 64
	}
	if o.Size < 8 {
		return fmt.Errorf("bench lat: size %d is below the 8-byte sequence number", o.Size)
	}
	if o.Iterations == 0 {
		o.Iterations = 10_000
	}
	if o.Warmup == 0 {
		o.Warmup = 1_000
	}
	if o.Timeout == 0 {
		o.Timeout = 100 * time.Millisecond
	}
	if o.MaxLosses == 0 {
		o.MaxLosses = 100
	}
	return nil
}

// Latency, for the row called name, runs ping-pong between client and server (reachable at
// serverAddr): the server echoes every datagram back to its sender.
func Latency(ctx context.Context, name string, client, server dataplane.Port, serverAddr netip.AddrPort, opts LatOptions) (LatResult, error) {
	if err := opts.setDefaults(); err != nil {
		return LatResult{}, err
	}
	if opts.Size > client.MaxPayload() {
		return LatResult{}, fmt.Errorf("bench lat: size %d exceeds the port's max payload %d", opts.Size, client.MaxPayload())
	}
	echoCtx, stopEcho := context.WithCancel(ctx)
	echoErr := make(chan error, 1)
	go func() { echoErr <- echo(echoCtx, server) }()
	samples, losses, err := pingPong(ctx, client, serverAddr, opts)
	stopEcho()
	if eerr := <-echoErr; err == nil && eerr != nil {
		err = eerr
	}
	res := summarize(samples)
	res.Transport = name
	res.Size = opts.Size
	res.Losses = losses
	return res, err
}

// echo returns every datagram to its sender until ctx ends.
func echo(ctx context.Context, p dataplane.Port) error {
	pkts := make([]dataplane.Packet, 16)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 0, p.MaxPayload())
	}
	p.SetRecvTimeout(20 * time.Millisecond)
	defer p.SetRecvTimeout(0)
	for ctx.Err() == nil {
		n, err := p.Recv(pkts)
		if errors.Is(err, dataplane.ErrTimeout) {
			continue
		}
		if err != nil {
			return fmt.Errorf("bench lat: echo receive: %w", err)
		}
		for off := 0; off < n && ctx.Err() == nil; {
			k, err := p.Send(pkts[off:n])
			if err != nil {
				return fmt.Errorf("bench lat: echo send: %w", err)
			}
			off += k
		}
	}
	return nil
}

// sendOne sends out (one packet), retrying while the port's transmit queue
// is full, for at most timeout.
func sendOne(ctx context.Context, c dataplane.Port, out []dataplane.Packet, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		k, err := c.Send(out)
		if err != nil {
			return fmt.Errorf("bench lat: send: %w", err)
		}
		if k == 1 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench lat: send: transmit queue still full after %v: %w", timeout, dataplane.ErrTimeout)
		}
	}
}

func pingPong(ctx context.Context, c dataplane.Port, dst netip.AddrPort, opts LatOptions) ([]time.Duration, int, error) {
	out := []dataplane.Packet{{Buf: make([]byte, opts.Size), Addr: dst}}
	fillPattern(out[0].Buf)
	in := make([]dataplane.Packet, 4)
	for i := range in {
		in[i].Buf = make([]byte, 0, c.MaxPayload())
	}
	c.SetRecvTimeout(opts.Timeout)
	defer c.SetRecvTimeout(0)
	samples := make([]time.Duration, 0, opts.Iterations)
	losses := 0
	total := opts.Warmup + opts.Iterations
	for seq := 0; seq < total; {
		if ctx.Err() != nil {
			return samples, losses, ctx.Err()
		}
		binary.LittleEndian.PutUint64(out[0].Buf, uint64(seq))
		start := time.Now()
		if err := sendOne(ctx, c, out, opts.Timeout); err != nil {
			return samples, losses, err
		}
		ok, err := awaitReply(c, in, uint64(seq))
		if err != nil {
			return samples, losses, err
		}
		if !ok {
			losses++
			if losses > opts.MaxLosses {
				return samples, losses, fmt.Errorf("bench lat: %d round trips lost: %w", losses, dataplane.ErrTimeout)
			}
			continue // send the same sequence number again
		}
		if seq >= opts.Warmup {
			samples = append(samples, time.Since(start)/2)
		}
		seq++
	}
	return samples, losses, nil
}

// awaitReply waits for the echo of seq, skipping stale replies; false on
// timeout.
func awaitReply(c dataplane.Port, in []dataplane.Packet, seq uint64) (bool, error) {
	for {
		n, err := c.Recv(in)
		if errors.Is(err, dataplane.ErrTimeout) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("bench lat: receive: %w", err)
		}
		for i := 0; i < n; i++ {
			if len(in[i].Buf) >= 8 && binary.LittleEndian.Uint64(in[i].Buf) == seq {
				return true, nil
			}
		}
	}
}

func summarize(s []time.Duration) LatResult {
	r := LatResult{Iterations: len(s)}
	if len(s) == 0 {
		return r
	}
	slices.Sort(s)
	var sum float64
	for _, d := range s {
		sum += float64(d)
	}
	avg := sum / float64(len(s))
	var sq float64
	for _, d := range s {
		sq += (float64(d) - avg) * (float64(d) - avg)
	}
	r.Min, r.Max = s[0], s[len(s)-1]
	r.Typical = s[len(s)/2]
	r.Avg = time.Duration(avg)
	r.Stdev = time.Duration(math.Sqrt(sq / float64(len(s))))
	r.P99 = percentile(s, 0.99)
	r.P999 = percentile(s, 0.999)
	return r
}

// percentile of sorted s, nearest rank.
func percentile(s []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
