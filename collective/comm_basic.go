package collective

import "fmt"

// Simple, correct algorithms for the operations that have no tuned ones
// yet, and point-to-point Send/Recv. They carry no cost, so selection
// takes them only when nothing better is registered (or when forced by
// the name "basic").

func init() {
	register(&algorithm{name: "basic", kind: OpAllGather, run: basicAllGather})
	register(&algorithm{name: "basic", kind: OpBroadcast, run: basicBroadcast})
	register(&algorithm{name: "basic", kind: OpAllToAll, run: basicAllToAll})
	register(&algorithm{name: "basic", kind: OpBarrier, run: basicBarrier})
	register(&algorithm{name: "direct", kind: OpSend, run: directSend})
	register(&algorithm{name: "direct", kind: OpRecv, run: directRecv})
}

// basicAllGather is the unsegmented ring.
func basicAllGather(x *exec) error {
	n, r := x.size, x.rank
	blk := len(x.send)
	copy(x.recv[r*blk:(r+1)*blk], x.send) // a no-op in place
	right, left := (r+1)%n, (r-1+n)%n
	for s := 0; s < n-1; s++ {
		sb := (r - s + n) % n
		rb := (r - s - 1 + n) % n
		if err := x.sendrecv(right, x.recv[sb*blk:(sb+1)*blk], left, x.recv[rb*blk:(rb+1)*blk], 0); err != nil {
			return err
		}
	}
	return nil
}

func basicBroadcast(x *exec) error {
	if x.rank == x.root {
		copy(x.recv, x.send) // a no-op in place
	}
	return binomialBcast(x, x.worldGroup(), x.recv, x.root, 0)
}

// basicAllToAll is the pairwise exchange; in place it works from a copy.
func basicAllToAll(x *exec) error {
	n, r := x.size, x.rank
	blk := len(x.send) / n
	send := x.send
	if aliased(send, x.recv) {
		send = x.buf(len(x.send))
		copy(send, x.send)
	}
	copy(x.recv[r*blk:(r+1)*blk], send[r*blk:(r+1)*blk])
	for s := 1; s < n; s++ {
		to, from := (r+s)%n, (r-s+n)%n
		if err := x.sendrecv(to, send[to*blk:(to+1)*blk], from, x.recv[from*blk:(from+1)*blk], 0); err != nil {
			return err
		}
	}
	return nil
}

// basicBarrier is the dissemination barrier: ceil(log2 n) rounds of
// zero-byte messages.
func basicBarrier(x *exec) error {
	n, r := x.size, x.rank
	for k, step := 1, 0; k < n; k, step = k<<1, step+1 {
		if err := x.sendrecv((r+k)%n, nil, (r-k+n)%n, nil, step); err != nil {
			return err
		}
	}
	return nil
}

func directSend(x *exec) error {
	s, err := x.isend(x.peer, 0, x.send)
	if err != nil {
		return err
	}
	return x.wait(s)
}

func directRecv(x *exec) error {
	r, err := x.irecv(x.peer, 0, x.recv)
	if err != nil {
		return err
	}
	if err := x.wait(r); err != nil {
		return fmt.Errorf("tag %d: %w", x.call.tag, err)
	}
	return nil
}
