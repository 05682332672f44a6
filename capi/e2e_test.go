package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

// The end-to-end tests build libonet.so as users do (go build
// -buildmode=c-shared), compile testdata/onet_check.c against it and
// onet.h with gcc, and run it as the ranks of a job.

var checkProg struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if checkProg.dir != "" {
		os.RemoveAll(checkProg.dir)
	}
	os.Exit(code)
}

// buildCheck returns the path of onet_check linked against a fresh
// libonet.so, built once per test binary.
func buildCheck(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed: the end-to-end test compiles a C program against libonet.so (apt-get install gcc)")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH: the end-to-end test builds libonet.so with it")
	}
	checkProg.once.Do(func() {
		dir, err := os.MkdirTemp("", "onet-capi-")
		if err != nil {
			checkProg.err = err
			return
		}
		checkProg.dir = dir
		lib := filepath.Join(dir, "libonet.so")
		build := exec.Command(goTool, "build", "-buildmode=c-shared", "-o", lib, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := build.CombinedOutput(); err != nil {
			checkProg.err = fmt.Errorf("go build -buildmode=c-shared: %v\n%s", err, out)
			return
		}
		prog := filepath.Join(dir, "onet_check")
		cc := exec.Command(gcc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-o", prog, "testdata/onet_check.c",
			"-I.", "-L"+dir, "-lonet", "-Wl,-rpath,"+dir, "-pthread")
		if out, err := cc.CombinedOutput(); err != nil {
			checkProg.err = fmt.Errorf("gcc: %v\n%s", err, out)
			return
		}
		checkProg.path = prog
	})
	if checkProg.err != nil {
		t.Fatal(checkProg.err)
	}
	return checkProg.path
}

// runRanks runs n ranks of onet_check with options opts; start makes rank
// r's command. It fails the test unless every rank prints PASS.
func runRanks(t *testing.T, n int, opts string, masterAddr string, masterPort int, start func(ctx context.Context, r int, args ...string) rankCmd) {
	t.Helper()
	prog := buildCheck(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	outs := make([]bytes.Buffer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		cmd := start(ctx, r, prog, opts)
		cmd.Env = append(os.Environ(), "RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(n), "MASTER_ADDR="+masterAddr,
			"MASTER_PORT="+strconv.Itoa(masterPort), "ONET_TRANSPORT=", "ONET_STORE=", "ONET_ALGO=")
		cmd.Stdout, cmd.Stderr = &outs[r], &outs[r]
		cmd.WaitDelay = 5 * time.Second
		wg.Go(func() { errs[r] = cmd.run() })
	}
	wg.Wait()
	for r := range n {
		out := outs[r].String()
		if errs[r] != nil || !strings.Contains(out, fmt.Sprintf("PASS rank %d of %d", r, n)) {
			t.Errorf("rank %d of %d (%s): %v\n%s", r, n, opts, errs[r], out)
		}
	}
}

// rankCmd is one rank's command: set up through the exec.Cmd, run
// through run (which may enter a network namespace to start it).
type rankCmd struct {
	*exec.Cmd
	run func() error
}

// local runs a rank in this network namespace.
func local(ctx context.Context, _ int, args ...string) rankCmd {
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	return rankCmd{Cmd: c, run: c.Run}
}

// TestEndToEndLoopback: 1 to 4 processes on 127.0.0.1 over tcp, every
// function of onet.h checked exactly, error paths included.
func TestEndToEndLoopback(t *testing.T) {
	for n := 1; n <= 4; n++ {
		t.Run(fmt.Sprintf("%d ranks", n), func(t *testing.T) {
			runRanks(t, n, "transport=tcp", "127.0.0.1", freePort(t), local)
		})
	}
	t.Run("shm", func(t *testing.T) {
		runRanks(t, 3, "transport=tcp;shm=1", "127.0.0.1", freePort(t), local)
	})
}

// TestEndToEndLab: one process per host of a 4-host lab, started inside
// the host's network namespace, over tcp and over rocev2 (the software
// RoCEv2 engine on AF_XDP, kernel UDP where AF_XDP is unavailable).
func TestEndToEndLab(t *testing.T) {
	testutil.RequireRoot(t)
	buildCheck(t)
	testutil.Exclusive(t)
	const n = 4
	l := labtest.New(t, lab.Options{Hosts: n})
	master := l.Hosts[0].Addr.Addr().String()
	for i, opts := range []string{"transport=tcp", "transport=rocev2"} {
		t.Run(opts, func(t *testing.T) {
			runRanks(t, n, opts, master, 29500+i, func(ctx context.Context, r int, args ...string) rankCmd {
				c := l.Hosts[r].Command(ctx, args[0], args[1:]...)
				return rankCmd{Cmd: c.Cmd, run: c.Run} // lab.Cmd.Run starts it in the host's namespace
			})
		})
	}
}
