package lab

import (
	"fmt"
	"path/filepath"

	"github.com/vishvananda/netns"

	"github.com/opennetworks/onetdp/internal/nsenter"
)

// NetnsDir is where named namespaces are bind-mounted (as `ip netns` does).
const NetnsDir = "/run/netns"

func netnsPath(name string) string { return filepath.Join(NetnsDir, name) }

// Do runs fn on an OS thread switched into the host's network namespace and
// waits for it. Sockets fn opens stay in that namespace after Do returns, so
// the usual pattern is to open sockets inside Do and use them outside. fn
// runs on a different goroutine than the caller; a panic in it is re-raised in
// the caller. Safe for concurrent use.
func (h *Host) Do(fn func() error) error {
	return nsenter.DoPath(h.Netns, fn)
}

// createNamed creates the named namespaces (bind-mounted under NetnsDir)
// without changing the namespace of any thread that outlives the call.
func createNamed(names []string) error {
	return nsenter.OnLockedThread(func() error {
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
				return fmt.Errorf("%w after creating %s: %v", nsenter.ErrRestore, n, rerr)
			}
			if err != nil {
				return fmt.Errorf("create netns %s: %w", n, err)
			}
		}
		return nil
	})
}
