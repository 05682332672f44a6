"""Communicator: one onet communicator (onet_comm_create) and its
collectives on NumPy arrays, blocking or non-blocking (Request)."""

import ctypes
import json
import threading

from . import _lib
from ._lib import InvalidArgument, NotSupported, OnetError

try:  # NumPy is optional for the torch-only paths
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

# NumPy dtype name -> onet_dtype. "bfloat16" is ml_dtypes' (what JAX uses).
NUMPY_DTYPES = {
    "float32": _lib.FLOAT32, "float64": _lib.FLOAT64, "float16": _lib.FLOAT16, "bfloat16": _lib.BFLOAT16,
    "int8": _lib.INT8, "uint8": _lib.UINT8, "int32": _lib.INT32, "int64": _lib.INT64,
}


def op_code(op):
    """onet_op for "sum", "prod", "min", "max", "avg" (case-insensitive) or
    an int code; InvalidArgument otherwise."""
    if isinstance(op, int) and not isinstance(op, bool):
        if op in (_lib.SUM, _lib.PROD, _lib.MIN, _lib.MAX, _lib.AVG):
            return op
        raise InvalidArgument("reduction %d: not an onet_op (0..4)" % op)
    code = _lib.OPS.get(str(op).lower())
    if code is None:
        raise InvalidArgument("reduction %r: want one of sum, prod, min, max, avg" % (op,))
    return code


def options_string(options=None, **kw):
    """Joins options (a "k=v;k=v" string, a dict, or None) and keyword
    options into onet_comm_create's options string. Values must not hold
    ';'."""
    parts = []
    if isinstance(options, str):
        parts.extend(p for p in options.split(";") if p)
    elif options:
        kw = dict(options, **kw)
    for k, v in kw.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = int(v)
        s = "%s=%s" % (k, v)
        if ";" in s:
            raise InvalidArgument("option %s: ';' is the separator and cannot appear in a value" % s)
        parts.append(s)
    return ";".join(parts)


class Buffer:
    """A raw buffer: address, element count, onet_dtype, and the object that
    owns the memory (kept alive while an operation uses it)."""

    __slots__ = ("ptr", "count", "dtype", "owner")

    def __init__(self, ptr, count, dtype, owner):
        self.ptr, self.count, self.dtype, self.owner = ptr, count, dtype, owner


def numpy_buffer(a, what, writable=False):
    """Buffer over a NumPy array in place (zero copy). NotSupported for a
    dtype libonet lacks; InvalidArgument for a non-contiguous or read-only
    (when writable) array."""
    if _np is None:  # pragma: no cover
        raise NotSupported("%s: numpy is not installed" % what)
    if not isinstance(a, _np.ndarray):
        raise InvalidArgument("%s: want a numpy.ndarray, got %s" % (what, type(a).__name__))
    code = NUMPY_DTYPES.get(a.dtype.name)
    if code is None or not a.dtype.isnative:
        raise NotSupported("%s: dtype %s is not supported (want one of %s, native byte order)"
                           % (what, a.dtype, ", ".join(sorted(NUMPY_DTYPES))))
    if not a.flags.c_contiguous:
        raise InvalidArgument("%s: array is not C-contiguous (strides %s): pass numpy.ascontiguousarray(x)"
                              % (what, a.strides))
    if writable and not a.flags.writeable:
        raise InvalidArgument("%s: array is read-only" % what)
    return Buffer(a.ctypes.data if a.size else 0, int(a.size), code, a)


class Request:
    """A non-blocking operation. wait() blocks until it completes and
    returns its result (the output array) or raises its OnetError; test()
    says whether it completed. The arrays it uses are kept alive until then.
    A Request may be waited on from any thread; it is thread-safe."""

    def __init__(self, comm, handle, keep, result, post=None):
        self._comm = comm
        self._handle = handle
        self._keep = keep
        self._result = result
        self._post = post
        self._exc = None
        self._done = False
        self._lock = threading.Lock()

    def _finish(self, status, msg):
        self._done = True
        self._handle = 0
        if status != _lib.OK:
            self._exc = _lib.exception_for(status, msg)
        elif self._post is not None:
            try:
                self._post()
            except Exception as e:  # a copy-back failure is the operation's failure
                self._exc = e
        self._keep = None
        self._post = None
        self._comm._forget(self)

    def wait(self, timeout=None):
        """Waits up to timeout seconds (None: the operation's own timeout)
        and returns the result. Raises Timeout when timeout passes first
        (the request stays valid: wait again), or the operation's error."""
        so = _lib.lib()
        with self._lock:
            if not self._done:
                ms = -1 if timeout is None else max(0, int(timeout * 1000))
                st = so.onet_wait(self._handle, ms)
                msg = _lib.last_error() if st != _lib.OK else ""
                if st == _lib.ERR_TIMEOUT and ms >= 0:
                    # Either our wait timed out (the request is still
                    # valid) or the operation did (it is freed): ask.
                    done = ctypes.c_int(0)
                    st2 = so.onet_test(self._handle, ctypes.byref(done))
                    if st2 == _lib.OK and not done.value:
                        raise _lib.Timeout("wait: %.3f s passed before the operation completed" % timeout)
                    if st2 == _lib.OK or st2 != _lib.ERR_INVALID:
                        st, msg = st2, (_lib.last_error() if st2 != _lib.OK else "")
                self._finish(st, msg)
        if self._exc is not None:
            raise self._exc
        return self._result

    def test(self):
        """True once the operation completed (successfully or not: wait()
        then returns the result or raises); False while it runs."""
        with self._lock:
            if self._done:
                return True
            done = ctypes.c_int(0)
            st = _lib.lib().onet_test(self._handle, ctypes.byref(done))
            if st != _lib.OK:
                self._finish(st, _lib.last_error())
            elif done.value:
                self._finish(_lib.OK, "")
            return self._done

    @property
    def done(self):
        return self._done

    def exception(self):
        """The operation's error once it completed, else None."""
        return self._exc

    def result(self, timeout=None):
        return self.wait(timeout)


class Communicator:
    """One onet communicator: every rank of the job creates one with the
    same size and master.

    rank, size: this process's place; None (or negative) reads the
    environment (torchrun RANK/WORLD_SIZE, Open MPI, Slurm, ONET_RANK/ONET_SIZE).
    master_addr, master_port: the rendezvous store rank 0 serves; None/0
    read MASTER_ADDR/MASTER_PORT. options: "k=v;k=v", a dict, or keyword
    arguments (transport="tcp", timeout_ms=60000, addr="10.0.0.1", ...;
    see onet.h). Creation blocks until every rank arrived.

    The collectives take NumPy arrays and use them in place (zero copy):
    C-contiguous, dtype float32/float64/float16/bfloat16/int8/uint8/int32/int64.
    With async_op=True (or the *_async methods) they return a Request at
    once. Calls from several threads are safe, but every rank must issue
    its collectives in the same order."""

    def __init__(self, rank=None, size=None, master_addr=None, master_port=None, options=None, **kw):
        so = _lib.lib()
        opts = options_string(options, **kw)
        h = ctypes.c_uint64(0)
        st = so.onet_comm_create(-1 if rank is None else int(rank), -1 if size is None else int(size),
                                 master_addr.encode() if master_addr else None, int(master_port or 0),
                                 opts.encode() if opts else None, ctypes.byref(h))
        _lib.check(st)
        self._h = h.value
        self._pending = set()
        self._plock = threading.Lock()
        r, n = ctypes.c_int(), ctypes.c_int()
        _lib.check(so.onet_comm_rank(self._h, ctypes.byref(r)))
        _lib.check(so.onet_comm_size(self._h, ctypes.byref(n)))
        self._rank, self._size = r.value, n.value

    @classmethod
    def from_env(cls, options=None, **kw):
        """A communicator whose rank, size and master come from the
        environment (torchrun, mpirun, srun, or ONET_RANK/ONET_SIZE with
        MASTER_ADDR/MASTER_PORT)."""
        return cls(options=options, **kw)

    @property
    def rank(self):
        return self._rank

    @property
    def size(self):
        return self._size

    @property
    def handle(self):
        """The onet_comm handle (0 once closed)."""
        return self._h

    def _live(self):
        if not self._h:
            raise _lib.Closed("communicator is closed")
        return self._h

    def _forget(self, req):
        with self._plock:
            self._pending.discard(req)

    def _submit(self, fname, args, keep, result, post=None, async_op=False, what=None):
        """Calls onet_<fname>(handle, *args, req): blocking when not
        async_op (post runs after success), else returns a Request."""
        so = _lib.lib()
        f = getattr(so, "onet_" + fname)
        h = self._live()
        if not async_op:
            st = f(h, *args, None)
            _lib.check(st)
            if post is not None:
                post()
            return result
        req = ctypes.c_uint64(0)
        st = f(h, *args, ctypes.byref(req))
        _lib.check(st)
        r = Request(self, req.value, keep, result, post)
        with self._plock:
            self._pending.add(r)
        return r

    # Raw-buffer layer: the NumPy methods below and the torch/JAX ops use it.

    def allreduce_buffers(self, send, recv, op, async_op=False, result=None, post=None):
        self._same(send, recv, send.count, "allreduce")
        return self._submit("allreduce", (send.ptr, recv.ptr, send.count, send.dtype, op_code(op)),
                            (send, recv), result, post, async_op)

    def reduce_buffers(self, send, recv, op, root, async_op=False, result=None, post=None):
        self._same(send, recv, send.count, "reduce")
        self._root(root, "reduce")
        return self._submit("reduce", (send.ptr, recv.ptr, send.count, send.dtype, op_code(op), int(root)),
                            (send, recv), result, post, async_op)

    def allgather_buffers(self, send, recv, async_op=False, result=None, post=None):
        self._same(send, recv, send.count * self._size, "allgather")
        return self._submit("allgather", (send.ptr, recv.ptr, send.count, send.dtype), (send, recv), result, post,
                            async_op)

    def reduce_scatter_buffers(self, send, recv, op, async_op=False, result=None, post=None):
        if send.count != recv.count * self._size:
            raise InvalidArgument("reduce_scatter: input has %d elements, want output's %d x %d ranks"
                                  % (send.count, recv.count, self._size))
        self._same(send, recv, recv.count, "reduce_scatter")
        return self._submit("reduce_scatter", (send.ptr, recv.ptr, recv.count, send.dtype, op_code(op)),
                            (send, recv), result, post, async_op)

    def broadcast_buffer(self, buf, root, async_op=False, result=None, post=None):
        self._root(root, "broadcast")
        return self._submit("broadcast", (buf.ptr, buf.count, buf.dtype, int(root)), (buf,), result, post, async_op)

    def alltoall_buffers(self, send, recv, async_op=False, result=None, post=None):
        if send.count % self._size:
            raise InvalidArgument("alltoall: %d elements do not split into %d equal blocks" % (send.count, self._size))
        self._same(send, recv, send.count, "alltoall")
        return self._submit("alltoall", (send.ptr, recv.ptr, send.count // self._size, send.dtype),
                            (send, recv), result, post, async_op)

    def send_buffer(self, buf, peer, tag=0, async_op=False, result=None, post=None):
        return self._submit("send", (buf.ptr, buf.count, buf.dtype, int(peer), int(tag)), (buf,), result, post,
                            async_op)

    def recv_buffer(self, buf, peer, tag=0, async_op=False, result=None, post=None):
        return self._submit("recv", (buf.ptr, buf.count, buf.dtype, int(peer), int(tag)), (buf,), result, post,
                            async_op)

    def _same(self, send, recv, recv_count, what):
        if send.dtype != recv.dtype:
            raise InvalidArgument("%s: input is %s, output %s: the dtypes must match"
                                  % (what, _lib.DTYPE_NAMES[send.dtype], _lib.DTYPE_NAMES[recv.dtype]))
        if recv.count != recv_count:
            raise InvalidArgument("%s: output has %d elements, want %d" % (what, recv.count, recv_count))

    def _root(self, root, what):
        if not 0 <= int(root) < self._size:
            raise InvalidArgument("%s: root %d outside 0..%d" % (what, root, self._size - 1))

    # NumPy layer.

    def allreduce(self, x, op="sum", out=None, async_op=False):
        """Reduces x over all ranks into out (a new array when None; pass
        out=x for in place) and returns out."""
        if out is None:
            out = _np.empty_like(x)
        s, r = numpy_buffer(x, "allreduce input"), numpy_buffer(out, "allreduce output", True)
        return self.allreduce_buffers(s, r, op, async_op, out)

    def reduce(self, x, root=0, op="sum", out=None, async_op=False):
        """Reduces x over all ranks into root's out; out's contents are
        unspecified on the other ranks."""
        if out is None:
            out = _np.empty_like(x)
        s, r = numpy_buffer(x, "reduce input"), numpy_buffer(out, "reduce output", True)
        return self.reduce_buffers(s, r, op, root, async_op, out)

    def allgather(self, x, out=None, async_op=False):
        """Gathers every rank's x into out, shape (size,) + x.shape."""
        if out is None:
            out = _np.empty((self._size,) + x.shape, dtype=x.dtype)
        s, r = numpy_buffer(x, "allgather input"), numpy_buffer(out, "allgather output", True)
        return self.allgather_buffers(s, r, async_op, out)

    def reduce_scatter(self, x, op="sum", out=None, async_op=False):
        """Reduces x (size equal blocks) and leaves block rank in out:
        shape x.shape[1:] when x.shape[0] == size, else (x.size // size,)."""
        if out is None:
            if x.ndim > 1 and x.shape[0] == self._size:
                shape = x.shape[1:]
            elif x.size % self._size == 0:
                shape = (x.size // self._size,)
            else:
                raise InvalidArgument("reduce_scatter: %d elements do not split into %d equal blocks"
                                      % (x.size, self._size))
            out = _np.empty(shape, dtype=x.dtype)
        s, r = numpy_buffer(x, "reduce_scatter input"), numpy_buffer(out, "reduce_scatter output", True)
        return self.reduce_scatter_buffers(s, r, op, async_op, out)

    def broadcast(self, x, root=0, async_op=False):
        """Copies root's x into x on every rank (in place) and returns x."""
        b = numpy_buffer(x, "broadcast buffer", writable=True)
        return self.broadcast_buffer(b, root, async_op, x)

    def alltoall(self, x, out=None, async_op=False):
        """Sends block i of x (size equal blocks) to rank i; out's block i
        comes from rank i."""
        if out is None:
            out = _np.empty_like(x)
        s, r = numpy_buffer(x, "alltoall input"), numpy_buffer(out, "alltoall output", True)
        return self.alltoall_buffers(s, r, async_op, out)

    def barrier(self, async_op=False):
        """Returns once every rank entered the barrier."""
        return self._submit("barrier", (), (), None, None, async_op)

    def send(self, x, peer, tag=0, async_op=False):
        """Sends x to peer; matched by (peer, tag) with its recv."""
        return self.send_buffer(numpy_buffer(x, "send buffer"), peer, tag, async_op)

    def recv(self, out, peer, tag=0, async_op=False):
        """Receives into out (its size and dtype must match the send) from
        peer, and returns out."""
        return self.recv_buffer(numpy_buffer(out, "recv buffer", True), peer, tag, async_op, out)

    def allreduce_async(self, x, op="sum", out=None):
        return self.allreduce(x, op, out, async_op=True)

    def reduce_async(self, x, root=0, op="sum", out=None):
        return self.reduce(x, root, op, out, async_op=True)

    def allgather_async(self, x, out=None):
        return self.allgather(x, out, async_op=True)

    def reduce_scatter_async(self, x, op="sum", out=None):
        return self.reduce_scatter(x, op, out, async_op=True)

    def broadcast_async(self, x, root=0):
        return self.broadcast(x, root, async_op=True)

    def alltoall_async(self, x, out=None):
        return self.alltoall(x, out, async_op=True)

    def barrier_async(self):
        return self.barrier(async_op=True)

    def send_async(self, x, peer, tag=0):
        return self.send(x, peer, tag, async_op=True)

    def recv_async(self, out, peer, tag=0):
        return self.recv(out, peer, tag, async_op=True)

    # Lifecycle.

    def abort(self, reason=None):
        """Fails every pending and later operation of this communicator, on
        every rank, with Aborted."""
        _lib.check(_lib.lib().onet_comm_abort(self._live(), reason.encode() if reason else None))

    def stats(self):
        """The communicator's statistics (per operation counts, bytes,
        latency buckets, transport) as a dict."""
        so = _lib.lib()
        h = self._live()
        buf = ctypes.create_string_buffer(4096)
        n = so.onet_comm_stats_json(h, buf, len(buf))
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            n = so.onet_comm_stats_json(h, buf, len(buf))
        if n == 0:
            msg = _lib.last_error()
            if msg:
                raise _lib.OnetError("stats: " + msg)
        return json.loads(buf.value.decode() or "{}")

    def close(self):
        """Destroys the communicator; pending operations fail with Closed
        (they are reaped here so that no buffer is freed while in use).
        Closing twice is a no-op."""
        h, self._h = self._h, 0
        if not h:
            return
        st = _lib.lib().onet_comm_destroy(h)
        msg = _lib.last_error() if st != _lib.OK else ""
        with self._plock:
            pending = list(self._pending)
        for r in pending:
            try:
                r.wait()
            except OnetError:
                pass
        if st != _lib.OK:
            raise _lib.exception_for(st, "close: " + msg)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            if getattr(self, "_h", 0):
                self.close()
        except Exception:
            pass

    def __repr__(self):
        return "<opennetworks.Communicator rank %d of %d%s>" % (self._rank, self._size, "" if self._h else ", closed")
