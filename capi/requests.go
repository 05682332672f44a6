package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

// errWaitTimeout is onet_wait's timeout: the request stays valid.
var errWaitTimeout = errors.New("wait timed out, the operation still runs")

// waitRequest waits for request id up to timeout (negative: the
// operation's own timeout). A completed request is freed here and its
// operation's error returned; a wait that times out first returns an
// error wrapping collective.ErrTimeout and keeps the request.
func waitRequest(id uint64, timeout time.Duration) error {
	r, ok := requests.get(id)
	if !ok {
		return invalid("onet_wait: request %d: unknown handle (completed, or never created)", id)
	}
	ctx := context.Background()
	if timeout >= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	err := r.h.Wait(ctx)
	select {
	case <-r.h.Done():
	default:
		return fmt.Errorf("onet_wait: request %d (%v #%d) after %v: %w: %w", id, r.h.Op(), r.h.Seq(), timeout, errWaitTimeout, collective.ErrTimeout)
	}
	requests.remove(id)
	return err
}

// testRequest reports whether request id completed and, if so, frees it
// and returns its operation's error.
func testRequest(id uint64) (bool, error) {
	r, ok := requests.get(id)
	if !ok {
		return false, invalid("onet_test: request %d: unknown handle (completed, or never created)", id)
	}
	done, err := r.h.Test()
	if !done {
		return false, nil
	}
	requests.remove(id)
	return true, err
}

// statsJSON is onet_comm_stats_json's document.
type statsJSON struct {
	Rank      int                `json:"rank"`
	Size      int                `json:"size"`
	Transport string             `json:"transport"`
	Addr      string             `json:"addr"`
	Ops       map[string]opStats `json:"ops"`
}

type opStats struct {
	Completed uint64 `json:"completed"`
	Errors    uint64 `json:"errors"`
	Bytes     uint64 `json:"bytes"`
	// LatencySumNs is the sum of the operations' times; P50Ns and P99Ns
	// are upper bounds from the log2 buckets.
	LatencySumNs int64 `json:"latency_sum_ns"`
	P50Ns        int64 `json:"latency_p50_ns"`
	P99Ns        int64 `json:"latency_p99_ns"`
	// Buckets are the non-empty log2 latency buckets.
	Buckets []bucket `json:"latency_buckets,omitempty"`
}

// bucket counts operations that took less than LeNs (and at least half
// of it).
type bucket struct {
	LeNs  int64  `json:"le_ns"`
	Count uint64 `json:"count"`
}

// commStats renders communicator id's statistics.
func commStats(id uint64) (string, error) {
	c, err := commFor(id)
	if err != nil {
		return "", fmt.Errorf("onet_comm_stats_json: %w", err)
	}
	doc := statsJSON{Rank: c.Rank(), Size: c.Size(), Transport: c.TransportName, Addr: c.Addr.String(), Ops: map[string]opStats{}}
	st := c.Stats()
	for _, k := range collective.OpKinds() {
		s := &st.Ops[k]
		counts, sum := s.Latency.Snapshot()
		o := opStats{Completed: s.Completed.Load(), Errors: s.Errors.Load(), Bytes: s.Bytes.Load(), LatencySumNs: sum.Nanoseconds()}
		if o.Completed > 0 {
			o.P50Ns = collective.Quantile(counts, 0.5).Nanoseconds()
			o.P99Ns = collective.Quantile(counts, 0.99).Nanoseconds()
		}
		for i, n := range counts {
			if n > 0 {
				o.Buckets = append(o.Buckets, bucket{LeNs: collective.BucketUpperBound(i).Nanoseconds(), Count: n})
			}
		}
		doc.Ops[k.String()] = o
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("onet_comm_stats_json: %w", err)
	}
	return string(b), nil
}
