package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/stack"
)

// The exported functions (exports.go) are thin: they convert C types and
// call these, which hold the logic in plain Go so that tests can call them.

// abiVersion is ONET_ABI_VERSION.
const abiVersion = 1

// libraryVersion is the library's own version.
const libraryVersion = "0.1.0"

var (
	// comms maps onet_comm handles to communicators.
	comms table[*stack.Comm]
	// requests maps onet_request handles to operations in flight.
	requests table[*request]
)

// request is a non-blocking operation and the communicator it runs on.
type request struct {
	h    *collective.Handle
	comm uint64
}

// invalid returns an error wrapping collective.ErrInvalidArgument.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), collective.ErrInvalidArgument)
}

// commCreate opens a communicator (onet_comm_create).
func commCreate(rank, size int, master string, port int, options string) (uint64, error) {
	o, err := stack.ParseCommOptions(options)
	if err != nil {
		return 0, fmt.Errorf("onet_comm_create: %w", err)
	}
	if rank >= 0 && size > 0 {
		o.Rank, o.Size = rank, size
	}
	if port < 0 || port > 65535 {
		return 0, invalid("onet_comm_create: master port %d", port)
	}
	o.MasterAddr, o.MasterPort = master, port
	stack.LaunchedProcs() // a library user's process is one rank of a launched job
	c, err := stack.OpenCommunicator(context.Background(), o)
	if err != nil {
		return 0, err
	}
	return comms.add(c), nil
}

// commFor looks a handle up.
func commFor(id uint64) (*stack.Comm, error) {
	c, ok := comms.get(id)
	if !ok {
		return nil, invalid("communicator %d: unknown handle (destroyed or never created)", id)
	}
	return c, nil
}

// commDestroy closes a communicator and forgets its handle.
func commDestroy(id uint64) error {
	c, ok := comms.remove(id)
	if !ok {
		return invalid("onet_comm_destroy: communicator %d: unknown handle (destroyed or never created)", id)
	}
	return c.Close()
}

// commAbort aborts a communicator here and on its peers.
func commAbort(id uint64, reason string) error {
	c, err := commFor(id)
	if err != nil {
		return fmt.Errorf("onet_comm_abort: %w", err)
	}
	var cause error
	if reason != "" {
		cause = errors.New(reason)
	}
	c.Abort(cause)
	return nil
}

// dtypeOf checks an onet_dtype (the values equal collective.DType's).
func dtypeOf(what string, dt int32) (collective.DType, error) {
	d := collective.DType(dt)
	if dt < 0 || dt > math.MaxUint8 || !d.Valid() {
		return 0, invalid("%s: dtype %d is not an onet_dtype (0..7)", what, dt)
	}
	return d, nil
}

// opOf checks an onet_op (the values equal collective.Op's).
func opOf(what string, op int32) (collective.Op, error) {
	o := collective.Op(op)
	if op < 0 || op > math.MaxUint8 || !o.Valid() {
		return 0, invalid("%s: op %d is not an onet_op (0..4)", what, op)
	}
	return o, nil
}

// buffer is the caller's memory at p as a byte slice of count elements of
// dt times blocks (no copy). p may be NULL only for zero bytes.
func buffer(what, name string, p unsafe.Pointer, count uint64, blocks int, dt collective.DType) ([]byte, error) {
	es := uint64(dt.Size())
	if count > math.MaxInt64/es/uint64(blocks) {
		return nil, invalid("%s: %s of %d x %d elements of %v overflows", what, name, blocks, count, dt)
	}
	n := count * uint64(blocks) * es
	if n == 0 {
		return []byte{}, nil
	}
	if p == nil {
		return nil, invalid("%s: %s is NULL with %d bytes", what, name, n)
	}
	return unsafe.Slice((*byte)(p), n), nil
}

// ctxFor is the context an operation issues under: a blocking call runs
// inline on the calling thread (collective.Inline), a request on the
// communicator's worker.
func ctxFor(req *uint64) context.Context {
	if req == nil {
		return collective.Inline(context.Background())
	}
	return context.Background()
}

// finish blocks for a blocking call, or stores the handle as a request.
func finish(id uint64, req *uint64, h *collective.Handle, err error) error {
	if err != nil {
		return err
	}
	if req == nil {
		return h.Wait(context.Background())
	}
	*req = requests.add(&request{h: h, comm: id})
	return nil
}

// reduceArgs checks the common arguments of the reductions.
func reduceArgs(what string, c uint64, dt, op int32) (*stack.Comm, collective.DType, collective.Op, error) {
	comm, d, err := commArgs(what, c, dt)
	if err != nil {
		return nil, 0, 0, err
	}
	o, err := opOf(what, op)
	if err != nil {
		return nil, 0, 0, err
	}
	return comm, d, o, nil
}

// commArgs resolves a communicator handle and a dtype enum for what.
func commArgs(what string, c uint64, dt int32) (*stack.Comm, collective.DType, error) {
	comm, err := commFor(c)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	d, err := dtypeOf(what, dt)
	if err != nil {
		return nil, 0, err
	}
	return comm, d, nil
}

func allreduce(c uint64, send, recv unsafe.Pointer, count uint64, dt, op int32, req *uint64) error {
	const what = "onet_allreduce"
	comm, d, o, err := reduceArgs(what, c, dt, op)
	if err != nil {
		return err
	}
	rb, err := buffer(what, "recv", recv, count, 1, d)
	if err != nil {
		return err
	}
	sb := rb
	if send != nil && send != recv {
		if sb, err = buffer(what, "send", send, count, 1, d); err != nil {
			return err
		}
	}
	h, err := comm.IAllReduce(ctxFor(req), sb, rb, d, o)
	return finish(c, req, h, err)
}

func reduce(c uint64, send, recv unsafe.Pointer, count uint64, dt, op int32, root int, req *uint64) error {
	const what = "onet_reduce"
	comm, d, o, err := reduceArgs(what, c, dt, op)
	if err != nil {
		return err
	}
	var rb, sb []byte
	if recv != nil || comm.Rank() == root {
		if rb, err = buffer(what, "recv", recv, count, 1, d); err != nil {
			return err
		}
	}
	if send != nil && send != recv {
		if sb, err = buffer(what, "send", send, count, 1, d); err != nil {
			return err
		}
	} else if comm.Rank() != root {
		if sb, err = buffer(what, "send", send, count, 1, d); err != nil {
			return err
		}
	}
	h, err := comm.IReduce(ctxFor(req), sb, rb, d, o, root)
	return finish(c, req, h, err)
}

func allgather(c uint64, send, recv unsafe.Pointer, count uint64, dt int32, req *uint64) error {
	const what = "onet_allgather"
	comm, d, err := commArgs(what, c, dt)
	if err != nil {
		return err
	}
	rb, err := buffer(what, "recv", recv, count, comm.Size(), d)
	if err != nil {
		return err
	}
	var sb []byte // nil: in place, from recv's block rank
	if send != nil && send != recv {
		if sb, err = buffer(what, "send", send, count, 1, d); err != nil {
			return err
		}
	}
	h, err := comm.IAllGather(ctxFor(req), sb, rb)
	return finish(c, req, h, err)
}

func reduceScatter(c uint64, send, recv unsafe.Pointer, count uint64, dt, op int32, req *uint64) error {
	const what = "onet_reduce_scatter"
	comm, d, o, err := reduceArgs(what, c, dt, op)
	if err != nil {
		return err
	}
	if send == nil {
		send = recv // in place: the input is the whole of recv
	}
	sb, err := buffer(what, "send", send, count, comm.Size(), d)
	if err != nil {
		return err
	}
	var rb []byte
	if send == recv {
		// In place: the result is block rank of the buffer.
		blk := len(sb) / comm.Size()
		rb = sb[comm.Rank()*blk : (comm.Rank()+1)*blk]
	} else if rb, err = buffer(what, "recv", recv, count, 1, d); err != nil {
		return err
	}
	h, err := comm.IReduceScatter(ctxFor(req), sb, rb, d, o)
	return finish(c, req, h, err)
}

func broadcast(c uint64, buf unsafe.Pointer, count uint64, dt int32, root int, req *uint64) error {
	const what = "onet_broadcast"
	comm, d, err := commArgs(what, c, dt)
	if err != nil {
		return err
	}
	b, err := buffer(what, "buf", buf, count, 1, d)
	if err != nil {
		return err
	}
	h, err := comm.IBroadcast(ctxFor(req), b, b, root)
	return finish(c, req, h, err)
}

func alltoall(c uint64, send, recv unsafe.Pointer, count uint64, dt int32, req *uint64) error {
	const what = "onet_alltoall"
	comm, d, err := commArgs(what, c, dt)
	if err != nil {
		return err
	}
	rb, err := buffer(what, "recv", recv, count, comm.Size(), d)
	if err != nil {
		return err
	}
	sb := rb
	if send != nil && send != recv {
		if sb, err = buffer(what, "send", send, count, comm.Size(), d); err != nil {
			return err
		}
	}
	h, err := comm.IAllToAll(ctxFor(req), sb, rb)
	return finish(c, req, h, err)
}

func barrier(c uint64, req *uint64) error {
	comm, err := commFor(c)
	if err != nil {
		return fmt.Errorf("onet_barrier: %w", err)
	}
	h, err := comm.IBarrier(ctxFor(req))
	return finish(c, req, h, err)
}

func sendRecv(recvSide bool, c uint64, buf unsafe.Pointer, count uint64, dt int32, peer int, tag uint64, req *uint64) error {
	what := "onet_send"
	if recvSide {
		what = "onet_recv"
	}
	comm, d, err := commArgs(what, c, dt)
	if err != nil {
		return err
	}
	b, err := buffer(what, "buf", buf, count, 1, d)
	if err != nil {
		return err
	}
	var h *collective.Handle
	if recvSide {
		h, err = comm.IRecv(context.Background(), b, peer, tag)
	} else {
		h, err = comm.ISend(context.Background(), b, peer, tag)
	}
	return finish(c, req, h, err)
}
