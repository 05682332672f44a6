package lab

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// NetnsDir is where named namespaces are bind-mounted (as `ip netns` does).
const NetnsDir = "/run/netns"

func netnsPath(name string) string { return filepath.Join(NetnsDir, name) }

// errRestore marks a failure to switch a thread back to its original
// namespace: the thread must not be reused.
var errRestore = errors.New("restore original netns")

// onLockedThread runs fn on a fresh goroutine locked to its OS thread and
// waits for it. When fn reports errRestore the thread stays locked, so that
// the runtime destroys it when the goroutine exits instead of handing a thread
// in a foreign namespace to other goroutines. A panic in fn is re-raised in
// the caller.
func onLockedThread(fn func() error) error {
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
		if r.pnc == nil && !errors.Is(r.err, errRestore) {
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

// inNetns switches the calling (locked) thread into the namespace at path,
// runs fn and switches back. The error wraps errRestore when switching back
// failed.
func inNetns(path string, fn func() error) error {
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter netns %s: %w", path, err)
	}
	var pnc any
	func() {
		defer func() { pnc = recover() }()
		err = fn()
	}()
	if rerr := netns.Set(orig); rerr != nil {
		return fmt.Errorf("%w after %s: %v (fn: %v)", errRestore, path, rerr, err)
	}
	if pnc != nil {
		panic(pnc)
	}
	return err
}

// Do runs fn on an OS thread switched into the host's network namespace and
// waits for it. Sockets fn opens stay in that namespace after Do returns, so
// the usual pattern is to open sockets inside Do and use them outside. fn
// runs on a different goroutine than the caller; a panic in it is re-raised in
// the caller. Safe for concurrent use.
func (h *Host) Do(fn func() error) error {
	return onLockedThread(func() error { return inNetns(h.Netns, fn) })
}

// createNamed creates the named namespaces (bind-mounted under NetnsDir)
// without changing the namespace of any thread that outlives the call.
func createNamed(names []string) error {
	return onLockedThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return fmt.Errorf("get current netns: %w", err)
		}
		defer orig.Close()
		for _, n := range names {
			h, err := netns.NewNamed(n) // unshares: this thread is now in n
			if err == nil {
				h.Close()
			}
			if rerr := netns.Set(orig); rerr != nil {
				return fmt.Errorf("%w after creating %s: %v", errRestore, n, rerr)
			}
			if err != nil {
				return fmt.Errorf("create netns %s: %w", n, err)
			}
		}
		return nil
	})
}
