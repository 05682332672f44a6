package rendezvous

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// DefaultMasterPort is the store's port when the launcher names none
// (torch.distributed's default).
const DefaultMasterPort = 29500

// Errors Detect returns.
var (
	// ErrNoLauncher: no launcher's variables are set (a plain process).
	ErrNoLauncher = errors.New("rendezvous: no launcher detected")
	// ErrBadLaunch: the launcher's variables are missing, not numbers or
	// inconsistent (rank >= size).
	ErrBadLaunch = errors.New("rendezvous: bad launcher environment")
)

// Launch is what a launcher says about this process. A value type; copy
// it freely.
type Launch struct {
	// Rank is this process's rank, 0..Size-1.
	Rank int
	// Size is the number of ranks in the job.
	Size int
	// LocalRank and LocalSize are the rank and count on this node; -1
	// when the launcher does not say.
	LocalRank, LocalSize int
	// MasterAddr and MasterPort are where rank 0 serves the TCP store.
	MasterAddr string
	MasterPort int
	// Source names the launcher: "onet", "torchrun", "openmpi", "slurm".
	Source string
}

// MasterHostPort is MasterAddr:MasterPort, ready to dial.
func (l Launch) MasterHostPort() string {
	return net.JoinHostPort(l.MasterAddr, strconv.Itoa(l.MasterPort))
}

// Lookup reads one environment variable, like os.LookupEnv.
type Lookup func(key string) (string, bool)

// DetectEnv is Detect over the process environment.
func DetectEnv() (Launch, error) { return Detect(os.LookupEnv) }

// Detect reads the launch from the environment through lookup, trying in
// order ONET_RANK/ONET_SIZE, torchrun (RANK, WORLD_SIZE), Open MPI
// (OMPI_COMM_WORLD_RANK/SIZE) and Slurm (SLURM_PROCID, SLURM_NTASKS): a
// launcher started under another (torchrun or mpirun inside an srun
// allocation) wins over the outer one. The master address comes from
// ONET_MASTER ("host" or "host:port"), then MASTER_ADDR/MASTER_PORT, then
// for Slurm the first node of SLURM_JOB_NODELIST; a single-rank job
// defaults to 127.0.0.1. The port defaults to DefaultMasterPort.
func Detect(lookup Lookup) (Launch, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	var l Launch
	var err error
	switch {
	case get("ONET_RANK") != "" || get("ONET_SIZE") != "":
		l, err = detectVars("onet", get, "ONET_RANK", "ONET_SIZE", "ONET_LOCAL_RANK", "ONET_LOCAL_SIZE")
	case get("RANK") != "" || get("WORLD_SIZE") != "":
		l, err = detectVars("torchrun", get, "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
	case get("OMPI_COMM_WORLD_RANK") != "" || get("OMPI_COMM_WORLD_SIZE") != "":
		l, err = detectVars("openmpi", get, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE")
	case get("SLURM_PROCID") != "" || get("SLURM_NTASKS") != "":
		l, err = detectSlurm(get)
	default:
		return Launch{}, fmt.Errorf("detect launch: none of ONET_RANK, RANK, OMPI_COMM_WORLD_RANK, SLURM_PROCID is set: %w", ErrNoLauncher)
	}
	if err != nil {
		return Launch{}, err
	}
	if err := detectMaster(&l, get); err != nil {
		return Launch{}, err
	}
	return l, nil
}

// atoi parses a non-negative decimal variable.
func atoi(source, name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("detect launch (%s): %s=%q is not a non-negative integer: %w", source, name, v, ErrBadLaunch)
	}
	return n, nil
}

func detectVars(source string, get func(string) string, rankVar, sizeVar, localRankVar, localSizeVar string) (Launch, error) {
	l := Launch{Source: source, LocalRank: -1, LocalSize: -1}
	for _, f := range []struct {
		name     string
		dst      *int
		required bool
	}{{rankVar, &l.Rank, true}, {sizeVar, &l.Size, true}, {localRankVar, &l.LocalRank, false}, {localSizeVar, &l.LocalSize, false}} {
		v := get(f.name)
		if v == "" {
			if f.required {
				return Launch{}, fmt.Errorf("detect launch (%s): %s is not set: %w", source, f.name, ErrBadLaunch)
			}
			continue
		}
		n, err := atoi(source, f.name, v)
		if err != nil {
			return Launch{}, err
		}
		*f.dst = n
	}
	return l, l.validate(rankVar, sizeVar)
}

func (l Launch) validate(rankVar, sizeVar string) error {
	if l.Size < 1 || l.Rank >= l.Size {
		return fmt.Errorf("detect launch (%s): %s=%d with %s=%d: want 0 <= rank < size: %w", l.Source, rankVar, l.Rank, sizeVar, l.Size, ErrBadLaunch)
	}
	if l.LocalSize >= 0 && l.LocalRank >= 0 && l.LocalRank >= l.LocalSize {
		return fmt.Errorf("detect launch (%s): local rank %d >= local size %d: %w", l.Source, l.LocalRank, l.LocalSize, ErrBadLaunch)
	}
	if l.LocalSize > l.Size {
		return fmt.Errorf("detect launch (%s): local size %d > size %d: %w", l.Source, l.LocalSize, l.Size, ErrBadLaunch)
	}
	return nil
}

func detectSlurm(get func(string) string) (Launch, error) {
	l, err := detectVars("slurm", get, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "")
	if err != nil {
		return Launch{}, err
	}
	if v := get("SLURM_NTASKS_PER_NODE"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			l.LocalSize = n
		}
	}
	if l.LocalSize < 0 {
		node := 0
		if v := get("SLURM_NODEID"); v != "" {
			if node, err = atoi("slurm", "SLURM_NODEID", v); err != nil {
				return Launch{}, err
			}
		}
		if v := get("SLURM_STEP_TASKS_PER_NODE"); v != "" {
			l.LocalSize, err = tasksOnNode(v, node)
		} else if v := get("SLURM_TASKS_PER_NODE"); v != "" {
			l.LocalSize, err = tasksOnNode(v, node)
		}
		if err != nil {
			return Launch{}, err
		}
	}
	return l, l.validate("SLURM_PROCID", "SLURM_NTASKS")
}

// tasksOnNode reads Slurm's compressed tasks-per-node list ("2(x3),1")
// for node index node.
func tasksOnNode(list string, node int) (int, error) {
	i := 0
	for _, part := range strings.Split(list, ",") {
		count, rep := part, 1
		if j := strings.Index(part, "(x"); j >= 0 && strings.HasSuffix(part, ")") {
			count = part[:j]
			r, err := strconv.Atoi(part[j+2 : len(part)-1])
			if err != nil || r < 1 {
				return 0, fmt.Errorf("detect launch (slurm): tasks per node %q: bad repeat in %q: %w", list, part, ErrBadLaunch)
			}
			rep = r
		}
		n, err := strconv.Atoi(count)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("detect launch (slurm): tasks per node %q: bad count %q: %w", list, part, ErrBadLaunch)
		}
		if node < i+rep {
			return n, nil
		}
		i += rep
	}
	return 0, fmt.Errorf("detect launch (slurm): tasks per node %q has no node %d: %w", list, node, ErrBadLaunch)
}

// firstHost returns the first host of a Slurm hostlist ("gpu[07-09,12],cpu1"
// gives "gpu07").
func firstHost(list string) string {
	list = strings.TrimSpace(list)
	i := strings.IndexAny(list, ",[")
	if i < 0 {
		return list
	}
	if list[i] == ',' {
		return list[:i]
	}
	prefix, rest := list[:i], list[i+1:]
	end := strings.IndexAny(rest, ",-]")
	if end < 0 {
		return ""
	}
	return prefix + rest[:end]
}

func detectMaster(l *Launch, get func(string) string) error {
	l.MasterPort = DefaultMasterPort
	addr, port := get("MASTER_ADDR"), get("MASTER_PORT")
	if m := get("ONET_MASTER"); m != "" {
		addr, port = m, ""
		if h, p, err := net.SplitHostPort(m); err == nil {
			addr, port = h, p
		}
	}
	if addr == "" && l.Source == "slurm" {
		addr = firstHost(get("SLURM_JOB_NODELIST"))
		if addr == "" {
			addr = firstHost(get("SLURM_NODELIST"))
		}
	}
	if addr == "" {
		if l.Size > 1 {
			return fmt.Errorf("detect launch (%s): %d ranks but no master address: set MASTER_ADDR or ONET_MASTER: %w", l.Source, l.Size, ErrBadLaunch)
		}
		addr = "127.0.0.1"
	}
	l.MasterAddr = addr
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("detect launch (%s): master port %q is not 1..65535: %w", l.Source, port, ErrBadLaunch)
		}
		l.MasterPort = p
	}
	return nil
}
