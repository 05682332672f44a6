package pytests

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
	"github.com/opennetworks/onetdp/stack"
)

// benchSpecs are the allreduce sizes (bytes of float32) and iterations
// timed through Python and through Go.
var benchSpecs = []struct {
	size  int
	iters int
}{{4 << 10, 300}, {16 << 20, 10}}

// helperEnv marks the test binary started as one rank of the Go side of
// TestBindingOverhead (TestHelperGoAllReduce).
const helperEnv = "ONET_PYTESTS_HELPER"

// TestHelperGoAllReduce is not a test: TestBindingOverhead starts this
// binary with it as one rank per lab host, like the Python ranks, so that
// Go and Python run in the same process layout. It opens the communicator
// from the environment the way libonet.so does (stack.OpenCommunicator
// over tcp), times blocking in-place float32 allreduces of each size in
// ONET_BENCH_SPECS ("bytes:iters,..."), and on rank 0 prints
// "RESULT go <bytes> <iters> <us>" with the slowest rank's time.
func TestHelperGoAllReduce(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process of TestBindingOverhead")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := stack.OpenCommunicator(ctx, stack.CommOptions{Rank: -1, Size: -1, Transport: stack.TransportTCP})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, spec := range strings.Split(os.Getenv("ONET_BENCH_SPECS"), ",") {
		size, iters, err := parseSpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, size)
		for range max(2, iters/10) {
			if err := c.AllReduce(ctx, buf, buf, collective.Float32, collective.Sum); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		for range iters {
			if err := c.AllReduce(ctx, buf, buf, collective.Float32, collective.Sum); err != nil {
				t.Fatal(err)
			}
		}
		us := []float64{float64(time.Since(t0).Nanoseconds()) / 1e3 / float64(iters)}
		b := unsafe.Slice((*byte)(unsafe.Pointer(&us[0])), 8)
		if err := c.AllReduce(ctx, b, b, collective.Float64, collective.Max); err != nil {
			t.Fatal(err)
		}
		if c.Rank() == 0 {
			fmt.Printf("RESULT go %d %d %.1f\n", size, iters, us[0])
		}
	}
}

func parseSpec(s string) (size, iters int, err error) {
	a, b, ok := strings.Cut(s, ":")
	if size, err = strconv.Atoi(a); err != nil || !ok {
		return 0, 0, fmt.Errorf("spec %q: want bytes:iters", s)
	}
	if iters, err = strconv.Atoi(b); err != nil || size <= 0 || iters <= 0 {
		return 0, 0, fmt.Errorf("spec %q: want bytes:iters", s)
	}
	return size, iters, nil
}

// parseResults reads "RESULT <case> <bytes> <iters> <us>" lines into
// case/bytes -> us.
func parseResults(t *testing.T, out string, into map[string]float64) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 5 || f[0] != "RESULT" {
			continue
		}
		v, err := strconv.ParseFloat(f[4], 64)
		if err != nil || v <= 0 {
			t.Fatalf("bad line %q", line)
		}
		into[f[1]+"/"+f[2]] = v
	}
}

// TestBindingOverhead times allreduce of 4 KiB and 16 MiB on 2 lab hosts
// through Python (NumPy Communicator and the torch "onet" backend), through
// Go (the same communicator without the binding, one process per rank as
// in Python: TestHelperGoAllReduce) and through torch's gloo,
// and logs the table with the ratios. The 16 MiB allreduce through NumPy
// must stay within 3x of Go's (the binding adds a call, not a copy).
func TestBindingOverhead(t *testing.T) {
	testutil.RequireRoot(t)
	requirePython(t, "numpy", "torch")
	if testing.Short() {
		t.Skip("a measurement: skipped with -short")
	}
	buildLib(t)
	testutil.Exclusive(t)
	l := labtest.New(t, lab.Options{Hosts: 2})
	var args []string
	for _, s := range benchSpecs {
		args = append(args, fmt.Sprintf("%d:%d", s.size, s.iters))
	}
	outs, err := runRanks(t, l, 5*time.Minute, "examples/bench_binding.py", args...)
	if err != nil {
		t.Fatal(err)
	}
	py := map[string]float64{}
	parseResults(t, outs[0], py)
	t.Setenv(helperEnv, "1") // inherited by the helper ranks through pyEnv's os.Environ
	t.Setenv("ONET_BENCH_SPECS", strings.Join(args, ","))
	gouts, err := runProcs(t, l, 5*time.Minute, os.Args[0], "-test.run=^TestHelperGoAllReduce$", "-test.count=1")
	if err != nil {
		t.Fatal(err)
	}
	parseResults(t, gouts[0], py)
	var b strings.Builder
	fmt.Fprintf(&b, "allreduce float32, 2 lab hosts, tcp, us per call (slowest rank):\n")
	fmt.Fprintf(&b, "%10s %10s %11s %10s %10s %10s %9s %10s %10s\n", "bytes", "go", "ctypes-onet", "numpy-onet", "torch-onet",
		"torch-gloo", "numpy/go", "torch/go", "gloo/torch")
	for _, s := range benchSpecs {
		key := strconv.Itoa(s.size)
		g, ct, np, to, gl := py["go/"+key], py["ctypes-onet/"+key], py["numpy-onet/"+key], py["torch-onet/"+key], py["torch-gloo/"+key]
		if g == 0 || ct == 0 || np == 0 || to == 0 || gl == 0 {
			t.Fatalf("%d B: missing results in:\n%s\n%s", s.size, outs[0], gouts[0])
		}
		fmt.Fprintf(&b, "%10d %10.1f %11.1f %10.1f %10.1f %10.1f %9.2f %10.2f %10.2f\n", s.size, g, ct, np, to, gl, np/g, to/g, gl/to)
		if s.size >= 1<<20 && np > 3*g {
			t.Errorf("%d B: %.1f us through Python, %.1f through Go: the binding costs more than 3x", s.size, np, g)
		}
	}
	t.Log("\n" + b.String())
}
