package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
)

// PPSOptions configure a one-way packet-rate run.
type PPSOptions struct {
	// Size is the UDP payload size in bytes (at least 8: a sequence number
	// goes first); default 64.
	Size int
	// Count bounds the packets sent; default 2,000,000.
	Count int
	// Duration bounds the sending time; default 3s.
	Duration time.Duration
	// Batch is the number of packets per Send call; default 64.
	Batch int
}

// PPSResult is what one packet-rate run measured. Rates are over the
// receiver's window, first packet to last.
type PPSResult struct {
	Transport string        `json:"transport"`
	Size      int           `json:"bytes"`
	Sent      uint64        `json:"sent"`
	Received  uint64        `json:"received"`
	Corrupted uint64        `json:"corrupted"`
	Window    time.Duration `json:"window_ns"`
	PPS       float64       `json:"pps"`
	Gbps      float64       `json:"gbps"` // UDP payload bits per second
}

func (o *PPSOptions) setDefaults() error {
	if o.Size == 0 {
		o.Size = 64
	}
	if o.Size < 8 {
		return fmt.Errorf("bench pps: size %d is below the 8-byte sequence number", o.Size)
	}
	if o.Count == 0 {
		o.Count = 2_000_000
	}
	if o.Duration == 0 {
		o.Duration = 3 * time.Second
	}
	if o.Batch == 0 {
		o.Batch = 64
	}
	return nil
}

// quiet is how long the receiver waits after the sender finished before it
// concludes the rest was lost.
const quiet = 200 * time.Millisecond

// maxDrain bounds how long the receiver keeps counting after the sender
// finished, however much still arrives.
const maxDrain = 10 * quiet

// PPS, for the row called name, sends opts.Count packets (or for opts.Duration, whichever ends first)
// from tx to rx, whose address is dst, and counts what arrives intact.
func PPS(ctx context.Context, name string, tx, rx dataplane.Port, dst netip.AddrPort, opts PPSOptions) (PPSResult, error) {
	if err := opts.setDefaults(); err != nil {
		return PPSResult{}, err
	}
	if opts.Size > tx.MaxPayload() {
		return PPSResult{}, fmt.Errorf("bench pps: size %d exceeds the port's max payload %d", opts.Size, tx.MaxPayload())
	}
	res := PPSResult{Transport: name, Size: opts.Size}
	var sendDone sync.WaitGroup
	done := make(chan struct{})
	var rxErr error
	var first, last time.Time
	sendDone.Add(1)
	go func() {
		defer sendDone.Done()
		rxErr = receive(rx, opts, done, &res, &first, &last)
	}()

	sent, err := send(ctx, tx, dst, opts)
	res.Sent = sent
	close(done)
	sendDone.Wait()
	if err != nil {
		return res, err
	}
	if rxErr != nil {
		return res, rxErr
	}
	if res.Received > 1 {
		res.Window = last.Sub(first)
		secs := res.Window.Seconds()
		res.PPS = float64(res.Received-1) / secs
		res.Gbps = res.PPS * float64(opts.Size) * 8 / 1e9
	}
	return res, nil
}

func send(ctx context.Context, tx dataplane.Port, dst netip.AddrPort, opts PPSOptions) (uint64, error) {
	pkts := make([]dataplane.Packet, opts.Batch)
	for i := range pkts {
		pkts[i] = dataplane.Packet{Buf: make([]byte, opts.Size), Addr: dst}
		fillPattern(pkts[i].Buf)
	}
	stop := time.Now().Add(opts.Duration)
	var seq uint64
	for seq < uint64(opts.Count) {
		if seq%4096 == 0 && (time.Now().After(stop) || ctx.Err() != nil) {
			break
		}
		n := min(opts.Batch, opts.Count-int(seq))
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint64(pkts[i].Buf, seq+uint64(i))
		}
		for off := 0; off < n; {
			k, err := tx.Send(pkts[off:n])
			if err != nil {
				return seq + uint64(off+k), fmt.Errorf("bench pps: send: %w", err)
			}
			off += k
			// A port whose transmit queue stays full must not hold the
			// sender past its time bound.
			if k == 0 && (time.Now().After(stop) || ctx.Err() != nil) {
				return seq + uint64(off), nil
			}
		}
		seq += uint64(n)
	}
	return seq, nil
}

func receive(rx dataplane.Port, opts PPSOptions, done <-chan struct{}, res *PPSResult, first, last *time.Time) error {
	pkts := make([]dataplane.Packet, opts.Batch)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 0, rx.MaxPayload())
	}
	want := make([]byte, opts.Size)
	fillPattern(want)
	rx.SetRecvTimeout(quiet)
	defer rx.SetRecvTimeout(0)
	var doneAt time.Time // when this loop first saw the sender finished
	for {
		n, err := rx.Recv(pkts)
		if doneAt.IsZero() {
			select {
			case <-done:
				doneAt = time.Now()
			default:
			}
		} else if time.Since(doneAt) > maxDrain {
			return nil // traffic that does not stop is not ours to count
		}
		if errors.Is(err, dataplane.ErrTimeout) {
			// After the sender finished, one whole quiet period for
			// stragglers.
			if !doneAt.IsZero() && time.Since(doneAt) >= quiet {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("bench pps: receive: %w", err)
		}
		now := time.Now()
		if res.Received == 0 {
			*first = now
		}
		*last = now
		for i := 0; i < n; i++ {
			if !intact(pkts[i].Buf, want) {
				res.Corrupted++
				continue
			}
			res.Received++
		}
	}
}

// fillPattern writes a payload pattern that intact can check after the
// 8-byte sequence number.
func fillPattern(b []byte) {
	for i := 8; i < len(b); i++ {
		b[i] = byte(i * 7)
	}
}

func intact(got, want []byte) bool {
	if len(got) != len(want) {
		return false
	}
	return string(got[8:]) == string(want[8:])
}
