package collpeers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/lab"
)

// MPITools are the programs the Open MPI peer needs: the compiler and
// launcher (openmpi-bin, libopenmpi-dev) and util-linux's nsenter and
// unshare for the rsh agent.
var MPITools = []string{"mpicc", "mpirun", "nsenter", "unshare"}

// RunMPI compiles the embedded MPI program with mpicc and runs it with
// mpirun from h0, one rank per lab host. mpirun reaches the other hosts
// through an rsh agent script that enters the host's network namespace
// (nsenter --net) and a fresh UTS namespace named after the host's
// address, so that every Open MPI daemon reports the node name mpirun
// expects (the lab hosts share the machine's host name otherwise, and
// mpirun then refuses the daemons). Traffic: btl tcp,self on eth0.
func RunMPI(ctx context.Context, o Options) ([]bench.CollResult, error) {
	hosts, err := o.check()
	if err != nil {
		return nil, err
	}
	for _, t := range MPITools {
		if _, err := exec.LookPath(t); err != nil {
			return nil, fmt.Errorf("%w: open mpi: %s not found (apt-get install openmpi-bin libopenmpi-dev util-linux): %w", ErrUnavailable, t, err)
		}
	}
	ctx, cancel := runWithTimeout(ctx, o.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "onetdp-mpi-")
	if err != nil {
		return nil, fmt.Errorf("open mpi: %w", err)
	}
	defer os.RemoveAll(dir)
	prog, err := buildMPI(ctx, dir)
	if err != nil {
		return nil, err
	}
	hostfile, agent, err := writeLaunchFiles(dir, hosts)
	if err != nil {
		return nil, err
	}
	n := len(hosts)
	args := []string{"--allow-run-as-root", "--hostfile", hostfile, "-np", strconv.Itoa(n), "--map-by", "node",
		"--mca", "plm", "rsh", "--mca", "plm_rsh_agent", agent,
		"--mca", "pml", "ob1", "--mca", "btl", "tcp,self",
		"--mca", "btl_tcp_if_include", "eth0", "--mca", "oob_tcp_if_include", "eth0",
		"--bind-to", "none"}
	note := ""
	if n > runtime.NumCPU() {
		// More ranks than cores: ranks that spin in MPI's progress loop
		// take the core from the rank they wait for (8 B allreduce over 3
		// ranks on 2 cores: ~4 ms spinning, ~60 us yielding).
		args = append(args, "--mca", "mpi_yield_when_idle", "1")
		note = ", mpi_yield_when_idle 1 (more ranks than cores)"
	}
	args = append(args, prog, o.Coll.Op.String(), strconv.Itoa(max(o.Coll.Warmup, 0)))
	args = append(args, specs(o.Coll, n)...)
	o.progressf("peers: open mpi %v, %d ranks (one per lab host, btl tcp%s)...\n", o.Coll.Op, n, note)
	cmd := hosts[0].Command(ctx, "mpirun", args...)
	cmd.Env = launcherEnv(os.Environ())
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("open mpi: mpirun: %w: %s %s", err, tail(out, 2000), tail(ee.Stderr, 2000))
		}
		return nil, fmt.Errorf("open mpi: mpirun: %w", err)
	}
	rows, err := ParseRows(out, o.Coll.Op, MPIName, n)
	if err != nil {
		return nil, fmt.Errorf("open mpi: %w (output: %s)", err, tail(out, 2000))
	}
	return rows, nil
}

// launcherEnv is env without the Open MPI launcher settings a machine may
// carry (OMPI_MCA_plm=isolated launches on the local node only, and the
// lab's ranks need the rsh agent): the command line's --mca plm rsh alone
// does not win over them.
func launcherEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "OMPI_MCA_plm") {
			out = append(out, kv)
		}
	}
	return out
}

func buildMPI(ctx context.Context, dir string) (string, error) {
	src := filepath.Join(dir, "mpi_coll.c")
	if err := os.WriteFile(src, mpiSource, 0o644); err != nil {
		return "", fmt.Errorf("open mpi: %w", err)
	}
	prog := filepath.Join(dir, "mpi_coll")
	if out, err := exec.CommandContext(ctx, "mpicc", "-O2", "-o", prog, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: open mpi: mpicc: %w: %s", ErrUnavailable, err, tail(out, 2000))
	}
	return prog, nil
}

// writeLaunchFiles writes the hostfile (one slot per lab host address)
// and the rsh agent mapping each address to its namespace.
func writeLaunchFiles(dir string, hosts []*lab.Host) (hostfile, agent string, err error) {
	var hf, cases strings.Builder
	for _, h := range hosts {
		ip := h.Addr.Addr().String()
		fmt.Fprintf(&hf, "%s slots=1\n", ip)
		fmt.Fprintf(&cases, "%s) ns=%s ;;\n", ip, shellQuote(h.Netns))
	}
	script := `#!/bin/sh
# onetdp lab rsh agent for mpirun: runs the command "on" a lab host by
# entering its network namespace and a UTS namespace named after it.
host=$1
shift
case "$host" in
` + cases.String() + `*) echo "onetdp rsh agent: $host is no lab host" >&2; exit 255 ;;
esac
exec nsenter --net="$ns" unshare --uts /bin/sh -c "hostname $host && exec $*"
`
	hostfile = filepath.Join(dir, "hostfile")
	agent = filepath.Join(dir, "lab-rsh")
	if err := os.WriteFile(hostfile, []byte(hf.String()), 0o644); err != nil {
		return "", "", fmt.Errorf("open mpi: %w", err)
	}
	if err := os.WriteFile(agent, []byte(script), 0o755); err != nil {
		return "", "", fmt.Errorf("open mpi: %w", err)
	}
	return hostfile, agent, nil
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
