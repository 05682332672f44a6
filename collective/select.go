package collective

import (
	"fmt"
	"math"
	"math/bits"
	"strings"
	"sync"
)

// selector picks an algorithm per (operation, size bucket): the forced
// one if any, else the cheapest by the cost model. Buckets are powers of
// two and each is decided at its upper bound, so the choice depends only
// on the bucket, the model and the topology: the same on every rank.
type selector struct {
	c    *Communicator
	mu   sync.Mutex
	seen map[selKey]*algorithm
}

type selKey struct {
	kind   OpKind
	bucket int
}

func (s *selector) init(c *Communicator) {
	s.c = c
	s.seen = map[selKey]*algorithm{}
}

// bucketOf is bits.Len(bytes): 0 for 0 bytes, k for [2^(k-1), 2^k).
func bucketOf(bytes int) int { return bits.Len(uint(max(bytes, 0))) }

// bucketBytes is the size a bucket is decided at.
func bucketBytes(b int) int {
	if b == 0 {
		return 0
	}
	if b >= 62 {
		return math.MaxInt
	}
	return 1<<b - 1
}

func (s *selector) choose(kind OpKind, bytes int) *algorithm {
	key := selKey{kind, bucketOf(bytes)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.seen[key]; ok {
		return a
	}
	a, why := s.decide(kind, key.bucket)
	s.seen[key] = a
	if a != nil {
		s.c.debugf("%v bytes<=%d: %s (%s)", kind, bucketBytes(key.bucket), a.name, why)
	}
	return a
}

// decide returns the algorithm and a description of the predicted costs.
func (s *selector) decide(kind OpKind, bucket int) (*algorithm, string) {
	c := s.c
	if a := c.forced[kind]; a != nil {
		return a, "forced"
	}
	algs := registry[kind]
	names, costs := costTable(&c.model, &c.topo, algs, bucketBytes(bucket))
	if len(names) == 0 || math.IsInf(costs[0], 1) {
		if len(algs) == 0 {
			return nil, ""
		}
		return algs[0], "no cost model"
	}
	var b strings.Builder
	for i := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.3gus", names[i], costs[i]*1e6)
	}
	return lookupAlgorithm(kind, names[0]), "predicted " + b.String()
}

// Plan names the algorithm op of the given size (bytes as the operation
// counts them: AllReduce/Broadcast/Reduce the buffer, ReduceScatter the
// send buffer, AllGather the receive buffer) would run with, and why:
// "ring (predicted ring 12.3us, tree 15us, ...)". It logs nothing.
func (c *Communicator) Plan(op OpKind, bytes int) string {
	if !op.Valid() {
		return ""
	}
	if c.size == 1 {
		return "local (one rank)"
	}
	a, why := c.sel.decide(op, bucketOf(bytes))
	if a == nil {
		return "none"
	}
	return a.name + " (" + why + ")"
}

// Algorithm names the algorithm op of the given size would run with.
func (c *Communicator) Algorithm(op OpKind, bytes int) string {
	if !op.Valid() {
		return ""
	}
	if c.size == 1 {
		return "local"
	}
	a, _ := c.sel.decide(op, bucketOf(bytes))
	if a == nil {
		return ""
	}
	return a.name
}
