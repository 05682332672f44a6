package collective

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// DefaultTimeout bounds an operation whose context has no deadline.
const DefaultTimeout = 5 * time.Minute

// DefaultSegmentBytes is the pipelining unit of the segmented algorithms.
const DefaultSegmentBytes = 256 << 10

// Options configure a Communicator. The caller fills them before
// NewCommunicator and must not change them after.
type Options struct {
	// Timeout bounds every operation whose context carries no deadline;
	// 0 means DefaultTimeout. A context deadline overrides it per call.
	Timeout time.Duration
	// Algorithm forces an algorithm per operation by name, e.g.
	// {OpAllReduce: "ring"}. It wins over the ONET_ALGO environment
	// variable (same syntax as ParseAlgorithms). Every rank must force the
	// same algorithms.
	Algorithm map[OpKind]string
	// IgnoreEnv ignores ONET_ALGO.
	IgnoreEnv bool
	// CostModel, when set, is used as is and skips the start-up
	// calibration (every rank must pass the same values).
	CostModel *CostModel
	// SegmentBytes is the pipelining unit of the segmented algorithms
	// (ring, tree); 0 means DefaultSegmentBytes.
	SegmentBytes int
	// Debug, when set, receives one line per (operation, size bucket)
	// algorithm decision with the predicted costs, and the calibration.
	Debug io.Writer
}

// EnvAlgorithm is the environment variable that forces algorithms:
// ONET_ALGO=allreduce=ring,allgather=bruck.
const EnvAlgorithm = "ONET_ALGO"

// ParseAlgorithms parses "op=algorithm,op=algorithm" (ONET_ALGO's syntax).
func ParseAlgorithms(s string) (map[OpKind]string, error) {
	m := map[OpKind]string{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("algorithm override %q: want op=algorithm: %w", f, ErrInvalidArgument)
		}
		op, err := ParseOpKind(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("algorithm override %q: %w", f, err)
		}
		m[op] = strings.TrimSpace(v)
	}
	return m, nil
}

// forcedAlgorithms merges ONET_ALGO and opts.Algorithm and resolves names.
func forcedAlgorithms(opts *Options) ([numOpKinds]*algorithm, error) {
	var forced [numOpKinds]*algorithm
	want := map[OpKind]string{}
	if !opts.IgnoreEnv {
		if s := os.Getenv(EnvAlgorithm); s != "" {
			m, err := ParseAlgorithms(s)
			if err != nil {
				return forced, fmt.Errorf("%s: %w", EnvAlgorithm, err)
			}
			for k, v := range m {
				want[k] = v
			}
		}
	}
	for k, v := range opts.Algorithm {
		want[k] = v
	}
	for k, v := range want {
		if !k.Valid() {
			return forced, fmt.Errorf("algorithm override for %v: %w", k, ErrInvalidArgument)
		}
		if v == "" || v == "auto" {
			continue
		}
		a := lookupAlgorithm(k, v)
		if a == nil {
			return forced, fmt.Errorf("%v algorithm %q (have %s): %w", k, v, strings.Join(AlgorithmNames(k), ", "), ErrInvalidArgument)
		}
		forced[k] = a
	}
	return forced, nil
}

// AlgorithmNames lists the algorithms registered for op, sorted.
func AlgorithmNames(op OpKind) []string {
	if !op.Valid() {
		return nil
	}
	var names []string
	for _, a := range registry[op] {
		names = append(names, a.name)
	}
	sort.Strings(names)
	return names
}
