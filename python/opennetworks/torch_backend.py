"""torch.distributed backend "onet".

Importing this module (``import opennetworks`` does it when torch is
installed) registers the backend, so that::

    import opennetworks.torch_backend  # noqa: F401
    torch.distributed.init_process_group("onet")

works under torchrun (env:// rendezvous) and with any init_method. The
backend is a Python ProcessGroup (ProcessGroupOnet) over one onet
communicator per process group. Its rendezvous rides on torch's store:
rank 0 of the group picks a free port on MASTER_ADDR's interface and
publishes "host:port" under the group's store prefix; every rank then
creates the communicator with explicit rank, size and master.

Environment: ONET_ADDR (this rank's data address, onet's addr option),
ONET_MASTER_ADDR (the address rank 0 serves onet's store on; default
MASTER_ADDR, else this host's name), ONET_OPTIONS (extra "k=v;k=v" options,
e.g. "transport=tcp;shm=1"), ONET_TRANSPORT.

Tensors: contiguous CPU tensors are used in place; non-contiguous and GPU
(CUDA) tensors go through a host copy and are written back on completion.
Supported dtypes: float32/64, float16, bfloat16, int8, uint8, int32, int64;
reductions SUM, PRODUCT, MIN, MAX, AVG. Works with torch 1.13 and 2.x.
"""

import datetime
import inspect
import itertools
import os
import queue
import socket
import threading
import weakref

import torch
import torch.distributed as dist

from . import _lib, _torch
from ._lib import InvalidArgument, NotSupported
from .communicator import Communicator, options_string

BACKEND_NAME = "onet"

_Work = getattr(dist, "Work", None) or getattr(dist, "_Work")
try:
    from torch._C._distributed_c10d import _create_work_from_future
except ImportError:  # pragma: no cover
    _create_work_from_future = None
_group_ids = itertools.count()
# alltoall with uneven splits and friends run over send/recv with tags from
# this space, far above what users pass.
_INTERNAL_TAG = 0x3F00000000000000  # onet tags end at 2**62-1


class _Pending:
    """One operation's completion: the onet requests, the copy-back of
    staged tensors, and the torch Future that the Work torch gets wraps.
    The completer thread settles it (with the output tensors or the error)."""

    __slots__ = ("requests", "result", "post", "future")

    def __init__(self, requests, result, post, future):
        self.requests, self.result, self.post, self.future = requests, result, post, future

    def complete(self):
        try:
            for r in self.requests:
                r.wait()
            if self.post is not None:
                self.post()
        except Exception as e:  # the operation's error, or a copy-back failure
            self.future.set_exception(e)
        else:
            self.future.set_result(self.result)
        self.requests = self.post = None


class _Completer(threading.Thread):
    """Completes the operations of one process group in issue order."""

    def __init__(self):
        super().__init__(name="onet-completer", daemon=True)
        self.q = queue.Queue()
        _completers.add(self)

    def put(self, p):
        self.q.put(p)

    def stop(self, timeout=None):
        self.q.put(None)
        if timeout is not None and self.is_alive() and self is not threading.current_thread():
            self.join(timeout)

    def run(self):
        while True:
            p = self.q.get()
            if p is None:
                return
            p.complete()


_completers = weakref.WeakSet()


def _stop_completers():
    """Stops every completer before the interpreter finalizes: a daemon
    thread still inside Future.set_result (C++) when finalization takes the
    GIL away is ended with pthread_exit, whose forced unwind through C++
    frames aborts the process ("terminate called without an active
    exception")."""
    for c in list(_completers):
        c.stop(timeout=10)


if hasattr(threading, "_register_atexit"):  # runs before daemon threads are cut off
    threading._register_atexit(_stop_completers)
else:  # pragma: no cover
    import atexit
    atexit.register(_stop_completers)


if _create_work_from_future is None:  # pragma: no cover (every torch >= 1.13 has it)
    class _FutureWork(_Work):
        """Fallback Work over a future; kept alive by the process group
        until completion, since C++ holds only the pybind base."""

        def __init__(self, fut):
            super().__init__()
            self._fut = fut

        def wait(self, timeout=None):
            self._fut.wait()
            return True

        def is_completed(self):
            return self._fut.done()

        def is_success(self):
            return self._fut.done()

        def get_future(self):
            return self._fut

    _live_works = []

    def _work_from_future(fut):
        w = _FutureWork(fut)
        _live_works.append(w)
        fut.add_done_callback(lambda _: _live_works.remove(w))
        return w
else:
    _work_from_future = _create_work_from_future


def OnetWork(pg, requests, result, post=None):
    """The Work torch gets back: a C++ Work wrapping a torch Future that the
    group's completer thread completes with the output tensors (after the
    host copy-back of staged tensors) or sets to the operation's error.

    A Python subclass of Work would lose its Python half (and hang in
    wait()) once torch's C++ side holds it alone, as DDP does; a
    future-wrapping Work has no Python half.

    A collective of at most ONET_TORCH_INLINE_BYTES (default 64 KiB) runs
    as one blocking call before this returns (async_op=True then gets a
    completed Work); larger ones, and send/recv always, complete in the
    background."""
    requests = [r for r in requests if r is not None]  # blocking calls return None
    fut = torch.futures.Future()
    p = _Pending(requests, result, post, fut)
    if not requests:
        # Small collectives ran as blocking calls (ProcessGroupOnet._bg):
        # settle here, in the caller's thread.
        p.complete()
    else:
        pg._completer.put(p)
    return _work_from_future(fut)


def _timeout_ms(timeout):
    if isinstance(timeout, datetime.timedelta):
        ms = int(timeout.total_seconds() * 1000)
        return ms if ms > 0 else None
    return None


def _local_address(host):
    """True when host can be bound here (it is one of this host's addresses)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


def _free_port(host):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, 0))
        except OSError:
            s.bind(("", 0))
        return s.getsockname()[1]


def _master_host():
    h = os.environ.get("ONET_MASTER_ADDR") or os.environ.get("MASTER_ADDR")
    if not h:
        try:
            h = socket.gethostbyname(socket.gethostname())
        except OSError:
            h = "127.0.0.1"
    try:
        return socket.getaddrinfo(h, None, type=socket.SOCK_STREAM)[0][4][0]
    except OSError:
        return h


class ProcessGroupOnet(dist.ProcessGroup):
    """A torch.distributed ProcessGroup over an onet Communicator. Created by
    torch through the registered backend; see the module docstring."""

    def __init__(self, store, rank, size, timeout=None, options=None):
        super().__init__(rank, size)
        self._completer = _Completer()
        self._completer.start()
        self._inline_bytes = int(os.environ.get("ONET_TORCH_INLINE_BYTES", 64 << 10))
        self._seq = 0
        self._seq_lock = threading.Lock()
        gid = next(_group_ids)
        key = "onet/master"
        if rank == 0:
            host = _master_host()
            port = _free_port(host)
            store.set(key, "%s:%d" % (host, port))
        else:
            v = store.get(key)
            v = v.decode() if isinstance(v, bytes) else str(v)
            host, _, port = v.rpartition(":")
            port = int(port)
            host = host.strip("[]")
        opts = {}
        ms = _timeout_ms(timeout)
        if ms:
            opts["timeout_ms"] = ms
            opts["connect_timeout_ms"] = ms
        if os.environ.get("ONET_ADDR"):
            opts["addr"] = os.environ["ONET_ADDR"]
        elif rank == 0 and _local_address(host) and not host.startswith("127.") and host != "::1":
            opts["addr"] = host  # rank 0's data address: MASTER_ADDR's interface
        opts["prefix"] = "torch%d" % gid
        extra = options_string(os.environ.get("ONET_OPTIONS", ""), **(options or {}))
        s = options_string(opts)
        if extra:
            s = s + ";" + extra
        self._comm = Communicator(rank, size, host, port, s)

    # Names torch asks for (1.13 and 2.x).
    def getBackendName(self):
        return BACKEND_NAME

    def name(self):
        return BACKEND_NAME

    def _get_backend_name(self):
        return BACKEND_NAME

    @property
    def communicator(self):
        """The onet Communicator underneath."""
        return self._comm

    def _bg(self, tensors):
        """Whether a collective over tensors runs in the background (a
        request completed by the completer thread) rather than as one
        blocking call here: small ones block, since onet's non-blocking
        path plus the thread hop cost more than they take."""
        return _nbytes(tensors) > self._inline_bytes

    def _next_tag(self):
        with self._seq_lock:
            self._seq += 1
            return _INTERNAL_TAG + self._seq

    # Collectives. Every method issues onet's non-blocking call at once (so
    # the issue order is the caller's) and returns an OnetWork.

    def allreduce(self, tensors, opts=None):
        op = _torch.reduce_op(opts.reduceOp if opts is not None else dist.ReduceOp.SUM)
        reqs, staged = [], []
        for t in _as_list(tensors, "allreduce"):
            s = _torch.stage(t, "allreduce")
            reqs.append(self._comm.allreduce_buffers(s.buf, s.buf, op, async_op=self._bg(tensors)))
            staged.append(s)
        return OnetWork(self, reqs, tensors, _copy_back(staged))

    def broadcast(self, tensors, opts=None):
        root = opts.rootRank if opts is not None else 0
        tensors = _as_list(tensors, "broadcast")
        reqs, staged = [], []
        for t in tensors:
            s = _torch.stage(t, "broadcast", load=(self.rank() == root))
            reqs.append(self._comm.broadcast_buffer(s.buf, root, async_op=self._bg(tensors)))
            staged.append(s)
        return OnetWork(self, reqs, tensors, _copy_back(staged))

    def allgather(self, output_tensors, input_tensors, opts=None):
        input_tensors = _as_list(input_tensors, "allgather")
        if len(output_tensors) != len(input_tensors):
            raise InvalidArgument("allgather: %d output lists for %d inputs" % (len(output_tensors), len(input_tensors)))
        reqs, posts, keep = [], [], []
        for outs, t in zip(output_tensors, input_tensors):
            if len(outs) != self.size():
                raise InvalidArgument("allgather: %d output tensors, want one per rank (%d)" % (len(outs), self.size()))
            for o in outs:
                if o.numel() != t.numel() or o.dtype != t.dtype:
                    raise InvalidArgument("allgather: output %s %s does not match input %s %s"
                                          % (tuple(o.shape), o.dtype, tuple(t.shape), t.dtype))
            s = _torch.stage(t, "allgather input")
            flat, back = _torch.flat_output(outs, "allgather output")
            fo = _torch.stage(flat, "allgather output")
            reqs.append(self._comm.allgather_buffers(s.buf, fo.buf, async_op=self._bg(outs)))
            posts.append(back)
            keep.append((s, fo))
        return OnetWork(self, reqs, output_tensors, _run_all(posts))

    def _allgather_base(self, output, input, opts=None):
        if output.numel() != input.numel() * self.size() or output.dtype != input.dtype:
            raise InvalidArgument("_allgather_base: output has %d %s elements, want %d x %d %s"
                                  % (output.numel(), output.dtype, self.size(), input.numel(), input.dtype))
        s = _torch.stage(input, "_allgather_base input")
        o = _torch.stage(output, "_allgather_base output", load=False)
        req = self._comm.allgather_buffers(s.buf, o.buf, async_op=self._bg([output]))
        return OnetWork(self, [req], output, o.copy_back)

    def reduce_scatter(self, output_tensors, input_tensors, opts=None):
        op = _torch.reduce_op(opts.reduceOp if opts is not None else dist.ReduceOp.SUM)
        output_tensors = _as_list(output_tensors, "reduce_scatter")
        if len(output_tensors) != len(input_tensors):
            raise InvalidArgument("reduce_scatter: %d outputs for %d input lists"
                                  % (len(output_tensors), len(input_tensors)))
        reqs, staged = [], []
        for out, ins in zip(output_tensors, input_tensors):
            if len(ins) != self.size():
                raise InvalidArgument("reduce_scatter: %d input tensors, want one per rank (%d)" % (len(ins), self.size()))
            for i in ins:
                if i.numel() != out.numel() or i.dtype != out.dtype:
                    raise InvalidArgument("reduce_scatter: input %s %s does not match output %s %s"
                                          % (tuple(i.shape), i.dtype, tuple(out.shape), out.dtype))
            flat = torch.cat([i.detach().reshape(-1).cpu() for i in ins])
            s = _torch.stage(flat, "reduce_scatter input")
            o = _torch.stage(out, "reduce_scatter output", load=False)
            reqs.append(self._comm.reduce_scatter_buffers(s.buf, o.buf, op, async_op=self._bg(ins)))
            staged.append(o)
        return OnetWork(self, reqs, output_tensors, _copy_back(staged))

    def _reduce_scatter_base(self, output, input, opts=None):
        op = _torch.reduce_op(opts.reduceOp if opts is not None else dist.ReduceOp.SUM)
        if input.numel() != output.numel() * self.size() or output.dtype != input.dtype:
            raise InvalidArgument("_reduce_scatter_base: input has %d %s elements, want %d x %d %s"
                                  % (input.numel(), input.dtype, self.size(), output.numel(), output.dtype))
        s = _torch.stage(input, "_reduce_scatter_base input")
        o = _torch.stage(output, "_reduce_scatter_base output", load=False)
        req = self._comm.reduce_scatter_buffers(s.buf, o.buf, op, async_op=self._bg([input]))
        return OnetWork(self, [req], output, o.copy_back)

    def barrier(self, opts=None):
        return OnetWork(self, [self._comm.barrier(async_op=False)], None)

    def send(self, tensors, dst, tag=0):
        reqs = []
        for t in _as_list(tensors, "send"):
            s = _torch.stage(t, "send")
            reqs.append(self._comm.send_buffer(s.buf, dst, tag, async_op=True))
        return OnetWork(self, reqs, tensors)

    def recv(self, tensors, src, tag=0):
        reqs, staged = [], []
        for t in _as_list(tensors, "recv"):
            s = _torch.stage(t, "recv", load=False)
            reqs.append(self._comm.recv_buffer(s.buf, src, tag, async_op=True))
            staged.append(s)
        return OnetWork(self, reqs, tensors, _copy_back(staged))

    def recv_anysource(self, tensors, tag=0):
        raise NotSupported("onet: recv from any source is not supported: name the source rank")

    def alltoall_base(self, output, input, output_split_sizes, input_split_sizes, opts=None):
        n = self.size()
        if output.dtype != input.dtype:
            raise InvalidArgument("alltoall_base: input %s, output %s" % (input.dtype, output.dtype))
        if not output_split_sizes and not input_split_sizes:
            if input.numel() != output.numel() or input.numel() % n:
                raise InvalidArgument("alltoall_base: input %d and output %d elements: want equal, divisible by %d"
                                      % (input.numel(), output.numel(), n))
            s = _torch.stage(input, "alltoall_base input")
            o = _torch.stage(output, "alltoall_base output", load=False)
            req = self._comm.alltoall_buffers(s.buf, o.buf, async_op=self._bg([input]))
            return OnetWork(self, [req], output, o.copy_back)
        return self._alltoall_uneven(output, input, output_split_sizes, input_split_sizes)

    def _alltoall_uneven(self, output, input, out_splits, in_splits):
        """Uneven splits over pairwise send/recv (rows of dim 0)."""
        n, me = self.size(), self.rank()
        rows_in = input.shape[0] if input.dim() else input.numel()
        rows_out = output.shape[0] if output.dim() else output.numel()
        in_splits = list(in_splits) or [rows_in // n] * n
        out_splits = list(out_splits) or [rows_out // n] * n
        if len(in_splits) != n or len(out_splits) != n or sum(in_splits) != rows_in or sum(out_splits) != rows_out:
            raise InvalidArgument("alltoall_base: splits %s / %s do not cover %d / %d rows on %d ranks"
                                  % (in_splits, out_splits, rows_in, rows_out, n))
        row_in = input.numel() // max(rows_in, 1)
        row_out = output.numel() // max(rows_out, 1)
        s = _torch.stage(input, "alltoall_base input")
        o = _torch.stage(output, "alltoall_base output", load=False)
        tag = self._next_tag()
        reqs = []
        ioff = [sum(in_splits[:i]) * row_in for i in range(n)]
        ooff = [sum(out_splits[:i]) * row_out for i in range(n)]
        isz = _lib.DTYPE_SIZES[s.buf.dtype]
        from .communicator import Buffer
        for k in range(1, n):
            to, frm = (me + k) % n, (me - k) % n
            reqs.append(self._comm.send_buffer(
                Buffer(s.buf.ptr + ioff[to] * isz, in_splits[to] * row_in, s.buf.dtype, s), to, tag, async_op=True))
            reqs.append(self._comm.recv_buffer(
                Buffer(o.buf.ptr + ooff[frm] * isz, out_splits[frm] * row_out, o.buf.dtype, o), frm, tag,
                async_op=True))
        ctypes_memmove(o.buf.ptr + ooff[me] * isz, s.buf.ptr + ioff[me] * isz, in_splits[me] * row_in * isz)
        return OnetWork(self, reqs, output, o.copy_back)

    def abort(self, reason=None):
        """Aborts the communicator (every rank's pending operations fail)."""
        self._comm.abort(reason)

    def shutdown(self):
        """Completes the pending operations and closes the communicator
        (collectively: every rank of the group calls it)."""
        self._completer.stop(timeout=60)
        self._comm.close()

    def __del__(self):
        try:
            self._completer.stop()
        except Exception:
            pass


def ctypes_memmove(dst, src, n):
    if n:
        import ctypes
        ctypes.memmove(dst, src, n)


def _as_list(tensors, what):
    if isinstance(tensors, torch.Tensor):
        return [tensors]
    if not tensors:
        raise InvalidArgument("%s: no tensors" % what)
    return tensors


def _nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def _copy_back(staged):
    staged = [s for s in staged if s.staged]
    if not staged:
        return None

    def run():
        for s in staged:
            s.copy_back()
    return run


def _run_all(fns):
    def run():
        for f in fns:
            f()
    return run


def _create_pg(store, rank, size, timeout):
    """The creator torch calls: (store, rank, size, timeout) in 1.13 and 2.x."""
    return ProcessGroupOnet(store, rank, size, timeout)


def _create_pg_extended(common_opts, backend_opts=None):
    """The extended creator (_DistributedBackendOptions)."""
    return ProcessGroupOnet(common_opts.store, common_opts.group_rank, common_opts.group_size, common_opts.timeout)


def register():
    """Registers the "onet" backend with torch.distributed (idempotent)."""
    if BACKEND_NAME.upper() in getattr(dist.Backend, "_plugins", {}):
        return
    kw = {}
    try:
        if "devices" in inspect.signature(dist.Backend.register_backend).parameters:
            kw["devices"] = ["cpu", "cuda"]
    except (TypeError, ValueError):  # pragma: no cover
        pass
    dist.Backend.register_backend(BACKEND_NAME, _create_pg, **kw)


if dist.is_available():
    register()
