package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/internal/testutil"
)

// TestBenchCLICollJSON runs allreduce over 3 lab hosts and both kinds of
// transport with small sizes and reads --json back.
func TestBenchCLICollJSON(t *testing.T) {
	testutil.RequireRoot(t)
	out, err := runBench(t, "allreduce", "--hosts", "3", "-b", "8", "-e", "64K", "-f", "32", "-n", "3", "-w", "1",
		"-d", "int32", "-o", "max", "--transport", "af_xdp,tcp", "--json")
	if err != nil {
		t.Fatalf("bench allreduce: %v", err)
	}
	var rep collReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench allreduce --json: %v\n%s", err, out)
	}
	if rep.Test != "allreduce" || rep.Ranks != 3 || len(rep.Headers) != 2 || len(rep.Rows) != 6 {
		t.Fatalf("report %+v: want allreduce over 3 ranks, 2 transports of 3 rows (8 B, 256 B, 8 KiB)", rep)
	}
	for i, r := range rep.Rows {
		wantT := []string{"rocev2/af_xdp", "tcp"}[i/3]
		wantSize := []int64{8, 256, 8192}[i%3]
		if r.Transport != wantT || r.Size != wantSize || r.Count != wantSize/4 || r.Type != "int32" || r.Redop != "max" ||
			r.Root != -1 || r.Ranks != 3 || r.Iters != 3 || r.Peer {
			t.Errorf("row %d %+v: want %s %d B int32 max", i, r, wantT, wantSize)
		}
		for _, tm := range []*bench.CollTiming{r.OutOfPlace, r.InPlace} {
			if tm == nil || tm.TimeUs <= 0 || tm.Wrong != 0 || tm.BusBW <= 0 {
				t.Errorf("row %d: timing %+v", i, tm)
			}
		}
	}
	if h := rep.Headers[0]; len(h.Ranks) != 3 || h.Ranks[2].Host != "h2" || h.Ranks[0].Transport != "rocev2/af_xdp" {
		t.Errorf("header %+v", h)
	}
}

// TestBenchCLICollText: nccl-tests' layout on stdout for a data-movement
// collective over TCP.
func TestBenchCLICollText(t *testing.T) {
	testutil.RequireRoot(t)
	out, err := runBench(t, "alltoall", "--hosts", "2", "-b", "1K", "-e", "4K", "-f", "4", "-n", "2", "--transport", "tcp")
	if err != nil {
		t.Fatalf("bench alltoall: %v", err)
	}
	for _, want := range []string{
		"# onetdp alltoall: nThread 1 nGpus 1 minBytes 1024 maxBytes 4096 step: 4(factor) warmup iters: 5 iters: 2 agg iters: 1 validation: 1 graph: 0\n",
		"#  Rank  1 Group  0 Pid ",
		"#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong\n",
		"\n        1024           128     float    none      -1  ",
		"\n        4096           512     float    none      -1  ",
		"# Out of bounds values : 0 OK\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestBenchCLICollRepeat: --repeat runs every transport in rounds and
// reports each row's median, every round's rows beside them (--json), and
// prints only the median tables.
func TestBenchCLICollRepeat(t *testing.T) {
	testutil.RequireRoot(t)
	out, err := runBench(t, "allgather", "--hosts", "2", "-b", "1K", "-e", "4K", "-f", "4", "-n", "2", "-w", "1",
		"--transport", "tcp", "--repeat", "2", "--json")
	if err != nil {
		t.Fatalf("bench allgather --repeat 2: %v", err)
	}
	var rep collReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if rep.Rounds != 2 || len(rep.RoundRows) != 2 || len(rep.Rows) != 2 || len(rep.Headers) != 1 {
		t.Fatalf("report %+v: want 2 rounds of 2 rows, 2 median rows, 1 header", rep)
	}
	for i, r := range rep.Rows {
		a, b := rep.RoundRows[0][i], rep.RoundRows[1][i]
		if r.Size != a.Size || r.Size != b.Size || r.Transport != "tcp" {
			t.Fatalf("row %d (%s %d B) against rounds' %d and %d B", i, r.Transport, r.Size, a.Size, b.Size)
		}
		// The median of two is their mean.
		want := (a.OutOfPlace.TimeUs + b.OutOfPlace.TimeUs) / 2
		if d := r.OutOfPlace.TimeUs - want; d > 1e-6 || d < -1e-6 || r.OutOfPlace.Wrong != 0 {
			t.Errorf("row %d out of place %+v, want %.3f us (rounds %.3f, %.3f), 0 wrong", i, r.OutOfPlace, want,
				a.OutOfPlace.TimeUs, b.OutOfPlace.TimeUs)
		}
	}
	out, err = runBench(t, "allgather", "--hosts", "2", "-b", "1K", "-e", "1K", "-n", "2", "-w", "1", "--transport", "tcp", "--repeat", "2")
	if err != nil {
		t.Fatalf("bench allgather --repeat 2: %v", err)
	}
	if n := strings.Count(out, "# onetdp allgather"); n != 1 || !strings.Contains(out, "# onetdp allgather (tcp), median of 2 rounds: ") {
		t.Errorf("want one table, the medians':\n%s", out)
	}
}

func TestBenchCLICollRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"allreduce", "--transport", "carrier-pigeon"},
		{"allreduce", "-b", "1M", "-e", "1K"},
		{"allreduce", "-d", "float128"},
		{"allreduce", "-o", "xor"},
		{"allreduce", "-a", "7"},
		{"broadcast", "-r", "9"},
		{"allgather", "--algo", "allgather"},
		{"allreduce", "-e", "lots"},
		{"allreduce", "--path-mtu", "1500"},
		{"allreduce", "--repeat", "0"},
	} {
		if _, err := runBench(t, args...); err == nil {
			t.Errorf("bench %v: no error", args)
		}
	}
}

func TestParseNCCLSize(t *testing.T) {
	for in, want := range map[string]int64{"8": 8, "64M": 64 << 20, "1k": 1024, "1.5K": 1536, "2G": 2 << 30} {
		if got, err := parseNCCLSize(in); err != nil || got != want {
			t.Errorf("parseNCCLSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "M", "-1", "1T", "x"} {
		if _, err := parseNCCLSize(bad); err == nil {
			t.Errorf("parseNCCLSize(%q): no error", bad)
		}
	}
}

// TestBenchCLICollProcs: --procs runs every rank as its own process (here
// the test binary's launched-rank helper) in its lab host and reports
// rank 0's rows under <transport>/procs.
func TestBenchCLICollProcs(t *testing.T) {
	testutil.RequireRoot(t)
	old := procsCommand
	defer func() { procsCommand = old }()
	procsCommand = func(args []string) (string, []string, []string, error) {
		return os.Args[0], []string{"-test.run=^TestBenchCollLaunchedHelper$"},
			[]string{"ONETDP_BENCH_ARGS=" + strings.Join(args[1:], "\x1f"), "ONET_TRANSPORT=", "ONET_ALGO="}, nil
	}
	out, err := runBench(t, "allreduce", "--hosts", "3", "-b", "8", "-e", "64K", "-f", "32", "-n", "3", "-w", "1",
		"-d", "int32", "-o", "max", "--transport", "tcp,af_xdp", "--procs", "--json")
	if err != nil {
		t.Fatalf("bench allreduce --procs: %v", err)
	}
	var rep collReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench allreduce --procs --json: %v\n%s", err, out)
	}
	if rep.Ranks != 3 || len(rep.Headers) != 2 || len(rep.Rows) != 6 {
		t.Fatalf("report %+v: want 3 ranks, 2 transports of 3 rows", rep)
	}
	for i, r := range rep.Rows {
		wantT := []string{"tcp/procs", "rocev2/af_xdp/procs"}[i/3]
		wantSize := []int64{8, 256, 8192}[i%3]
		if r.Transport != wantT || r.Size != wantSize || r.Type != "int32" || r.Redop != "max" || r.Ranks != 3 || r.Iters != 3 {
			t.Errorf("row %d %+v: want %s %d B int32 max over 3 ranks", i, r, wantT, wantSize)
		}
		for _, tm := range []*bench.CollTiming{r.OutOfPlace, r.InPlace} {
			if tm == nil || tm.TimeUs <= 0 || tm.Wrong != 0 {
				t.Errorf("row %d: timing %+v", i, tm)
			}
		}
	}
	// Each rank was a process of its own.
	h := rep.Headers[1]
	if len(h.Ranks) != 3 || h.Ranks[0].Pid == h.Ranks[1].Pid || h.Ranks[0].Pid == os.Getpid() || h.Ranks[0].Transport != "rocev2/af_xdp" {
		t.Errorf("header %+v: want 3 ranks in 3 other processes over rocev2/af_xdp", h)
	}
}
