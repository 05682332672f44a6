package collective_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

// TestInline: an Inline operation on an idle communicator runs inside its
// Wait; an operation issued meanwhile queues behind it and runs after it,
// in order, on every rank.
func TestInline(t *testing.T) {
	comms := collectivetest.Comms(t, 2, collectivetest.GroupOptions{}, collective.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, len(comms))
	for r, c := range comms {
		go func() {
			errs <- func() error {
				a, b := []byte{byte(r + 1)}, []byte{byte(10 * (r + 1))}
				h1, err := c.IAllReduce(collective.Inline(ctx), nil, a, collective.Uint8, collective.Sum)
				if err != nil {
					return err
				}
				h2, err := c.IAllReduce(ctx, nil, b, collective.Uint8, collective.Sum)
				if err != nil {
					return err
				}
				time.Sleep(10 * time.Millisecond)
				if done, _ := h2.Test(); done {
					return errors.New("the queued operation ran before the inline one was waited for")
				}
				if err := errors.Join(h1.Wait(ctx), h2.Wait(ctx)); err != nil {
					return err
				}
				if a[0] != 3 || b[0] != 30 || h1.Seq() != 1 || h2.Seq() != 2 {
					return fmt.Errorf("rank %d: results %d, %d (want 3, 30), seq %d, %d", r, a[0], b[0], h1.Seq(), h2.Seq())
				}
				// A blocking call runs inline too, and an idle communicator
				// afterwards still serves the worker.
				if err := c.AllReduce(ctx, nil, a, collective.Uint8, collective.Sum); err != nil || a[0] != 6 {
					return fmt.Errorf("blocking allreduce: %v, %d (want 6)", err, a[0])
				}
				h3, err := c.IAllReduce(ctx, nil, b, collective.Uint8, collective.Sum)
				if err != nil {
					return err
				}
				if err := h3.Wait(ctx); err != nil || b[0] != 60 {
					return fmt.Errorf("worker allreduce: %v, %d (want 60)", err, b[0])
				}
				return nil
			}()
		}()
	}
	for range comms {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestInlineNeverWaitedClose: Close fails the operations queued behind an
// Inline one nobody waited for, instead of leaving them hanging.
func TestInlineNeverWaitedClose(t *testing.T) {
	comms := collectivetest.Comms(t, 2, collectivetest.GroupOptions{}, collective.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := comms[0]
	if _, err := c.IAllReduce(collective.Inline(ctx), nil, make([]byte, 4), collective.Float32, collective.Sum); err != nil {
		t.Fatal(err)
	}
	h, err := c.IAllReduce(ctx, nil, make([]byte, 4), collective.Float32, collective.Sum)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := h.Wait(ctx); !errors.Is(err, collective.ErrClosed) {
		t.Fatalf("queued operation after Close: %v, want ErrClosed", err)
	}
}
