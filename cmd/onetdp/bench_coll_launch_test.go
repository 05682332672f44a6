package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opennetworks/onetdp/bench"
)

// TestBenchCollLaunchedHelper is not a test: TestBenchCollLaunched runs
// the test binary with ONETDP_BENCH_ARGS set to make this process one
// rank of `onetdp bench` under a launcher.
func TestBenchCollLaunchedHelper(t *testing.T) {
	args := os.Getenv("ONETDP_BENCH_ARGS")
	if args == "" {
		t.Skip("helper process for TestBenchCollLaunched")
	}
	c := newBenchCmd()
	c.SetArgs(strings.Split(args, "\x1f"))
	c.SilenceUsage = true
	if err := c.Execute(); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// launchRanks runs n ranks of `onetdp bench <args>` as torchrun would
// start them on loopback and returns each rank's stdout.
func launchRanks(t *testing.T, n int, args ...string) []string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	outs := make([]bytes.Buffer, n)
	errOuts := make([]bytes.Buffer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBenchCollLaunchedHelper$")
		cmd.Env = append(os.Environ(), "ONETDP_BENCH_ARGS="+strings.Join(args, "\x1f"), "RANK="+strconv.Itoa(r),
			"WORLD_SIZE="+strconv.Itoa(n), "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port), "ONET_TRANSPORT=", "ONET_ALGO=")
		cmd.Stdout, cmd.Stderr = &outs[r], &errOuts[r]
		wg.Go(func() { errs[r] = cmd.Run() })
	}
	wg.Wait()
	res := make([]string, n)
	for r := range n {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v\nstdout:\n%s\nstderr:\n%s", r, errs[r], outs[r].String(), errOuts[r].String())
		}
		res[r] = outs[r].String()
	}
	return res
}

// TestBenchCollLaunched: two processes on loopback, each one rank, rank 0
// prints the rows, every element checked.
func TestBenchCollLaunched(t *testing.T) {
	outs := launchRanks(t, 2, "allreduce", "-b", "8", "-e", "64K", "-f", "32", "-n", "3", "-w", "1", "-d", "bfloat16", "-o", "avg", "--json")
	if outs[1] != "" {
		t.Errorf("rank 1 printed %q", outs[1])
	}
	var rep collReport
	if err := json.Unmarshal([]byte(outs[0]), &rep); err != nil {
		t.Fatalf("%v\n%s", err, outs[0])
	}
	if rep.Test != "allreduce" || rep.Ranks != 2 || len(rep.Headers) != 1 || len(rep.Rows) != 3 {
		t.Fatalf("report %+v", rep)
	}
	for i, r := range rep.Rows {
		if want := []int64{8, 256, 8192}[i]; r.Size != want || r.Count != want/2 || r.Type != "bfloat16" || r.Redop != "avg" ||
			r.Transport != "tcp" || r.Ranks != 2 || r.Iters != 3 {
			t.Errorf("row %d %+v", i, r)
		}
		for _, tm := range []*bench.CollTiming{r.OutOfPlace, r.InPlace} {
			if tm == nil || tm.TimeUs <= 0 || tm.Wrong != 0 {
				t.Errorf("row %d timing %+v", i, tm)
			}
		}
	}
	if h := rep.Headers[0]; len(h.Ranks) != 2 || h.Ranks[1].Rank != 1 || h.Ranks[1].Addr != "127.0.0.1" || h.Ranks[0].Transport != "tcp" {
		t.Errorf("header %+v", h)
	}
	for _, op := range []string{"reducescatter", "alltoall", "allgather", "broadcast"} {
		outs := launchRanks(t, 2, op, "-b", "1K", "-e", "4K", "-f", "4", "-n", "2", "-w", "1", "-d", "int32", "-r", "1", "--transport", "tcp")
		for _, want := range []string{"# onetdp " + op + ": ", "#  Rank  1 Group  0 Pid ", "\n        1024 ", "\n        4096 ",
			"# Out of bounds values : 0 OK\n"} {
			if !strings.Contains(outs[0], want) {
				t.Errorf("%s: output lacks %q:\n%s", op, want, outs[0])
			}
		}
	}
}

// TestLaunchedEnvAndTransports: launcher detection and the transports a
// launched run measures.
func TestLaunchedEnvAndTransports(t *testing.T) {
	if !launchedEnv(func(k string) (string, bool) {
		return map[string]string{"OMPI_COMM_WORLD_RANK": "3"}[k], k == "OMPI_COMM_WORLD_RANK"
	}) {
		t.Error("mpirun not detected")
	}
	if launchedEnv(func(k string) (string, bool) { return map[string]string{"SLURM_PROCID": "0"}[k], k == "SLURM_PROCID" }) {
		t.Error("a Slurm allocation alone counts as launched")
	}
	f := &collBenchFlags{transports: []string{"rocev2", "adaptive"}}
	ts, err := launchedTransports(f, true, nil)
	if err != nil || fmt.Sprint(ts) != "[rocev2/af_xdp adaptive]" {
		t.Errorf("transports %v %v", ts, err)
	}
	ts, err = launchedTransports(f, false, func(string) (string, bool) { return "rocev2/udp", true })
	if err != nil || fmt.Sprint(ts) != "[rocev2/udp]" {
		t.Errorf("ONET_TRANSPORT: %v %v", ts, err)
	}
	if _, err := launchedTransports(f, false, func(string) (string, bool) { return "warp", true }); err == nil {
		t.Error("ONET_TRANSPORT=warp accepted")
	}
}
