package collective

import (
	"context"
	"fmt"
)

// The operations. Each X has a blocking X(ctx, ...) and a non-blocking
// IX(ctx, ...) returning a *Handle; ctx's deadline (or Options.Timeout)
// bounds the operation's run, and cancelling ctx cancels it. Buffers hold
// whole elements of dt; in place means the send buffer aliases (or, where
// noted, is nil and taken from) the receive buffer. After an operation
// fails, a transport may still write into its buffers until the
// communicator is closed.

// AllReduce sets recv on every rank to the reduction of every rank's send.
// send may be nil or equal recv (in place); else len(send) == len(recv).
func (c *Communicator) AllReduce(ctx context.Context, send, recv []byte, dt DType, op Op) error {
	return c.run(c.IAllReduce(Inline(ctx), send, recv, dt, op))
}

// IAllReduce is the non-blocking AllReduce.
func (c *Communicator) IAllReduce(ctx context.Context, send, recv []byte, dt DType, op Op) (*Handle, error) {
	if send == nil {
		send = recv
	}
	if err := checkReduceArgs(OpAllReduce, len(send), len(recv), dt, op); err != nil {
		return nil, err
	}
	return c.issue(ctx, call{kind: OpAllReduce, send: send, recv: recv, dt: dt, op: op, bytes: len(recv)})
}

// ReduceScatter reduces every rank's send (Size blocks of len(recv)
// bytes) and leaves block Rank of the result in recv. In place: recv is
// send's block Rank.
func (c *Communicator) ReduceScatter(ctx context.Context, send, recv []byte, dt DType, op Op) error {
	return c.run(c.IReduceScatter(Inline(ctx), send, recv, dt, op))
}

// IReduceScatter is the non-blocking ReduceScatter.
func (c *Communicator) IReduceScatter(ctx context.Context, send, recv []byte, dt DType, op Op) (*Handle, error) {
	if err := checkReduceArgs(OpReduceScatter, len(recv)*c.size, len(send), dt, op); err != nil {
		return nil, err
	}
	if len(recv)%dt.Size() != 0 {
		return nil, fmt.Errorf("reducescatter: %d bytes is not a whole number of %v: %w", len(recv), dt, ErrInvalidArgument)
	}
	return c.issue(ctx, call{kind: OpReduceScatter, send: send, recv: recv, dt: dt, op: op, bytes: len(send)})
}

// Reduce leaves the reduction of every rank's send in root's recv; recv
// is not touched (and may be nil) elsewhere. In place on root: send nil or
// equal to recv.
func (c *Communicator) Reduce(ctx context.Context, send, recv []byte, dt DType, op Op, root int) error {
	return c.run(c.IReduce(Inline(ctx), send, recv, dt, op, root))
}

// IReduce is the non-blocking Reduce.
func (c *Communicator) IReduce(ctx context.Context, send, recv []byte, dt DType, op Op, root int) (*Handle, error) {
	if err := c.checkRoot(OpReduce, root); err != nil {
		return nil, err
	}
	if send == nil {
		send = recv
	}
	if c.rank == root {
		if err := checkReduceArgs(OpReduce, len(send), len(recv), dt, op); err != nil {
			return nil, err
		}
	} else {
		if err := checkReduceArgs(OpReduce, len(send), len(send), dt, op); err != nil {
			return nil, err
		}
		recv = nil
	}
	return c.issue(ctx, call{kind: OpReduce, send: send, recv: recv, dt: dt, op: op, root: root, bytes: len(send)})
}

// AllGather gathers every rank's send (all the same length) into recv in
// rank order: len(recv) == Size*len(send). In place: send nil or recv's
// block Rank.
func (c *Communicator) AllGather(ctx context.Context, send, recv []byte) error {
	return c.run(c.IAllGather(Inline(ctx), send, recv))
}

// IAllGather is the non-blocking AllGather.
func (c *Communicator) IAllGather(ctx context.Context, send, recv []byte) (*Handle, error) {
	if len(recv)%c.size != 0 {
		return nil, fmt.Errorf("allgather: receive buffer of %d bytes for %d ranks: %w", len(recv), c.size, ErrInvalidArgument)
	}
	blk := len(recv) / c.size
	if send == nil {
		send = recv[c.rank*blk : (c.rank+1)*blk]
	}
	if len(send) != blk {
		return nil, fmt.Errorf("allgather: send %d bytes into %d per rank: %w", len(send), blk, ErrInvalidArgument)
	}
	return c.issue(ctx, call{kind: OpAllGather, send: send, recv: recv, bytes: len(recv)})
}

// Broadcast copies root's send into every rank's recv (root's too). On
// root send may be nil or equal recv (in place); elsewhere it is ignored.
func (c *Communicator) Broadcast(ctx context.Context, send, recv []byte, root int) error {
	return c.run(c.IBroadcast(Inline(ctx), send, recv, root))
}

// IBroadcast is the non-blocking Broadcast.
func (c *Communicator) IBroadcast(ctx context.Context, send, recv []byte, root int) (*Handle, error) {
	if err := c.checkRoot(OpBroadcast, root); err != nil {
		return nil, err
	}
	if send == nil || c.rank != root {
		send = recv
	}
	if len(send) != len(recv) {
		return nil, fmt.Errorf("broadcast: send %d bytes, receive %d: %w", len(send), len(recv), ErrInvalidArgument)
	}
	return c.issue(ctx, call{kind: OpBroadcast, send: send, recv: recv, root: root, bytes: len(recv)})
}

// AllToAll sends block i of send (Size equal blocks) to rank i and
// receives rank j's block Rank into block j of recv. send may be nil or
// equal recv (in place).
func (c *Communicator) AllToAll(ctx context.Context, send, recv []byte) error {
	return c.run(c.IAllToAll(Inline(ctx), send, recv))
}

// IAllToAll is the non-blocking AllToAll.
func (c *Communicator) IAllToAll(ctx context.Context, send, recv []byte) (*Handle, error) {
	if send == nil {
		send = recv
	}
	if len(send) != len(recv) || len(recv)%c.size != 0 {
		return nil, fmt.Errorf("alltoall: send %d bytes, receive %d, %d ranks: %w", len(send), len(recv), c.size, ErrInvalidArgument)
	}
	return c.issue(ctx, call{kind: OpAllToAll, send: send, recv: recv, bytes: len(send)})
}

// Barrier returns once every rank has entered it.
func (c *Communicator) Barrier(ctx context.Context) error { return c.run(c.IBarrier(Inline(ctx))) }

// IBarrier is the non-blocking Barrier.
func (c *Communicator) IBarrier(ctx context.Context) (*Handle, error) {
	return c.issue(ctx, call{kind: OpBarrier})
}

// Send sends buf to peer under tag (0..MaxUserTag). Sends and receives
// between two ranks with the same tag match in order; they are not
// ordered with collectives.
func (c *Communicator) Send(ctx context.Context, buf []byte, peer int, tag uint64) error {
	return c.run(c.ISend(ctx, buf, peer, tag))
}

// ISend is the non-blocking Send.
func (c *Communicator) ISend(ctx context.Context, buf []byte, peer int, tag uint64) (*Handle, error) {
	if err := c.checkPeer(OpSend, peer, tag); err != nil {
		return nil, err
	}
	return c.startP2P(ctx, call{kind: OpSend, send: buf, peer: peer, tag: tag, bytes: len(buf)})
}

// Recv receives exactly len(buf) bytes from peer under tag.
func (c *Communicator) Recv(ctx context.Context, buf []byte, peer int, tag uint64) error {
	h, err := c.IRecv(ctx, buf, peer, tag)
	if err != nil {
		return err
	}
	return h.Wait(context.Background())
}

// IRecv is the non-blocking Recv.
func (c *Communicator) IRecv(ctx context.Context, buf []byte, peer int, tag uint64) (*Handle, error) {
	if err := c.checkPeer(OpRecv, peer, tag); err != nil {
		return nil, err
	}
	return c.startP2P(ctx, call{kind: OpRecv, recv: buf, peer: peer, tag: tag, bytes: len(buf)})
}

// startP2P runs a Send/Recv in its own goroutine but returns only once
// its transport request is posted (or it failed), so that calls on one
// tag match in the order they were made.
func (c *Communicator) startP2P(ctx context.Context, cl call) (*Handle, error) {
	posted := make(chan struct{})
	cl.posted = posted
	h, err := c.issue(ctx, cl)
	if err != nil {
		return nil, err
	}
	go func() { h.finish(c.execute(h)) }()
	select {
	case <-posted:
	case <-h.Done():
	}
	return h, nil
}

// run waits for a handle just issued; blocking calls return here.
func (c *Communicator) run(h *Handle, err error) error {
	if err != nil {
		return err
	}
	// The operation's own deadline and Abort bound it: wait without one.
	// (Wait runs an Inline operation itself.)
	return h.Wait(context.Background())
}

func (c *Communicator) checkRoot(k OpKind, root int) error {
	if root < 0 || root >= c.size {
		return fmt.Errorf("%v: root %d of %d ranks: %w", k, root, c.size, ErrInvalidArgument)
	}
	return nil
}

func (c *Communicator) checkPeer(k OpKind, peer int, tag uint64) error {
	if peer < 0 || peer >= c.size || peer == c.rank {
		return fmt.Errorf("%v: peer %d (rank %d of %d): %w", k, peer, c.rank, c.size, ErrInvalidArgument)
	}
	if tag > MaxUserTag {
		return fmt.Errorf("%v: tag %#x above %#x: %w", k, tag, uint64(MaxUserTag), ErrInvalidArgument)
	}
	return nil
}

func checkReduceArgs(k OpKind, nsend, nrecv int, dt DType, op Op) error {
	switch {
	case !dt.Valid():
		return fmt.Errorf("%v: %v: %w", k, dt, ErrInvalidArgument)
	case !op.Valid():
		return fmt.Errorf("%v: %v: %w", k, op, ErrInvalidArgument)
	case nsend != nrecv:
		return fmt.Errorf("%v: send %d bytes, receive %d: %w", k, nsend, nrecv, ErrInvalidArgument)
	case nrecv%dt.Size() != 0 || nsend%dt.Size() != 0:
		return fmt.Errorf("%v: %d bytes is not a whole number of %v: %w", k, nsend, dt, ErrInvalidArgument)
	}
	return nil
}
