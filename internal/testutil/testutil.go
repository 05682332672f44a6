package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireRoot skips the test, saying why, unless the process can administer
// networking and BPF (effective UID 0). Tests that only need a feature this
// kernel has must not use it to hide a failure: call it only where the missing
// thing is the privilege.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (CAP_NET_ADMIN, CAP_BPF, CAP_SYS_ADMIN) for netns, XDP and BPF; run `sudo make test`")
	}
}

// UniqueName returns prefix followed by 6 random hex characters, for
// namespace, link and pin names that must not collide between test packages
// running in parallel. Keep prefix short: interface names stop at 15 bytes.
func UniqueName(prefix string) string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return prefix + hex.EncodeToString(b[:])
}

// RequireBPFFS skips unless /sys/fs/bpf is a mounted bpffs; it mounts it when
// running as root and it is missing.
func RequireBPFFS(tb testing.TB) {
	tb.Helper()
	RequireRoot(tb)
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return
	}
	if err := unix.Mount("bpffs", "/sys/fs/bpf", "bpf", 0, ""); err != nil {
		tb.Skipf("bpffs is not mounted at /sys/fs/bpf and mounting failed: %v", err)
	}
}

// heavyLock is the file every CPU-bound measurement test locks, across
// the test binaries that `go test ./...` runs at the same time.
const heavyLock = "/tmp/onetdp-heavy-test.lock"

// Exclusive makes tb the only test, across all test processes of this
// machine that call Exclusive, running until tb ends: tests whose
// assertions rest on measured rates (goodput, fairness, drops) take it so
// that another package's load test does not starve them. It waits up to
// 10 minutes, then fails.
func Exclusive(tb testing.TB) {
	tb.Helper()
	f, err := os.OpenFile(heavyLock, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		tb.Fatalf("exclusive test lock %s: %v", heavyLock, err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			tb.Fatalf("exclusive test lock %s: %v", heavyLock, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Cleanup(func() { f.Close() }) // closing releases the lock
}
