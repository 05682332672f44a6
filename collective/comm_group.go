package collective

// group is a subset of the communicator's ranks an algorithm runs over
// (all of them, or a hierarchical level): ranks[i] is the global rank of
// member i, me is this rank's index (-1 when not a member).
type group struct {
	ranks []int
	me    int
}

func (g group) size() int { return len(g.ranks) }

// peer is the global rank of member i (indices wrap).
func (g group) peer(i int) int {
	n := len(g.ranks)
	return g.ranks[((i%n)+n)%n]
}

// worldGroup is every rank of the communicator.
func (x *exec) worldGroup() group { return group{ranks: x.c.world, me: x.rank} }

// binomialBcast copies buf from member root to every member of g along a
// binomial tree, using one step.
func binomialBcast(x *exec, g group, buf []byte, root, step int) error {
	n := g.size()
	if n <= 1 {
		return nil
	}
	vr := (g.me - root + n) % n
	mask := 1
	for mask < n {
		if vr&mask != 0 {
			r, err := x.irecv(g.peer(vr-mask+root), step, buf)
			if err != nil {
				return err
			}
			if err := x.wait(r); err != nil {
				return err
			}
			break
		}
		mask <<= 1
	}
	var reqs []xreq
	for mask >>= 1; mask > 0; mask >>= 1 {
		if vr+mask < n {
			s, err := x.isend(g.peer(vr+mask+root), step, buf)
			if err != nil {
				return err
			}
			reqs = append(reqs, s)
		}
	}
	return x.wait(reqs...)
}

// binomialReduce reduces every member's acc into member root's acc along
// a binomial tree using one step; acc is clobbered on the other members.
// The reduction order is fixed by the tree (the same on every run).
func binomialReduce(x *exec, g group, acc []byte, root, step int) error {
	n := g.size()
	if n <= 1 {
		return nil
	}
	vr := (g.me - root + n) % n
	var tmp []byte
	for mask := 1; mask < n; mask <<= 1 {
		if vr&mask != 0 {
			s, err := x.isend(g.peer(vr-mask+root), step, acc)
			if err != nil {
				return err
			}
			return x.wait(s)
		}
		if vr+mask < n {
			if tmp == nil {
				tmp = x.buf(len(acc))
			}
			r, err := x.irecv(g.peer(vr+mask+root), step, tmp)
			if err != nil {
				return err
			}
			if err := x.wait(r); err != nil {
				return err
			}
			if err := x.reduceCanon(acc, acc, tmp); err != nil {
				return err
			}
		}
	}
	return nil
}
