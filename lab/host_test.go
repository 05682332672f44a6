package lab_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

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

// TestRunJob: one process per host, each in its namespace, outputs kept
// apart; the first to fail ends the ones still waiting.
func TestRunJob(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{Hosts: 3})
	hosts := []*lab.Host{&l.Hosts[0], &l.Hosts[1], &l.Hosts[2]}
	job, err := lab.RunJob(context.Background(), hosts, func(ctx context.Context, i int, h *lab.Host) *lab.Cmd {
		return h.Command(ctx, "/bin/sh", "-c", fmt.Sprintf("readlink /proc/self/ns/net; echo rank %d >&2", i))
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range hosts {
		ns := strings.TrimSpace(job.Stdout[i].String())
		if job.Errs[i] != nil || seen[ns] || strings.TrimSpace(job.Stderr[i].String()) != fmt.Sprintf("rank %d", i) {
			t.Errorf("rank %d: %v, netns %q (seen: %v), stderr %q", i, job.Errs[i], ns, seen[ns], job.Stderr[i].String())
		}
		seen[ns] = true
	}
	// Rank 1 fails: ranks 0 and 2, waiting for a minute, are ended.
	start := time.Now()
	job, err = lab.RunJob(context.Background(), hosts, func(ctx context.Context, i int, h *lab.Host) *lab.Cmd {
		if i == 1 {
			return h.Command(ctx, "/bin/sh", "-c", "exit 3")
		}
		return h.Command(ctx, "sleep", "60")
	})
	if err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if !errors.As(job.Errs[1], &ee) || ee.ExitCode() != 3 {
		t.Errorf("rank 1: %v, want exit status 3", job.Errs[1])
	}
	if job.Errs[0] == nil || job.Errs[2] == nil {
		t.Errorf("ranks 0 and 2 ended by themselves: %v, %v", job.Errs[0], job.Errs[2])
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the job took %v: the failure did not end the others", d)
	}
	// A program that cannot start is reported as such.
	if _, err := lab.RunJob(context.Background(), hosts, func(ctx context.Context, i int, h *lab.Host) *lab.Cmd {
		return h.Command(ctx, "/nonexistent/onetdp-test")
	}); err == nil || !strings.Contains(err.Error(), "start rank 0") {
		t.Errorf("missing program: %v", err)
	}
}
