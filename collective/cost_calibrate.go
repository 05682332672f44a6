package collective

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Calibration sizes and rounds: short enough for start-up.
const (
	calibSmall       = 8
	calibLarge       = 1 << 20
	calibSmallRounds = 16
	calibLargeRounds = 3
)

// calibrate measures the cost model on rank 0 and gives it to every rank
// so that all of them select alike. Rank 0 ping-pongs with the first
// other rank on its host (local link) and the first rank on another host
// (inter-host link), times a local reduction, and sends the parameters.
func (c *Communicator) calibrate(ctx context.Context) error {
	if c.size == 1 {
		return nil
	}
	local, inter := -1, -1
	for r := 1; r < c.size; r++ {
		if c.topo.hostOf[r] == c.topo.hostOf[0] {
			if local < 0 {
				local = r
			}
		} else if inter < 0 {
			inter = r
		}
	}
	small := make([]byte, calibSmall)
	var large []byte
	if c.rank == 0 || c.rank == local || c.rank == inter {
		large = make([]byte, calibLarge)
	}
	var m CostModel
	for _, peer := range []int{local, inter} {
		if peer < 0 {
			continue
		}
		switch c.rank {
		case 0:
			a, b, err := c.pingPong(ctx, peer, small, large)
			if err != nil {
				return fmt.Errorf("ping-pong with rank %d: %w", peer, err)
			}
			if peer == local {
				m.AlphaLocal, m.BetaLocal = a, b
			} else {
				m.Alpha, m.Beta = a, b
			}
		case peer:
			if err := c.echo(ctx, small, large); err != nil {
				return fmt.Errorf("echo to rank 0: %w", err)
			}
		}
	}
	var params [40]byte
	if c.rank == 0 {
		if inter < 0 {
			m.Alpha, m.Beta = m.AlphaLocal, m.BetaLocal
		}
		m.Gamma = measureGamma(large)
		for i, v := range []float64{m.Alpha, m.Beta, m.AlphaLocal, m.BetaLocal, m.Gamma} {
			binary.LittleEndian.PutUint64(params[8*i:], math.Float64bits(v))
		}
		var reqs []Request
		for r := 1; r < c.size; r++ {
			q, err := c.t.Isend(r, tagCalib, params[:])
			if err != nil {
				return fmt.Errorf("send parameters to rank %d: %w", r, err)
			}
			reqs = append(reqs, q)
		}
		for i, q := range reqs {
			if err := q.Wait(ctx); err != nil {
				return fmt.Errorf("send parameters to rank %d: %w", i+1, timeoutErr(ctx, err))
			}
		}
	} else {
		q, err := c.t.Irecv(0, tagCalib, params[:])
		if err != nil {
			return fmt.Errorf("receive parameters: %w", err)
		}
		if err := q.Wait(ctx); err != nil {
			return fmt.Errorf("receive parameters from rank 0: %w", timeoutErr(ctx, err))
		}
		var v [5]float64
		for i := range v {
			v[i] = math.Float64frombits(binary.LittleEndian.Uint64(params[8*i:]))
		}
		m = CostModel{Alpha: v[0], Beta: v[1], AlphaLocal: v[2], BetaLocal: v[3], Gamma: v[4]}
	}
	c.model = m
	return nil
}

func timeoutErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

// roundTrip sends b to peer and receives it back, returning the time.
func (c *Communicator) roundTrip(ctx context.Context, peer int, b []byte) (time.Duration, error) {
	start := time.Now()
	r, err := c.t.Irecv(peer, tagCalib, b)
	if err != nil {
		return 0, err
	}
	s, err := c.t.Isend(peer, tagCalib, b)
	if err != nil {
		return 0, err
	}
	if err := s.Wait(ctx); err != nil {
		return 0, timeoutErr(ctx, err)
	}
	if err := r.Wait(ctx); err != nil {
		return 0, timeoutErr(ctx, err)
	}
	return time.Since(start), nil
}

// pingPong measures one-way latency (alpha) and inverse bandwidth (beta)
// to peer from the median small and large round trips (one warm-up each).
func (c *Communicator) pingPong(ctx context.Context, peer int, small, large []byte) (alpha, beta float64, err error) {
	measure := func(b []byte, rounds int) (float64, error) {
		ts := make([]float64, 0, rounds)
		for i := 0; i <= rounds; i++ {
			d, err := c.roundTrip(ctx, peer, b)
			if err != nil {
				return 0, err
			}
			if i > 0 {
				ts = append(ts, d.Seconds()/2)
			}
		}
		return median(ts), nil
	}
	ts, err := measure(small, calibSmallRounds)
	if err != nil {
		return 0, 0, err
	}
	tl, err := measure(large, calibLargeRounds)
	if err != nil {
		return 0, 0, err
	}
	alpha = max(ts, 1e-7)
	beta = max((tl-ts)/float64(len(large)-len(small)), 1e-12)
	return alpha, beta, nil
}

// echo answers rank 0's ping-pong.
func (c *Communicator) echo(ctx context.Context, small, large []byte) error {
	for _, st := range []struct {
		b []byte
		n int
	}{{small, calibSmallRounds + 1}, {large, calibLargeRounds + 1}} {
		for i := 0; i < st.n; i++ {
			r, err := c.t.Irecv(0, tagCalib, st.b)
			if err != nil {
				return err
			}
			if err := r.Wait(ctx); err != nil {
				return timeoutErr(ctx, err)
			}
			s, err := c.t.Isend(0, tagCalib, st.b)
			if err != nil {
				return err
			}
			if err := s.Wait(ctx); err != nil {
				return timeoutErr(ctx, err)
			}
		}
	}
	return nil
}

// measureGamma times a float32 sum over buf (best of three).
func measureGamma(buf []byte) float64 {
	half := len(buf) / 2
	best := math.Inf(1)
	for range 3 {
		start := time.Now()
		ReduceInto(buf[:half], buf[half:2*half], Float32, Sum)
		best = min(best, time.Since(start).Seconds())
	}
	return max(best/float64(half), 1e-13)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}
