package collpeers

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/lab"
)

//go:embed src/mpi_coll.c
var mpiSource []byte

//go:embed src/gloo_coll.py
var glooSource []byte

// Row names of the peers (CollResult.Transport).
const (
	MPIName  = "openmpi-tcp"
	GlooName = "gloo"
)

// ErrUnavailable: a peer cannot run on this machine (a tool or library is
// missing); the error says which. Callers skip the peer with a note.
var ErrUnavailable = errors.New("collective peer unavailable")

// errOutput: a peer printed something ParseRows cannot read.
var errOutput = errors.New("collective peer output")

// Options configure a peer run. Owned by the caller; the runs only read
// them.
type Options struct {
	// Coll carries the operation (allreduce, allgather or broadcast), the
	// sizes (MinBytes, MaxBytes, StepFactor/StepBytes) and the iteration
	// counts (Iters, Warmup, IterBytes, MinIters), read as
	// bench.Collective reads them. The peers run float32, sum, root 0.
	Coll bench.CollOptions
	// Lab and Ranks: one rank on each of the lab's hosts h0..h<Ranks-1>
	// (Ranks 0: every host).
	Lab   *lab.Lab
	Ranks int
	// Timeout bounds the whole peer run (default 10 min).
	Timeout time.Duration
	// Progress, when set, receives what the peer does.
	Progress io.Writer
}

// Supported reports whether the peers implement op.
func Supported(op collective.OpKind) bool {
	switch op {
	case collective.OpAllReduce, collective.OpAllGather, collective.OpBroadcast:
		return true
	}
	return false
}

func (o *Options) check() ([]*lab.Host, error) {
	if !Supported(o.Coll.Op) {
		return nil, fmt.Errorf("%w: the peers run allreduce, allgather and broadcast, not %v", ErrUnavailable, o.Coll.Op)
	}
	if o.Lab == nil || len(o.Lab.Hosts) < 1 {
		return nil, fmt.Errorf("collective peers: no lab")
	}
	n := o.Ranks
	if n == 0 {
		n = len(o.Lab.Hosts)
	}
	if n < 1 || n > len(o.Lab.Hosts) {
		return nil, fmt.Errorf("collective peers: %d ranks on a lab of %d hosts", n, len(o.Lab.Hosts))
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	hosts := make([]*lab.Host, n)
	for i := range hosts {
		hosts[i] = &o.Lab.Hosts[i]
	}
	return hosts, nil
}

func (o *Options) progressf(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format, args...)
	}
}

// paramCount is the per-rank float count a size means for op (nccl-tests'
// count column).
func paramCount(op collective.OpKind, size int64, n int) int64 {
	c := size / 4
	if op == collective.OpAllGather {
		c /= int64(n)
	}
	return c
}

// specs lists "size:iters" for every size the peer runs: the nccl-tests
// sizes, less those that give an allgather no element per rank.
func specs(o bench.CollOptions, n int) []string {
	var out []string
	for _, size := range bench.CollSizes(o) {
		if paramCount(o.Op, size, n) == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%d:%d", size, bench.CollItersFor(o, size)))
	}
	return out
}

// ParseRows reads the ROW lines both peers print (size count iters oop_us
// ip_us oop_wrong ip_wrong; negative times: not measured) into rows of
// test over ranks, named transport.
func ParseRows(out []byte, op collective.OpKind, transport string, ranks int) ([]bench.CollResult, error) {
	if !Supported(op) || ranks < 1 {
		return nil, fmt.Errorf("%w: %v over %d ranks", errOutput, op, ranks)
	}
	var rows []bench.CollResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "ROW" {
			continue
		}
		if len(f) != 8 {
			return nil, fmt.Errorf("%w: %q: want 7 fields after ROW", errOutput, sc.Text())
		}
		var iv [3]int64
		for i := range iv {
			v, err := strconv.ParseInt(f[1+i], 10, 64)
			if err != nil || v < 0 || v > 1<<40 {
				return nil, fmt.Errorf("%w: %q: field %d", errOutput, sc.Text(), 2+i)
			}
			iv[i] = v
		}
		size, count, iters := iv[0], iv[1], iv[2]
		if count != paramCount(op, size, ranks) {
			return nil, fmt.Errorf("%w: %q: count %d for %d B over %d ranks", errOutput, sc.Text(), count, size, ranks)
		}
		r := bench.CollResult{Test: op.String(), Transport: transport, Peer: true, Ranks: ranks, Size: count * 4, Count: count,
			Type: "float", Redop: "none", Root: -1, Iters: int(iters)}
		switch op {
		case collective.OpAllReduce:
			r.Redop = "sum"
		case collective.OpAllGather:
			r.Size = count * 4 * int64(ranks)
		case collective.OpBroadcast:
			r.Root = 0
		}
		for i, dst := range []**bench.CollTiming{&r.OutOfPlace, &r.InPlace} {
			us, err := strconv.ParseFloat(f[4+i], 64)
			if err != nil || math.IsNaN(us) || us > 1e12 {
				return nil, fmt.Errorf("%w: %q: time %q", errOutput, sc.Text(), f[4+i])
			}
			wrong, err := strconv.ParseInt(f[6+i], 10, 64)
			if err != nil || wrong < -1 {
				return nil, fmt.Errorf("%w: %q: wrong %q", errOutput, sc.Text(), f[6+i])
			}
			if us < 0 {
				continue
			}
			alg, bus := bench.CollBandwidth(op, count*4, ranks, us/1e6)
			*dst = &bench.CollTiming{TimeUs: us, AlgBW: alg, BusBW: bus, Wrong: wrong}
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", errOutput, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: no ROW line", errOutput)
	}
	return rows, nil
}

// tail returns the last n bytes of b as text, for error messages.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

func runWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, d)
}
