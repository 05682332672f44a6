package pytests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

// runRanks runs script with args as one Python process per lab host (rank
// i on h<i>, inside h<i>'s network namespace), torchrun's environment
// pointing at h0, and returns each rank's standard output. A rank that
// fails cancels the others; the error carries its output's tail.
func runRanks(t *testing.T, l *lab.Lab, timeout time.Duration, script string, args ...string) ([]string, error) {
	t.Helper()
	return runProcs(t, l, timeout, python, append([]string{filepath.Join(pythonDir(t), script)}, args...)...)
}

// runProcs runs name with args as one process per lab host, as runRanks
// describes.
func runProcs(t *testing.T, l *lab.Lab, timeout time.Duration, name string, args ...string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	n := len(l.Hosts)
	// A fresh port per run keeps clear of the last run's TIME_WAIT sockets;
	// the scripts may use the next few ports too.
	port := 20000 + rand.IntN(20000)
	outs := make([]bytes.Buffer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		h := &l.Hosts[r]
		cmd := h.Command(ctx, name, args...)
		cmd.Env = pyEnv(t, "RANK="+strconv.Itoa(r), "LOCAL_RANK=0", "WORLD_SIZE="+strconv.Itoa(n),
			"MASTER_ADDR="+l.Hosts[0].Addr.Addr().String(), "MASTER_PORT="+strconv.Itoa(port),
			"GLOO_SOCKET_IFNAME="+h.Ifname, "ONET_TRANSPORT=tcp")
		cmd.Stdout, cmd.Stderr = &outs[r], &outs[r]
		// On timeout or another rank's failure: SIGABRT first, so that
		// Python's faulthandler (PYTHONFAULTHANDLER) prints every thread's
		// stack into the output, then SIGKILL after WaitDelay.
		cmd.Cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGABRT) }
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			wg.Wait()
			return nil, fmt.Errorf("start rank %d on %s: %w", r, h.Name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cmd.Wait(); err != nil {
				errs[r] = fmt.Errorf("rank %d on %s: %w:\n%s", r, h.Name, err, lastLines(outs[r].Bytes(), 40))
				cancel()
			}
		}()
	}
	wg.Wait()
	res := make([]string, n)
	for r := range n {
		res[r] = outs[r].String()
	}
	return res, errors.Join(errs...)
}

// requirePass fails unless every rank's output has the line want
// (formatted with the rank and size), or rank 0's when only0.
func requirePass(t *testing.T, outs []string, only0 bool, want func(r, n int) string) {
	t.Helper()
	for r, o := range outs {
		if only0 && r > 0 {
			continue
		}
		if w := want(r, len(outs)); !strings.Contains(o, w) {
			t.Errorf("rank %d: no %q in its output:\n%s", r, w, lastLines([]byte(o), 20))
		}
	}
}

// TestLab runs the lab scripts in labs of 2 and 4 hosts.
func TestLab(t *testing.T) {
	testutil.RequireRoot(t)
	requirePython(t, "numpy", "torch")
	buildLib(t)
	testutil.Exclusive(t) // several Python processes per test: keep the rate-measuring tests elsewhere fair
	for _, hosts := range []int{2, 4} {
		t.Run(fmt.Sprintf("hosts=%d", hosts), func(t *testing.T) {
			l := labtest.New(t, lab.Options{Hosts: hosts})
			t.Run("pg_methods", func(t *testing.T) {
				outs, err := runRanks(t, l, 3*time.Minute, "tests/lab_pg_methods.py")
				if err != nil {
					t.Fatal(err)
				}
				requirePass(t, outs, false, func(r, n int) string { return fmt.Sprintf("PASS pg_methods rank %d of %d", r, n) })
			})
			t.Run("numpy", func(t *testing.T) {
				outs, err := runRanks(t, l, 3*time.Minute, "tests/lab_numpy.py")
				if err != nil {
					t.Fatal(err)
				}
				requirePass(t, outs, false, func(r, n int) string { return fmt.Sprintf("PASS numpy rank %d of %d", r, n) })
			})
			t.Run("errors", func(t *testing.T) {
				outs, err := runRanks(t, l, 3*time.Minute, "tests/lab_errors.py")
				if err != nil {
					t.Fatal(err)
				}
				requirePass(t, outs, false, func(r, n int) string { return fmt.Sprintf("PASS errors rank %d of %d", r, n) })
				for _, line := range strings.Split(outs[0], "\n") {
					if strings.HasPrefix(line, "timeout message") || strings.HasPrefix(line, "abort message") {
						t.Log(line)
					}
				}
			})
			t.Run("ddp", func(t *testing.T) {
				dir := t.TempDir()
				gloo, onet := filepath.Join(dir, "gloo.pt"), filepath.Join(dir, "onet.pt")
				outs, err := runRanks(t, l, 3*time.Minute, "tests/lab_ddp.py", "gloo", gloo)
				if err != nil {
					t.Fatal(err)
				}
				requirePass(t, outs, true, func(_, n int) string { return fmt.Sprintf("PASS ddp gloo ranks %d", n) })
				// Twice: small buckets as blocking calls (the default), then
				// every bucket through the completer thread.
				for _, inline := range []string{"65536", "0"} {
					t.Setenv("ONET_TORCH_INLINE_BYTES", inline)
					outs, err = runRanks(t, l, 3*time.Minute, "tests/lab_ddp.py", "onet", onet, gloo)
					if err != nil {
						t.Fatalf("ONET_TORCH_INLINE_BYTES=%s: %v", inline, err)
					}
					requirePass(t, outs, true, func(_, n int) string { return fmt.Sprintf("PASS ddp onet ranks %d", n) })
					t.Logf("ONET_TORCH_INLINE_BYTES=%s: %s", inline, strings.TrimSpace(lastLines([]byte(outs[0]), 1)))
				}
			})
		})
	}
}
