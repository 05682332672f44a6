"""Errors cross the boundary as Python exceptions carrying the Go message.

One process per rank with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; the
test uses MASTER_PORT+1..+3 for its extra communicators. Prints
"PASS errors rank R of N"."""

import ctypes
import os
import sys
import time

import numpy as np

import opennetworks as on
from opennetworks import _lib


def expect(what, exc_type, fn, *contains):
    try:
        fn()
    except exc_type as e:
        msg = str(e)
        for s in contains:
            if s not in msg:
                raise AssertionError("%s: %s %r lacks %r" % (what, type(e).__name__, msg, s))
        if not isinstance(e, on.OnetError):
            raise AssertionError("%s: %s is not an OnetError" % (what, type(e).__name__))
        return e
    except Exception as e:
        raise AssertionError("%s: raised %s(%s), want %s" % (what, type(e).__name__, e, exc_type.__name__))
    raise AssertionError("%s: no exception, want %s" % (what, exc_type.__name__))


def main():
    host = os.environ["MASTER_ADDR"]
    port = int(os.environ["MASTER_PORT"])
    c = on.Communicator.from_env(transport="tcp", timeout_ms=60000)
    r, n = c.rank, c.size

    # Checks done before the call.
    expect("complex dtype", on.NotSupported, lambda: c.allreduce(np.ones(4, np.complex64)), "dtype complex64")
    expect("bool dtype", on.NotSupported, lambda: c.broadcast(np.ones(4, bool)), "dtype bool")
    expect("non-contiguous", on.InvalidArgument, lambda: c.allreduce(np.ones((4, 4), np.float32)[:, 1]),
           "not C-contiguous")
    expect("read-only output", on.InvalidArgument,
           lambda: c.broadcast(np.frombuffer(b"\0" * 16, np.float32)), "read-only")
    expect("output size", on.InvalidArgument,
           lambda: c.allgather(np.ones(3, np.float32), out=np.empty(3 * n + 1, np.float32)), "output has")
    expect("bad reduction", on.InvalidArgument, lambda: c.allreduce(np.ones(2), op="xor"), "reduction 'xor'")
    expect("bad root", on.InvalidArgument, lambda: c.broadcast(np.ones(2), root=n), "root %d" % n)
    # Checks done by Go: the message is onet_last_error's.
    so = _lib.lib()
    buf = np.zeros(4, np.float32)
    expect("Go: bad dtype", on.InvalidArgument,
           lambda: _lib.check(so.onet_allreduce(c.handle, buf.ctypes.data, buf.ctypes.data, 4, 99, 0, None)),
           "dtype 99")
    expect("Go: bad op", on.InvalidArgument,
           lambda: _lib.check(so.onet_allreduce(c.handle, buf.ctypes.data, buf.ctypes.data, 4, 0, 42, None)), "42")
    expect("Go: unknown handle", on.InvalidArgument,
           lambda: _lib.check(so.onet_barrier(0xdead, None)), "unknown handle")
    expect("Go: send to self/out of range", on.InvalidArgument, lambda: c.send(buf, n + 5), str(n + 5))
    c.barrier()

    # A peer that never arrives: the rendezvous times out on every rank,
    # naming it (also where rank 0, which serves the store, gives up first).
    t0 = time.time()
    expect("rendezvous timeout", on.Timeout,
           lambda: on.Communicator(r, n + 1, host, port + 1, transport="tcp", connect_timeout_ms=2000, timeout_ms=2000),
           "rank %d" % n)
    took = time.time() - t0
    if took > 30:
        raise AssertionError("rendezvous timeout took %.1f s, want about 2" % took)
    c.barrier()

    # A peer that does not join an operation: rank 0's allreduce times out.
    t = on.Communicator(r, n, host, port + 2, transport="tcp", timeout_ms=1500)
    if r == 0:
        e = expect("operation timeout", on.Timeout, lambda: t.allreduce(np.ones(8, np.float32)), "allreduce")
        print("timeout message: %s" % e)
    c.barrier()
    try:
        t.close()
    except on.OnetError:
        pass

    # Abort: rank 0 aborts while the others wait in an allreduce.
    a = on.Communicator(r, n, host, port + 3, transport="tcp", timeout_ms=60000)
    if r == 0:
        c.barrier()
        time.sleep(0.3)
        a.abort("lab abort")
        e = expect("abort: own later op", on.Aborted, lambda: a.allreduce(np.ones(2)))
    else:
        q = a.allreduce_async(np.ones(2))
        c.barrier()
        e = expect("abort: peer's pending op", on.Aborted, lambda: q.wait(timeout=30))
    print("abort message rank %d: %s" % (r, e))
    assert e.status == _lib.ERR_ABORTED and e.status_name == "ONET_ERR_ABORTED"
    try:
        a.close()
    except on.OnetError:
        pass
    c.barrier()

    # Closed: operations after close fail with Closed, a second close is a no-op.
    c.close()
    expect("after close", on.Closed, lambda: c.barrier(), "closed")
    c.close()
    assert ctypes.sizeof(ctypes.c_uint64) == 8
    print("PASS errors rank %d of %d" % (r, n))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
