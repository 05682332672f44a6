package collective_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

// syncBuffer is a bytes.Buffer safe for the communicator's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSelectionByCost(t *testing.T) {
	model := &collective.CostModel{Alpha: 10e-6, Beta: 1e-9, Gamma: 0.5e-9}
	comms := collectivetest.Comms(t, 8, collectivetest.GroupOptions{}, collective.Options{IgnoreEnv: true, CostModel: model})
	for _, c := range []struct {
		op    collective.OpKind
		bytes int
		want  string
	}{
		{collective.OpAllReduce, 8, "rd"},
		{collective.OpAllReduce, 64 << 20, "ring"},
		{collective.OpReduceScatter, 64 << 20, "ring"},
		{collective.OpReduce, 1 << 20, "binomial"},
	} {
		for r, cm := range comms {
			if got := cm.Algorithm(c.op, c.bytes); got != c.want {
				t.Errorf("rank %d: %v of %d bytes: %s, want %s (%s)", r, c.op, c.bytes, got, c.want, cm.Plan(c.op, c.bytes))
			}
		}
	}
	if p := comms[0].Plan(collective.OpAllReduce, 8); !strings.Contains(p, "predicted") || !strings.Contains(p, "ring") {
		t.Errorf("plan %q lacks the predicted costs", p)
	}
	// Fast links inside hosts and a slow one between them: hierarchical.
	hosts := []string{"a", "a", "b", "b", "c", "c", "d", "d"}
	slow := &collective.CostModel{Alpha: 10e-6, Beta: 4e-9, AlphaLocal: 1e-6, BetaLocal: 0.05e-9, Gamma: 0.5e-9}
	hc := collectivetest.Comms(t, 8, collectivetest.GroupOptions{Hosts: hosts}, collective.Options{IgnoreEnv: true, CostModel: slow})
	if got := hc[3].Algorithm(collective.OpAllReduce, 64<<20); got != "hier" {
		t.Errorf("two ranks per host, slow inter-host links: %s, want hier (%s)", got, hc[3].Plan(collective.OpAllReduce, 64<<20))
	}
}

func TestCalibrationAgrees(t *testing.T) {
	var dbg syncBuffer
	comms := collectivetest.Comms(t, 5, collectivetest.GroupOptions{Hosts: []string{"a", "a", "b", "b", "c"}},
		collective.Options{IgnoreEnv: true, Debug: &dbg})
	m := comms[0].CostModel()
	if !(m.Alpha > 0 && m.Beta > 0 && m.AlphaLocal > 0 && m.BetaLocal > 0 && m.Gamma > 0) {
		t.Fatalf("calibrated model %+v has a non-positive parameter", m)
	}
	for r, c := range comms {
		if c.CostModel() != m {
			t.Errorf("rank %d model %+v differs from rank 0's %+v", r, c.CostModel(), m)
		}
	}
	// Every size bucket decides once and says so.
	errs := collectivetest.Parallel(5, func(r int) error {
		for _, n := range []int{4, 4, 8, 4096} {
			if err := comms[r].AllReduce(context.Background(), nil, make([]byte, n), collective.Float32, collective.Sum); err != nil {
				return err
			}
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	out := dbg.String()
	if n := strings.Count(out, "rank 0: allreduce bytes<="); n != 3 {
		t.Errorf("want 3 decision lines for rank 0 (buckets of 4, 8 and 4096 bytes), got %d:\n%s", n, out)
	}
	if !strings.Contains(out, "predicted") {
		t.Errorf("decision lines lack predicted costs:\n%s", out)
	}
}

func TestAlgorithmOverrides(t *testing.T) {
	t.Setenv(collective.EnvAlgorithm, "allreduce=tree, reduce_scatter=halving")
	comms := collectivetest.Comms(t, 3, collectivetest.GroupOptions{}, collective.Options{})
	if got := comms[0].Algorithm(collective.OpAllReduce, 1<<30); got != "tree" {
		t.Errorf("ONET_ALGO allreduce: %s, want tree", got)
	}
	if got := comms[0].Algorithm(collective.OpReduceScatter, 1); got != "halving" {
		t.Errorf("ONET_ALGO reducescatter: %s, want halving", got)
	}
	// Options win over the environment.
	comms = collectivetest.Comms(t, 3, collectivetest.GroupOptions{},
		collective.Options{Algorithm: map[collective.OpKind]string{collective.OpAllReduce: "rhd"}})
	if got := comms[1].Algorithm(collective.OpAllReduce, 1); got != "rhd" {
		t.Errorf("Options.Algorithm: %s, want rhd", got)
	}
	for _, bad := range []string{"allreduce=nosuch", "nosuchop=ring", "allreduce"} {
		t.Setenv(collective.EnvAlgorithm, bad)
		_, err := collectivetest.NewComms(context.Background(), collectivetest.NewGroup(2, collectivetest.GroupOptions{}), collective.Options{})
		if !errors.Is(err, collective.ErrInvalidArgument) {
			t.Errorf("ONET_ALGO=%s: got %v, want ErrInvalidArgument", bad, err)
		}
	}
}
