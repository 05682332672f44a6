package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/rendezvous"
)

func TestStatusOf(t *testing.T) {
	w := func(errs ...error) error { return fmt.Errorf("allreduce #3 on rank 1: %w", errors.Join(errs...)) }
	for _, c := range []struct {
		err  error
		want status
	}{
		{nil, statusOK},
		{w(collective.ErrInvalidArgument), statusInvalid},
		{w(collective.ErrSizeMismatch), statusInvalid},
		{w(rendezvous.ErrBadLaunch), statusInvalid},
		{w(rendezvous.ErrNoLauncher), statusInvalid},
		{w(collective.ErrTimeout), statusTimeout},
		{w(context.DeadlineExceeded), statusTimeout},
		{w(collective.ErrPeerLost), statusPeerLost},
		{w(collective.ErrAborted), statusAborted},
		{fmt.Errorf("%w (after %w)", collective.ErrAborted, collective.ErrPeerLost), statusAborted},
		{w(collective.ErrClosed), statusClosed},
		{fmt.Errorf("%w (after %w)", collective.ErrClosed, collective.ErrPeerLost), statusClosed},
		{w(collective.ErrNotSupported), statusNotSupported},
		{w(context.Canceled), statusAborted},
		{errors.New("disk on fire"), statusInternal},
		{fmt.Errorf("x: %w: %w", errInternal, collective.ErrInvalidArgument), statusInternal},
	} {
		if got := statusOf(c.err); got != c.want {
			t.Errorf("statusOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestStatusNames(t *testing.T) {
	want := []string{"ONET_OK", "ONET_ERR_INVALID", "ONET_ERR_TIMEOUT", "ONET_ERR_PEER_LOST", "ONET_ERR_ABORTED",
		"ONET_ERR_CLOSED", "ONET_ERR_NOT_SUPPORTED", "ONET_ERR_INTERNAL"}
	for i, w := range want {
		if got := status(i).String(); got != w {
			t.Errorf("status %d: %s, want %s", i, got, w)
		}
	}
	if s := status(8).String(); s != "ONET_ERR_UNKNOWN" {
		t.Errorf("status 8: %s", s)
	}
	if s := status(-1).String(); s != "ONET_ERR_UNKNOWN" {
		t.Errorf("status -1: %s", s)
	}
}

func TestProtect(t *testing.T) {
	runtime.LockOSThread() // the last error is per thread
	defer runtime.UnlockOSThread()
	if st := protect("onet_x", func() error { panic("boom") }); st != statusInternal {
		t.Errorf("panic: %v", st)
	}
	msg := lastError()
	if !strings.HasPrefix(msg, "onet_x: internal error: panic: boom (at ") || !strings.Contains(msg, "status_test.go:") {
		t.Errorf("panic message %q", msg)
	}
	var m map[string]int
	if st := protect("onet_y", func() error { m["a"] = 1; return nil }); st != statusInternal {
		t.Errorf("nil map panic: %v", st)
	}
	if msg := lastError(); !strings.Contains(msg, "onet_y: internal error: panic: assignment to entry in nil map") {
		t.Errorf("runtime panic message %q", msg)
	}
	if st := protect("onet_z", func() error { return fmt.Errorf("onet_z: %w", collective.ErrTimeout) }); st != statusTimeout {
		t.Errorf("timeout: %v", st)
	}
	if msg := lastError(); msg != "onet_z: collective: timeout" {
		t.Errorf("error message %q", msg)
	}
	if st := protect("onet_ok", func() error { return nil }); st != statusOK || lastError() != "" {
		t.Errorf("success: %v, last error %q", st, lastError())
	}
}

// TestLastErrorPerThread: each OS thread sees its own last error.
func TestLastErrorPerThread(t *testing.T) {
	const n = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			<-start
			for k := range 100 {
				msg := fmt.Sprintf("thread %d call %d", i, k)
				setLastError(msg)
				runtime.Gosched()
				if got := lastError(); got != msg {
					t.Errorf("got %q, want %q", got, msg)
					return
				}
			}
			setLastError("")
		})
	}
	close(start)
	wg.Wait()
	lastErrors.mu.Lock()
	left := len(lastErrors.m)
	lastErrors.mu.Unlock()
	if left != 0 {
		t.Errorf("%d entries left after every thread cleared its error", left)
	}
}

func TestCopyOut(t *testing.T) {
	buf := make([]byte, 6)
	if n := copyOut(buf, "hello world"); n != 11 || string(buf) != "hello\x00" {
		t.Errorf("truncated: %d %q", n, buf)
	}
	buf = make([]byte, 16)
	if n := copyOut(buf, "hi"); n != 2 || string(buf[:3]) != "hi\x00" {
		t.Errorf("fits: %d %q", n, buf)
	}
	if n := copyOut(nil, "abc"); n != 3 {
		t.Errorf("nil buffer: %d", n)
	}
	one := []byte{'x'}
	if n := copyOut(one, "abc"); n != 3 || one[0] != 0 {
		t.Errorf("one byte: %d %q", n, one)
	}
}

func TestTable(t *testing.T) {
	var tb table[string]
	a, b := tb.add("a"), tb.add("b")
	if a != 1 || b != 2 {
		t.Errorf("ids %d %d", a, b)
	}
	if v, ok := tb.get(a); !ok || v != "a" {
		t.Errorf("get a: %q %v", v, ok)
	}
	if _, ok := tb.get(0); ok {
		t.Error("id 0 found")
	}
	if v, ok := tb.remove(a); !ok || v != "a" {
		t.Errorf("remove a: %q %v", v, ok)
	}
	if _, ok := tb.remove(a); ok {
		t.Error("removed twice")
	}
	if c := tb.add("c"); c != 3 {
		t.Errorf("id reused: %d", c)
	}
	var wg sync.WaitGroup
	ids := make([]uint64, 100)
	for i := range ids {
		wg.Go(func() { ids[i] = tb.add("x") })
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, id := range ids {
		if seen[id] || id < 4 {
			t.Fatalf("id %d twice or reused", id)
		}
		seen[id] = true
	}
	if tb.len() != 102 {
		t.Errorf("len %d", tb.len())
	}
}
