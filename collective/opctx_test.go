package collective

import (
	"context"
	"errors"
	"testing"
	"time"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed")
	}
}

// TestOpCtxEnds: each source ends the context, whether a waiter asked for
// Done before (the watchers close it) or only polls Err.
func TestOpCtxEnds(t *testing.T) {
	errBoom := errors.New("boom")
	for _, armed := range []bool{false, true} {
		// The deadline.
		o := newOpCtx(context.Background(), context.Background(), 20*time.Millisecond, time.Now())
		if armed {
			_ = o.Done()
		}
		if o.Err() != nil || o.Cause() != nil {
			t.Fatalf("armed %v: ended at once: %v", armed, o.Err())
		}
		if armed {
			waitClosed(t, o.Done())
		} else {
			time.Sleep(25 * time.Millisecond)
		}
		if o.Err() != context.DeadlineExceeded || o.Cause() != context.DeadlineExceeded || !closed(o.Done()) {
			t.Errorf("armed %v, deadline: err %v cause %v", armed, o.Err(), o.Cause())
		}
		o.release()

		// The caller's context, with its cause.
		parent, cancel := context.WithCancelCause(context.Background())
		o = newOpCtx(parent, context.Background(), time.Minute, time.Now())
		if armed {
			_ = o.Done()
		}
		cancel(errBoom)
		if armed {
			waitClosed(t, o.Done())
		}
		if o.Err() != context.Canceled || o.Cause() != errBoom {
			t.Errorf("armed %v, caller: err %v cause %v", armed, o.Err(), o.Cause())
		}
		o.release()

		// The communicator's life (abort, close).
		life, stop := context.WithCancelCause(context.Background())
		o = newOpCtx(context.Background(), life, time.Minute, time.Now())
		if armed {
			_ = o.Done()
		}
		stop(ErrAborted)
		if armed {
			waitClosed(t, o.Done())
		}
		if o.Err() != context.Canceled || !errors.Is(o.Cause(), ErrAborted) {
			t.Errorf("armed %v, life: err %v cause %v", armed, o.Err(), o.Cause())
		}
		o.release()
	}
}

// TestOpCtxRelease: the end of the operation ends the context (and
// what derives from it); the first cause stays.
func TestOpCtxRelease(t *testing.T) {
	o := newOpCtx(context.Background(), context.Background(), time.Minute, time.Now())
	child, cancel := context.WithCancel(o)
	defer cancel()
	o.release()
	waitClosed(t, child.Done())
	if o.Err() != context.Canceled || o.Cause() != context.Canceled {
		t.Errorf("released: err %v cause %v", o.Err(), o.Cause())
	}
	// A later deadline does not replace the cause.
	o.end(context.DeadlineExceeded, context.DeadlineExceeded)
	if o.Err() != context.Canceled {
		t.Errorf("err %v after a second end", o.Err())
	}
}

// TestOpCtxDeadlineAndValues: the caller's deadline wins over the
// timeout; values come from the caller's context.
func TestOpCtxDeadlineAndValues(t *testing.T) {
	type key struct{}
	want := time.Now().Add(time.Hour)
	parent, cancel := context.WithDeadline(context.WithValue(context.Background(), key{}, 7), want)
	defer cancel()
	o := newOpCtx(parent, context.Background(), time.Second, time.Now())
	defer o.release()
	if d, ok := o.Deadline(); !ok || !d.Equal(want) {
		t.Errorf("deadline %v %v, want the caller's %v", d, ok, want)
	}
	if v := o.Value(key{}); v != 7 {
		t.Errorf("value %v, want 7", v)
	}
	now := time.Now()
	o2 := newOpCtx(context.Background(), context.Background(), time.Second, now)
	defer o2.release()
	if d, _ := o2.Deadline(); !d.Equal(now.Add(time.Second)) {
		t.Errorf("deadline %v, want start + timeout", d)
	}
}
