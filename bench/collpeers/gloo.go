package collpeers

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/lab"
)

// GlooPython is the interpreter with torch: $ONET_GLOO_PYTHON, else the
// system one (Debian's python3-torch), not whatever python3 comes first on
// PATH.
var GlooPython = cmp.Or(os.Getenv("ONET_GLOO_PYTHON"), "/usr/bin/python3")

// RunGloo runs the embedded torch.distributed script on every lab host
// (rank i on h<i>, rendezvous at h0's address), gloo backend over eth0.
func RunGloo(ctx context.Context, o Options) ([]bench.CollResult, error) {
	hosts, err := o.check()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(GlooPython); err != nil {
		return nil, fmt.Errorf("%w: gloo: %s: %w (apt-get install python3-torch)", ErrUnavailable, GlooPython, err)
	}
	ctx, cancel := runWithTimeout(ctx, o.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "onetdp-gloo-")
	if err != nil {
		return nil, fmt.Errorf("gloo: %w", err)
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "gloo_coll.py")
	if err := os.WriteFile(script, glooSource, 0o644); err != nil {
		return nil, fmt.Errorf("gloo: %w", err)
	}
	n := len(hosts)
	// Any free port works inside the lab's namespaces; a random one keeps
	// a rerun clear of the last run's sockets in TIME_WAIT.
	port := strconv.Itoa(20000 + rand.IntN(10000))
	args := append([]string{script, o.Coll.Op.String(), strconv.Itoa(max(o.Coll.Warmup, 0))}, specs(o.Coll, n)...)
	o.progressf("peers: gloo %v, %d ranks (torch.distributed, one process per lab host)...\n", o.Coll.Op, n)
	job, err := lab.RunJob(ctx, hosts, func(ctx context.Context, r int, h *lab.Host) *lab.Cmd {
		cmd := h.Command(ctx, GlooPython, args...)
		cmd.Env = append(os.Environ(), "RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(n),
			"MASTER_ADDR="+hosts[0].Addr.Addr().String(), "MASTER_PORT="+port,
			"GLOO_SOCKET_IFNAME="+h.Ifname, "OMP_NUM_THREADS=1")
		return cmd
	})
	if err != nil {
		return nil, fmt.Errorf("gloo: %w", err)
	}
	for r, e := range job.Errs {
		if e != nil {
			job.Errs[r] = fmt.Errorf("rank %d on %s: %w: %s", r, hosts[r].Name, e, tail(job.Stderr[r].Bytes(), 1500))
		}
	}
	if err := errors.Join(job.Errs...); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && bytes.Contains(job.Stderr[0].Bytes(), []byte("No module named 'torch'")) {
			return nil, fmt.Errorf("%w: gloo: %s has no torch: %w", ErrUnavailable, GlooPython, err)
		}
		return nil, fmt.Errorf("gloo: %w", err)
	}
	rows, err := ParseRows(job.Stdout[0].Bytes(), o.Coll.Op, GlooName, n)
	if err != nil {
		return nil, fmt.Errorf("gloo: %w (output: %s)", err, tail(job.Stdout[0].Bytes(), 2000))
	}
	return rows, nil
}
