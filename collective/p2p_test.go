package collective_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

// p2pTags include the numbers a collective's own tags take (sequence 1
// and 2, steps 0 and 1) to show that user tags live in a space apart.
var p2pTags = []uint64{0, 1, 1 << 20, 1<<20 | 1, 2 << 20, collective.MaxUserTag}

// TestSendRecvRandom: every rank sends every other rank messages of
// random sizes (0, 1, odd, up to 100 KB) on several tags, some several on
// one tag (they must arrive in order), posting all sends and receives at
// once on a rendezvous transport while an AllGather runs alongside.
func TestSendRecvRandom(t *testing.T) {
	ctx := testCtx(t)
	for _, n := range []int{2, 3, 5} {
		comms := algoComms(t, n, collective.OpAllGather, "auto")
		rng := rand.New(rand.NewPCG(uint64(n), 11))
		type msg struct {
			from, to int
			tag      uint64
			data     []byte
		}
		var msgs []msg
		for from := range n {
			for to := range n {
				if from == to {
					continue
				}
				for range 6 {
					size := []int{0, 1, 7, 333, 100_000}[rng.IntN(5)]
					d := make([]byte, size)
					for i := range d {
						d[i] = byte(rng.Uint32())
					}
					msgs = append(msgs, msg{from, to, p2pTags[rng.IntN(len(p2pTags))], d})
				}
			}
		}
		got := make([][]byte, len(msgs))
		gathered := make([][]byte, n)
		errs := collectivetest.Parallel(n, func(r int) error {
			var hs []*collective.Handle
			for i, m := range msgs {
				var h *collective.Handle
				var err error
				switch r {
				case m.to:
					got[i] = make([]byte, len(m.data))
					h, err = comms[r].IRecv(ctx, got[i], m.from, m.tag)
				case m.from:
					h, err = comms[r].ISend(ctx, m.data, m.to, m.tag)
				default:
					continue
				}
				if err != nil {
					return err
				}
				hs = append(hs, h)
			}
			gathered[r] = make([]byte, 3*n)
			if err := comms[r].AllGather(ctx, []byte{byte(r), 1, 2}, gathered[r]); err != nil {
				return err
			}
			for _, h := range hs {
				if err := h.Wait(ctx); err != nil {
					return err
				}
			}
			return nil
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("%d ranks: %v", n, err)
		}
		for i, m := range msgs {
			if !bytes.Equal(got[i], m.data) {
				t.Fatalf("%d ranks: message %d (%d->%d tag %#x, %d bytes) arrived wrong", n, i, m.from, m.to, m.tag, len(m.data))
			}
		}
		for r := range n {
			for s := range n {
				if !bytes.Equal(gathered[r][3*s:3*s+3], []byte{byte(s), 1, 2}) {
					t.Fatalf("%d ranks: allgather alongside point-to-point: rank %d piece %d = % x", n, r, s, gathered[r][3*s:3*s+3])
				}
			}
		}
	}
}

// TestSendRecvErrors: a receive of the wrong length fails with
// ErrSizeMismatch; bad peers and tags are refused up front.
func TestSendRecvErrors(t *testing.T) {
	ctx := testCtx(t)
	comms := algoComms(t, 2, collective.OpAllGather, "auto")
	errs := collectivetest.Parallel(2, func(r int) error {
		if r == 0 {
			return comms[0].Send(ctx, make([]byte, 5), 1, 3)
		}
		err := comms[1].Recv(ctx, make([]byte, 4), 0, 3)
		if !errors.Is(err, collective.ErrSizeMismatch) {
			return fmt.Errorf("recv 4 of 5 bytes: %v, want ErrSizeMismatch", err)
		}
		return nil
	})
	if errs[1] != nil {
		t.Fatal(errs[1])
	}
	for _, c := range []struct {
		peer int
		tag  uint64
	}{{-1, 0}, {2, 0}, {0, 0}, {1, collective.MaxUserTag + 1}} {
		if err := comms[0].Send(ctx, nil, c.peer, c.tag); !errors.Is(err, collective.ErrInvalidArgument) {
			t.Errorf("send to %d tag %#x: %v, want ErrInvalidArgument", c.peer, c.tag, err)
		}
		if err := comms[0].Recv(ctx, nil, c.peer, c.tag); !errors.Is(err, collective.ErrInvalidArgument) {
			t.Errorf("recv from %d tag %#x: %v, want ErrInvalidArgument", c.peer, c.tag, err)
		}
	}
}
