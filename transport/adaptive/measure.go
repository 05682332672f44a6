package adaptive

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

// MaxMeasureSize is the largest size Options.Sizes may name.
const MaxMeasureSize = 64 << 20

// Tags the measurement uses on the underlying transports, before any user
// traffic exists on them.
const (
	measureTag collective.Tag = 0xFFFF_FFFF_FFFF_FF00 + iota
	echoTag
	agreeTag
)

// measureBytes bounds the bytes one size sends one way per transport; the
// round trips per size are between 2 and 32, plus one warm-up.
const measureBytes = 1 << 20

func iterations(size int) int {
	return min(max(measureBytes/max(size, 1), 2), 32)
}

// measure runs the measurement (ranks 0 and 1) and the agreement (all).
func measure(ctx context.Context, small, large collective.Transport, sizes []int) (int, []Sample, error) {
	rank := small.Rank()
	var samples []Sample
	th := -1
	switch rank {
	case 0:
		var err error
		if samples, err = pingAll(ctx, small, large, sizes); err != nil {
			return 0, nil, err
		}
		th = crossover(samples)
		var msg [8]byte
		binary.BigEndian.PutUint64(msg[:], uint64(th))
		reqs := make([]collective.Request, 0, small.Size()-1)
		for r := 1; r < small.Size(); r++ {
			req, err := small.Isend(r, agreeTag, msg[:])
			if err != nil {
				return 0, nil, fmt.Errorf("send threshold to rank %d: %w", r, err)
			}
			reqs = append(reqs, req)
		}
		for i, req := range reqs {
			if err := req.Wait(ctx); err != nil {
				return 0, nil, fmt.Errorf("send threshold to rank %d: %w", i+1, err)
			}
		}
		return th, samples, nil
	case 1:
		if err := echoAll(ctx, small, large, sizes); err != nil {
			return 0, nil, err
		}
	}
	var msg [8]byte
	req, err := small.Irecv(0, agreeTag, msg[:])
	if err == nil {
		err = req.Wait(ctx)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("receive threshold from rank 0: %w", err)
	}
	v := binary.BigEndian.Uint64(msg[:])
	if v > math.MaxInt {
		return 0, nil, fmt.Errorf("rank 0 sent threshold %d: %w", v, collective.ErrInvalidArgument)
	}
	return int(v), nil, nil
}

// crossover is the smallest measured size from which Large is at least as
// fast at every larger size; Never when Large loses at the largest.
func crossover(s []Sample) int {
	th := Never
	for i := len(s) - 1; i >= 0 && s[i].Large <= s[i].Small; i-- {
		th = s[i].Size
	}
	return th
}

func roundTrip(ctx context.Context, tr collective.Transport, out, in []byte) error {
	r, err := tr.Irecv(1, echoTag, in)
	if err != nil {
		return err
	}
	s, err := tr.Isend(1, measureTag, out)
	if err != nil {
		return err
	}
	if err := s.Wait(ctx); err != nil {
		return err
	}
	return r.Wait(ctx)
}

func pingAll(ctx context.Context, small, large collective.Transport, sizes []int) ([]Sample, error) {
	out := make([]byte, sizes[len(sizes)-1])
	in := make([]byte, len(out))
	samples := make([]Sample, len(sizes))
	for i, size := range sizes {
		samples[i].Size = size
		for j, tr := range []collective.Transport{small, large} {
			best := time.Duration(math.MaxInt64)
			for k := range iterations(size) + 1 {
				start := time.Now()
				if err := roundTrip(ctx, tr, out[:size], in[:size]); err != nil {
					return nil, fmt.Errorf("ping %d bytes over %s: %w", size, name(tr), err)
				}
				if d := time.Since(start); k > 0 && d < best {
					best = d
				}
			}
			oneWay := best.Seconds() / 2
			if j == 0 {
				samples[i].Small = oneWay
			} else {
				samples[i].Large = oneWay
			}
		}
	}
	return samples, nil
}

func echoAll(ctx context.Context, small, large collective.Transport, sizes []int) error {
	buf := make([]byte, sizes[len(sizes)-1])
	for _, size := range sizes {
		for _, tr := range []collective.Transport{small, large} {
			for range iterations(size) + 1 {
				r, err := tr.Irecv(0, measureTag, buf[:size])
				if err == nil {
					err = r.Wait(ctx)
				}
				var s collective.Request
				if err == nil {
					s, err = tr.Isend(0, echoTag, buf[:size])
				}
				if err == nil {
					err = s.Wait(ctx)
				}
				if err != nil {
					return fmt.Errorf("echo %d bytes over %s: %w", size, name(tr), err)
				}
			}
		}
	}
	return nil
}
