package nsenter

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// ErrRestore marks a failure to switch a thread back to its original
// namespace: that thread must not be reused.
var ErrRestore = errors.New("restore original netns")

// OnLockedThread runs fn on a fresh goroutine locked to its OS thread and
// waits for it. When fn's error wraps ErrRestore the thread stays locked, so
// the runtime destroys it with the goroutine instead of handing a thread in a
// foreign namespace to other goroutines. A panic in fn is re-raised in the
// caller.
func OnLockedThread(fn func() error) error {
	type result struct {
		err error
		pnc any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		func() {
			defer func() { r.pnc = recover() }()
			r.err = fn()
		}()
		if r.pnc == nil && !errors.Is(r.err, ErrRestore) {
			runtime.UnlockOSThread()
		}
		done <- r
	}()
	r := <-done
	if r.pnc != nil {
		panic(r.pnc)
	}
	return r.err
}

// Enter switches the calling thread, which the caller has locked, into
// target, runs fn and switches back. The error wraps ErrRestore when
// switching back failed.
func Enter(target netns.NsHandle, fn func() error) error {
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter netns: %w", err)
	}
	var pnc any
	func() {
		defer func() { pnc = recover() }()
		err = fn()
	}()
	if rerr := netns.Set(orig); rerr != nil {
		return fmt.Errorf("%w: %v (fn: %v)", ErrRestore, rerr, err)
	}
	if pnc != nil {
		panic(pnc)
	}
	return err
}

// Do runs fn on a fresh OS thread switched into target and waits for it.
// Sockets fn opens stay in target after Do returns.
func Do(target netns.NsHandle, fn func() error) error {
	return OnLockedThread(func() error { return Enter(target, fn) })
}

// DoPath is Do for the namespace bind-mounted at path (/run/netns/<name>).
func DoPath(path string, fn func() error) error {
	return OnLockedThread(func() error {
		target, err := netns.GetFromPath(path)
		if err != nil {
			return fmt.Errorf("open netns %s: %w", path, err)
		}
		defer target.Close()
		return Enter(target, fn)
	})
}
