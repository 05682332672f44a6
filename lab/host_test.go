package lab_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

func TestHostCommand(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{})
	h := &l.Hosts[1]
	out, err := h.Command(context.Background(), "/bin/sh", "-c", "readlink /proc/self/ns/net").Output()
	if err != nil {
		t.Fatalf("readlink in %s: %v", h.Name, err)
	}
	var hostNs, rootNs unix.Stat_t
	if err := unix.Stat(h.Netns, &hostNs); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat("/proc/self/ns/net", &rootNs); err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(string(out))
	if want := fmt.Sprintf("net:[%d]", hostNs.Ino); got != want {
		t.Errorf("command ran in %s, want %s (root is net:[%d])", got, want, rootNs.Ino)
	}
	if hostNs.Ino == rootNs.Ino {
		t.Errorf("host netns inode equals the root's (%d)", rootNs.Ino)
	}
	dev, err := h.Command(context.Background(), "cat", "/proc/net/dev").CombinedOutput()
	if err != nil || !strings.Contains(string(dev), "eth0:") {
		t.Errorf("cat /proc/net/dev in host: %v\n%s", err, dev)
	}
	// The command's exit status comes through.
	err = h.Command(context.Background(), "/bin/sh", "-c", "exit 3").Run()
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("exit 3: %v", err)
	}
}

func TestHostDoRestoresNetns(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{})
	// The caller's own thread, pinned for the whole test: its namespace
	// before and after Do must be the same. (/proc/self/ns/net would be the
	// main thread's, which a parallel test's Do may be borrowing.)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &before); err != nil {
		t.Fatal(err)
	}
	var inside uint64
	if err := l.Hosts[0].Do(func() error {
		var st unix.Stat_t
		err := unix.Stat("/proc/thread-self/ns/net", &st)
		inside = st.Ino
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var want unix.Stat_t
	if err := unix.Stat(l.Hosts[0].Netns, &want); err != nil {
		t.Fatal(err)
	}
	if inside != want.Ino {
		t.Errorf("Do ran in netns %d, want %d", inside, want.Ino)
	}
	// Errors from fn come back unchanged; the caller's thread is untouched.
	sentinel := errors.New("boom")
	if err := l.Hosts[0].Do(func() error { return sentinel }); err != sentinel {
		t.Errorf("Do returned %v, want the fn's error", err)
	}
	var after unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino != before.Ino || after.Ino == inside {
		t.Errorf("caller thread in netns %d after Do, %d before (host %d)", after.Ino, before.Ino, inside)
	}
}

func TestLabHost(t *testing.T) {
	l := &lab.Lab{Name: "x", Hosts: make([]lab.Host, 3)}
	for _, spec := range []string{"h2", "2", "x-h2"} {
		h, err := l.Host(spec)
		if err != nil || h != &l.Hosts[2] {
			t.Errorf("Host(%q) = %p, %v; want host 2", spec, h, err)
		}
	}
	for _, spec := range []string{"h3", "-1", "h", "", "h02", "y-h1", "x-h-1"} {
		if _, err := l.Host(spec); !errors.Is(err, lab.ErrNoSuchHost) {
			t.Errorf("Host(%q) err %v, want ErrNoSuchHost", spec, err)
		}
	}
}
