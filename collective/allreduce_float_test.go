package collective_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

// TestFloatAllReduceBitIdentical uses arbitrary floats, whose sum depends
// on the order of reduction: every algorithm must give every rank the
// same bytes, within tolerance of the sequential reference.
func TestFloatAllReduceBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 3))
	hosts := []string{"a", "b", "a", "b", "c", "a", "c"}
	for _, alg := range collective.AlgorithmNames(collective.OpAllReduce) {
		n := len(hosts)
		comms := collectivetest.Comms(t, n, collectivetest.GroupOptions{Hosts: hosts},
			collective.Options{IgnoreEnv: true, SegmentBytes: 96, Algorithm: map[collective.OpKind]string{collective.OpAllReduce: alg}})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		for _, dt := range []collective.DType{collective.Float32, collective.Float64, collective.Float16, collective.BFloat16} {
			for _, op := range []collective.Op{collective.Sum, collective.Avg, collective.Prod} {
				count := 1 + rng.IntN(300)
				in := make([][]byte, n)
				want := make([]float64, count)
				for r := range in {
					in[r] = make([]byte, count*dt.Size())
					for i := range count {
						v := put(in[r], i, dt, (rng.Float64()*2-1)*4)
						if r == 0 {
							want[i] = v
						} else {
							want[i] = apply(want[i], v, op)
						}
					}
				}
				out := make([][]byte, n)
				errs := collectivetest.Parallel(n, func(r int) error {
					out[r] = make([]byte, len(in[r]))
					return comms[r].AllReduce(ctx, in[r], out[r], dt, op)
				})
				if err := errors.Join(errs...); err != nil {
					t.Fatalf("%s %v %v: %v", alg, dt, op, err)
				}
				for r := 1; r < n; r++ {
					if !bytes.Equal(out[r], out[0]) {
						t.Fatalf("%s %v %v: rank %d's bytes differ from rank 0's", alg, dt, op, r)
					}
				}
				tol := map[collective.DType]float64{collective.Float32: 1e-5, collective.Float64: 1e-12, collective.Float16: 2e-2, collective.BFloat16: 1e-1}[dt]
				for i := range count {
					w := want[i]
					if op == collective.Avg {
						w /= float64(n)
					}
					g := get(out[0], i, dt)
					if math.Abs(g-w) > tol*max(1, math.Abs(w)) {
						t.Fatalf("%s %v %v element %d: got %g want %g", alg, dt, op, i, g, w)
					}
				}
			}
		}
		cancel()
	}
}

func put(b []byte, i int, dt collective.DType, v float64) float64 {
	le := binary.LittleEndian
	switch dt {
	case collective.Float32:
		le.PutUint32(b[4*i:], math.Float32bits(float32(v)))
	case collective.Float64:
		le.PutUint64(b[8*i:], math.Float64bits(v))
	case collective.Float16:
		le.PutUint16(b[2*i:], collective.Float32ToHalf(float32(v)))
	case collective.BFloat16:
		le.PutUint16(b[2*i:], collective.Float32ToBFloat16(float32(v)))
	default:
		panic(fmt.Sprint(dt))
	}
	return get(b, i, dt)
}

func get(b []byte, i int, dt collective.DType) float64 {
	le := binary.LittleEndian
	switch dt {
	case collective.Float32:
		return float64(math.Float32frombits(le.Uint32(b[4*i:])))
	case collective.Float64:
		return math.Float64frombits(le.Uint64(b[8*i:]))
	case collective.Float16:
		return float64(collective.HalfToFloat32(le.Uint16(b[2*i:])))
	}
	return float64(collective.BFloat16ToFloat32(le.Uint16(b[2*i:])))
}

func apply(a, b float64, op collective.Op) float64 {
	if op == collective.Prod {
		return a * b
	}
	return a + b
}

// TestHierInterleavedHosts: hosts whose ranks interleave, and a host with
// a single rank, through every reduction.
func TestHierInterleavedHosts(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 4))
	hosts := []string{"x", "y", "z", "x", "y", "x", "w", "y"}
	n := len(hosts)
	comms := collectivetest.Comms(t, n, collectivetest.GroupOptions{Hosts: hosts, Rendezvous: true},
		collective.Options{IgnoreEnv: true, SegmentBytes: 64, Algorithm: map[collective.OpKind]string{collective.OpAllReduce: "hier"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, dt := range collective.DTypes() {
		for _, op := range collective.Ops() {
			c := collectivetest.Case{Op: collective.OpAllReduce, DType: dt, Reduce: op}
			if err := collectivetest.RunCase(ctx, comms, c, collectivetest.Inputs(rng, c, n, 1+rng.IntN(100)), rng.IntN(2) == 0, false); err != nil {
				t.Fatal(err)
			}
		}
	}
}
