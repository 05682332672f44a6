package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/lab"
)

// procsSuffix names the rows of ranks that ran as processes (--procs).
const procsSuffix = "/procs"

// procsSkip are the flags a --procs rank does not get: they choose the lab,
// the transports and the report, which the parent owns.
var procsSkip = map[string]bool{"hosts": true, "transport": true, "peers": true, "json": true, "lab": true,
	"link-mtu": true, "procs": true, "launcher": true, "repeat": true}

// procsArgs lists the flags the user set that every --procs rank repeats.
func procsArgs(fs *pflag.FlagSet) []string {
	var args []string
	fs.Visit(func(fl *pflag.Flag) {
		if !procsSkip[fl.Name] {
			args = append(args, "--"+fl.Name+"="+fl.Value.String())
		}
	})
	return args
}

// procsCommand is how a --procs rank is started: this program with args
// (tests start their own binary's helper instead). env is added to the
// rank's environment.
var procsCommand = func(args []string) (name string, argv, env []string, err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, nil, fmt.Errorf("find this program: %w", err)
	}
	return exe, args, nil, nil
}

// runCollProcs runs transport t with one rank per process, as a launcher
// starts them: this binary, `bench <op> --launcher --json`, in each host's
// namespace (rank r on hosts[r], the store at hosts[0]), and returns rank
// 0's header and rows, renamed t+procsSuffix. The peers run the same way,
// so the side-by-side view compares like with like.
func runCollProcs(ctx context.Context, progress io.Writer, hosts []*lab.Host, t string, f *collBenchFlags) (bench.CollHeader, []bench.CollResult, error) {
	n := len(hosts)
	fmt.Fprintf(progress, "bench %v: %s, %d ranks, one process each...\n", f.o.Op, t, n)
	exe, argv, env, err := procsCommand(append([]string{"bench", f.o.Op.String(), "--launcher", "--transport", t, "--json"}, f.procArgs...))
	if err != nil {
		return bench.CollHeader{}, nil, fmt.Errorf("procs: %w", err)
	}
	port := strconv.Itoa(20000 + rand.IntN(10000)) // clear of a last run's sockets in TIME_WAIT
	job, err := lab.RunJob(ctx, hosts, func(ctx context.Context, r int, h *lab.Host) *lab.Cmd {
		cmd := h.Command(ctx, exe, argv...)
		cmd.Env = append(append(os.Environ(), env...), "RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(n),
			"MASTER_ADDR="+hosts[0].Addr.Addr().String(), "MASTER_PORT="+port)
		return cmd
	})
	if err != nil {
		return bench.CollHeader{}, nil, fmt.Errorf("procs: %w", err)
	}
	for r, e := range job.Errs {
		if e != nil {
			job.Errs[r] = fmt.Errorf("rank %d on %s: %w: %s", r, hosts[r].Name, e, lastLines(job.Stderr[r].String(), 6))
		}
	}
	if err := errors.Join(job.Errs...); err != nil {
		return bench.CollHeader{}, nil, fmt.Errorf("procs: %w", err)
	}
	var rep collReport
	if err := json.Unmarshal(job.Stdout[0].Bytes(), &rep); err != nil || len(rep.Headers) != 1 {
		return bench.CollHeader{}, nil, fmt.Errorf("procs: rank 0's report (%d headers): %v: %s", len(rep.Headers), err, lastLines(job.Stdout[0].String(), 6))
	}
	for i := range rep.Rows {
		rep.Rows[i].Transport = t + procsSuffix
	}
	return rep.Headers[0], rep.Rows, nil
}

// lastLines returns the last n lines of s, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
