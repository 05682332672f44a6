package adaptive

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/opennetworks/onetdp/collective"
)

// Never is the threshold at which every message goes over Small.
const Never = math.MaxInt

// Options configure New. The caller owns the struct; New only reads it.
type Options struct {
	// Small carries messages shorter than the threshold; Large the rest.
	// Both must span the same group (equal Rank and Size). The adaptive
	// transport owns them from now on and closes them.
	Small, Large collective.Transport
	// Threshold in bytes: messages of at least this length go over Large.
	// 0 measures it when the group has two or more ranks (and means
	// "everything over Large" for one rank); Never sends all over Small.
	Threshold int
	// Sizes are the message sizes measured when Threshold is 0, ascending
	// (default 64 B, 256 B, ... 4 MiB).
	Sizes []int
}

// Sample is one measured size: the one-way time (half the best round trip)
// over each transport.
type Sample struct {
	Size         int
	Small, Large float64 // seconds
}

// Transport routes each message over Small or Large by its length. Safe
// for concurrent use (as safe as the two transports are).
type Transport struct {
	small, large collective.Transport
	threshold    int
	samples      []Sample
}

var (
	_ collective.Transport = (*Transport)(nil)
	_ collective.Describer = (*Transport)(nil)
)

// New combines o.Small and o.Large. Every rank of the group must call it
// with the same Threshold and Sizes. With Threshold 0 it measures (ranks 0
// and 1) and agrees (every rank) before it returns; ctx bounds that. On
// error the two transports are left open for the caller.
func New(ctx context.Context, o Options) (*Transport, error) {
	if o.Small == nil || o.Large == nil {
		return nil, fmt.Errorf("adaptive: new: both Small and Large are required: %w", collective.ErrInvalidArgument)
	}
	if o.Small.Rank() != o.Large.Rank() || o.Small.Size() != o.Large.Size() {
		return nil, fmt.Errorf("adaptive: new: small is rank %d of %d, large rank %d of %d: %w",
			o.Small.Rank(), o.Small.Size(), o.Large.Rank(), o.Large.Size(), collective.ErrInvalidArgument)
	}
	if o.Threshold < 0 {
		return nil, fmt.Errorf("adaptive: new: threshold %d: %w", o.Threshold, collective.ErrInvalidArgument)
	}
	t := &Transport{small: o.Small, large: o.Large, threshold: o.Threshold}
	if o.Threshold > 0 || o.Small.Size() == 1 {
		return t, nil
	}
	sizes := o.Sizes
	if len(sizes) == 0 {
		for s := 64; s <= 4<<20; s *= 4 {
			sizes = append(sizes, s)
		}
	}
	for i, s := range sizes {
		if s < 0 || s > MaxMeasureSize || i > 0 && s <= sizes[i-1] {
			return nil, fmt.Errorf("adaptive: new: sizes %v must ascend within 0..%d: %w", sizes, MaxMeasureSize, collective.ErrInvalidArgument)
		}
	}
	th, samples, err := measure(ctx, o.Small, o.Large, sizes)
	if err != nil {
		return nil, fmt.Errorf("adaptive: rank %d: measure threshold: %w", o.Small.Rank(), err)
	}
	t.threshold, t.samples = th, samples
	return t, nil
}

// Threshold is the length from which messages go over Large (Never: none).
func (t *Transport) Threshold() int { return t.threshold }

// Samples are the measurements the threshold came from: rank 0's, nil on
// other ranks or when the threshold was given.
func (t *Transport) Samples() []Sample { return append([]Sample(nil), t.samples...) }

func (t *Transport) pick(n int) collective.Transport {
	if n < t.threshold {
		return t.small
	}
	return t.large
}

// Rank implements collective.Transport.
func (t *Transport) Rank() int { return t.small.Rank() }

// Size implements collective.Transport.
func (t *Transport) Size() int { return t.small.Size() }

// Isend implements collective.Transport.
func (t *Transport) Isend(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	return t.pick(len(b)).Isend(peer, tag, b)
}

// Irecv implements collective.Transport.
func (t *Transport) Irecv(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	return t.pick(len(b)).Irecv(peer, tag, b)
}

// Close implements collective.Transport: it closes both transports.
func (t *Transport) Close() error {
	return errors.Join(t.small.Close(), t.large.Close())
}

func name(tr collective.Transport) string {
	if d, ok := tr.(collective.Describer); ok {
		if n := d.Info().Name; n != "" {
			return n
		}
	}
	return fmt.Sprintf("%T", tr)
}

// Info implements collective.Describer: Name is "adaptive(<small><N:<large>)",
// with N the threshold ("adaptive(mem<65536:tcp)"); hosts come from Small,
// or Large when Small does not know them.
func (t *Transport) Info() collective.TransportInfo {
	th := strconv.Itoa(t.threshold)
	if t.threshold == Never {
		th = "inf"
	}
	info := collective.TransportInfo{Name: "adaptive(" + name(t.small) + "<" + th + ":" + name(t.large) + ")"}
	for _, tr := range []collective.Transport{t.small, t.large} {
		if d, ok := tr.(collective.Describer); ok {
			if h := d.Info().Host; len(h) > 0 {
				info.Host = h
				break
			}
		}
	}
	return info
}
