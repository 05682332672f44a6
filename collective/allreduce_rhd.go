package collective

import "fmt"

// Recursive halving-doubling (Rabenseifner) and recursive doubling, with
// the standard pre/post step for rank counts that are not a power of two:
// of the first 2*rem members (rem = n - p, p the largest power of two not
// above n) each even one hands its data to the odd one after it and sits
// out; the p remaining members run the power-of-two algorithm; the odd
// ones hand the result back.

func init() {
	register(&algorithm{name: "rhd", kind: OpAllReduce, run: runFlat(rhdAllreduce), cost: rhdAllreduceCost})
	register(&algorithm{name: "rd", kind: OpAllReduce, run: runFlat(rdAllreduce), cost: rdAllreduceCost})
}

// foldPlan is the pre/post step's arithmetic for n members.
type foldPlan struct {
	p, rem int
}

func newFold(n int) foldPlan { p := pow2floor(n); return foldPlan{p: p, rem: n - p} }

// virt is member i's rank among the p (-1: sits out).
func (f foldPlan) virt(i int) int {
	switch {
	case i >= 2*f.rem:
		return i - f.rem
	case i%2 == 1:
		return i / 2
	}
	return -1
}

// member is the member index of virtual rank v.
func (f foldPlan) member(v int) int {
	if v < f.rem {
		return 2*v + 1
	}
	return v + f.rem
}

// foldIn runs the pre-step on buf (whole vector): even members of the
// first 2*rem send, odd ones reduce (the lower member's data first).
func foldIn(x *exec, g group, f foldPlan, buf []byte, step int) error {
	me := g.me
	if me >= 2*f.rem {
		return nil
	}
	if me%2 == 0 {
		s, err := x.isend(g.peer(me+1), step, buf)
		if err != nil {
			return err
		}
		return x.wait(s)
	}
	tmp := x.buf(len(buf))
	r, err := x.irecv(g.peer(me-1), step, tmp)
	if err != nil {
		return err
	}
	if err := x.wait(r); err != nil {
		return err
	}
	return x.reduceCanon(buf, tmp, buf)
}

// foldOut runs the post-step: odd members of the first 2*rem send the
// result to the even one before them.
func foldOut(x *exec, g group, f foldPlan, buf []byte, step int) error {
	me := g.me
	if me >= 2*f.rem {
		return nil
	}
	var q xreq
	var err error
	if me%2 == 1 {
		q, err = x.isend(g.peer(me-1), step, buf)
	} else {
		q, err = x.irecv(g.peer(me+1), step, buf)
	}
	if err != nil {
		return err
	}
	return x.wait(q)
}

// halve runs recursive halving among the p virtual ranks on buf, whose
// block v spans bytes boff[v]:boff[v+1]; virtual rank v ends with block v
// reduced. It uses steps step..step+log2(p)-1.
func halve(x *exec, g group, f foldPlan, v int, buf []byte, boff []int, step int) error {
	lo, hi := 0, f.p
	var tmp []byte
	for mask, k := f.p/2, 0; mask >= 1; mask, k = mask/2, k+1 {
		partner := g.peer(f.member(v ^ mask))
		mid := lo + (hi-lo)/2
		keepLo, keepHi, sendLo, sendHi := lo, mid, mid, hi
		if v&mask != 0 {
			keepLo, keepHi, sendLo, sendHi = mid, hi, lo, mid
		}
		keep := buf[boff[keepLo]:boff[keepHi]]
		if tmp == nil {
			tmp = x.buf(boff[mid] - boff[lo] + boff[hi] - boff[mid])
		}
		in := tmp[:len(keep)]
		if err := x.sendrecv(partner, buf[boff[sendLo]:boff[sendHi]], partner, in, step+k); err != nil {
			return err
		}
		// Each reduced block is computed here only: the order needs no
		// agreement with the partner.
		if err := ReduceOut(keep, keep, in, x.dt, x.op); err != nil {
			return err
		}
		lo, hi = keepLo, keepHi
	}
	return nil
}

// double runs recursive doubling among the p virtual ranks, each starting
// with block v of buf and ending with all of them.
func double(x *exec, g group, f foldPlan, v int, buf []byte, boff []int, step int) error {
	lo, hi := v, v+1
	for mask, k := 1, 0; mask < f.p; mask, k = mask*2, k+1 {
		partner := g.peer(f.member(v ^ mask))
		plo := lo ^ mask
		phi := plo + (hi - lo)
		if err := x.sendrecv(partner, buf[boff[lo]:boff[hi]], partner, buf[boff[plo]:boff[phi]], step+k); err != nil {
			return err
		}
		lo, hi = min(lo, plo), max(hi, phi)
	}
	return nil
}

func rhdAllreduce(x *exec, g group, buf []byte, avgN, step int) error {
	n := g.size()
	if n == 1 {
		return Finish(buf, x.dt, x.op, avgN)
	}
	f := newFold(n)
	levels := log2ceil(f.p)
	if err := foldIn(x, g, f, buf, step); err != nil {
		return fmt.Errorf("pre-step: %w", err)
	}
	if v := f.virt(g.me); v >= 0 {
		esz := x.dt.Size()
		boff := chunkOffsets(len(buf)/esz, esz, f.p)
		if err := halve(x, g, f, v, buf, boff, step+1); err != nil {
			return fmt.Errorf("recursive halving: %w", err)
		}
		if err := Finish(buf[boff[v]:boff[v+1]], x.dt, x.op, avgN); err != nil {
			return err
		}
		if err := double(x, g, f, v, buf, boff, step+1+levels); err != nil {
			return fmt.Errorf("recursive doubling: %w", err)
		}
	}
	if err := foldOut(x, g, f, buf, step+1+2*levels); err != nil {
		return fmt.Errorf("post-step: %w", err)
	}
	return nil
}

// rdAllreduce exchanges the whole vector log2(p) times: the fewest
// messages, for small sizes. Partners reduce in the same order (lower
// virtual rank's data first), so they hold identical bytes.
func rdAllreduce(x *exec, g group, buf []byte, avgN, step int) error {
	n := g.size()
	if n == 1 {
		return Finish(buf, x.dt, x.op, avgN)
	}
	f := newFold(n)
	levels := log2ceil(f.p)
	if err := foldIn(x, g, f, buf, step); err != nil {
		return fmt.Errorf("pre-step: %w", err)
	}
	if v := f.virt(g.me); v >= 0 {
		tmp := x.buf(len(buf))
		for mask, k := 1, 0; mask < f.p; mask, k = mask*2, k+1 {
			pv := v ^ mask
			partner := g.peer(f.member(pv))
			if err := x.sendrecv(partner, buf, partner, tmp, step+1+k); err != nil {
				return fmt.Errorf("recursive doubling: %w", err)
			}
			lo, hi := buf, tmp
			if pv < v {
				lo, hi = tmp, buf
			}
			if err := x.reduceCanon(buf, lo, hi); err != nil {
				return err
			}
		}
		if err := Finish(buf, x.dt, x.op, avgN); err != nil {
			return err
		}
	}
	if err := foldOut(x, g, f, buf, step+1+levels); err != nil {
		return fmt.Errorf("post-step: %w", err)
	}
	return nil
}

// foldCost is the pre/post step's cost when n is not a power of two.
func foldCost(a, b, gamma float64, n int, bytes float64) float64 {
	if pow2floor(n) == n {
		return 0
	}
	return 2*(a+bytes*b) + bytes*gamma
}

func rhdAllreduceCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	p := pow2floor(t.size)
	mb := float64(bytes)
	f := float64(p-1) / float64(p) * mb
	return 2*float64(log2ceil(p))*a + f*(2*b+m.Gamma) + foldCost(a, b, m.Gamma, t.size, mb)
}

func rdAllreduceCost(m *CostModel, t *topology, bytes int) float64 {
	a, b := m.link(t)
	p := pow2floor(t.size)
	mb := float64(bytes)
	return float64(log2ceil(p))*(a+mb*(b+m.Gamma)) + foldCost(a, b, m.Gamma, t.size, mb)
}
