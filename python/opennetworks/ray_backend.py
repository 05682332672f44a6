"""Ray integration.

1. ray.util.collective backend "ONET" (Ray versions that offer
   ``register_collective_backend``)::

       from opennetworks import ray_backend
       ray_backend.register()          # on the driver and in every actor
       collective.init_collective_group(world_size, rank, backend="ONET", group_name="g")
       collective.allreduce(numpy_array_or_cpu_tensor, group_name="g")

   Rank 0 of the group publishes onet's rendezvous address in Ray's internal
   KV store; every member then opens an onet Communicator. NumPy arrays and
   CPU torch tensors are used in place; GPU torch tensors go through host
   memory; cupy arrays are not supported.

2. Ray Train through the torch backend: pass ``onet_torch_config()`` as
   ``TorchTrainer(..., torch_config=onet_torch_config())``. It is Ray's
   TorchConfig with backend "onet" whose start-up imports
   ``opennetworks.torch_backend`` in every worker before Ray Train calls
   ``init_process_group``.

Without ray this module imports; register() and onet_torch_config() then
raise ImportError saying so. A Ray without register_collective_backend gets
a RuntimeError that points to Ray Train (2.) instead.
"""

import os
import socket
import time

from . import _lib
from ._lib import InvalidArgument, NotSupported
from .communicator import Buffer, Communicator, numpy_buffer

BACKEND = "ONET"
_group_cls = None


def _ray():
    try:
        import ray  # noqa: F401
        import ray.util.collective  # noqa: F401
    except ImportError as e:
        raise ImportError("opennetworks.ray_backend needs ray (pip install 'ray[default]'): %s" % e) from e
    return ray


def _register_fn():
    _ray()
    try:
        from ray.util.collective.backend_registry import register_collective_backend
        return register_collective_backend
    except ImportError:
        pass
    import ray.util.collective as col
    fn = getattr(col, "register_collective_backend", None)
    if fn is None:
        import ray
        raise RuntimeError("ray %s has no ray.util.collective register_collective_backend: this Ray cannot take "
                           "a custom collective backend. Use Ray Train through the torch backend instead: "
                           "TorchTrainer(..., torch_config=opennetworks.ray_backend.onet_torch_config())"
                           % ray.__version__)
    return fn


def register():
    """Registers the "ONET" ray.util.collective backend in this process
    (call it on the driver and in every actor; idempotent)."""
    fn = _register_fn()
    cls = group_class()
    try:
        from ray.util.collective.backend_registry import get_backend_registry
        reg = get_backend_registry()
        if getattr(reg, "is_registered", None) and reg.is_registered(BACKEND):
            return cls
        if BACKEND in getattr(reg, "_map", {}):
            return cls
    except ImportError:
        pass
    fn(BACKEND, cls)
    return cls


def _buffer(x, what, writable):
    """(Buffer, copy_back) for a NumPy array or a torch tensor."""
    mod = type(x).__module__
    if mod.startswith("torch"):
        from . import _torch
        s = _torch.stage(x, what, allow_noncontiguous=True, load=True)
        return s.buf, (s.copy_back if writable else None)
    if mod.startswith("cupy"):
        raise NotSupported("%s: cupy arrays are not supported by onet: pass numpy arrays or torch tensors" % what)
    return numpy_buffer(x, what, writable), None


def _ray_op(op):
    if op is None:
        return _lib.SUM
    name = getattr(op, "name", str(op)).upper()
    table = {"SUM": _lib.SUM, "PRODUCT": _lib.PROD, "MIN": _lib.MIN, "MAX": _lib.MAX, "AVG": _lib.AVG}
    if name not in table:
        raise NotSupported("reduction %s is not supported by onet" % (op,))
    return table[name]


def _rendezvous(group_name, rank, timeout_s):
    """Rank 0 publishes host:port in Ray's internal KV; the others read it."""
    from ray.experimental import internal_kv as kv
    key = "onet/rendezvous/%s" % group_name
    if rank == 0:
        import ray
        host = os.environ.get("ONET_MASTER_ADDR") or ray.util.get_node_ip_address()
        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        kv._internal_kv_put(key, ("%s:%d" % (host, port)).encode(), overwrite=True)
        return host, port, key
    deadline = time.time() + timeout_s
    while True:
        v = kv._internal_kv_get(key)
        if v:
            host, _, port = v.decode().rpartition(":")
            return host, int(port), key
        if time.time() > deadline:
            raise _lib.Timeout("ray group %s: rank 0 did not publish onet's rendezvous within %.0f s"
                               % (group_name, timeout_s))
        time.sleep(0.05)


def group_class():
    """The BaseGroup subclass for ray.util.collective (built on first use,
    since it needs ray)."""
    global _group_cls
    if _group_cls is not None:
        return _group_cls
    _ray()
    from ray.util.collective.collective_group.base_collective_group import BaseGroup

    class OnetGroup(BaseGroup):
        """A ray.util.collective group over an onet Communicator."""

        def __init__(self, world_size, rank, group_name, *args, **kwargs):
            super().__init__(world_size, rank, group_name)
            timeout_s = float(os.environ.get("ONET_RAY_TIMEOUT_S", "120"))
            host, port, self._key = _rendezvous(group_name, rank, timeout_s)
            opts = os.environ.get("ONET_OPTIONS", "")
            extra = "connect_timeout_ms=%d;prefix=ray-%s" % (int(timeout_s * 1000), group_name)
            self._comm = Communicator(rank, world_size, host, port, (opts + ";" + extra) if opts else extra)

        @classmethod
        def backend(cls):
            return BACKEND

        @classmethod
        def check_backend_availability(cls):
            try:
                _lib.lib()
                return True
            except ImportError:
                return False

        def destroy_group(self):
            self._comm.close()
            if self.rank == 0:
                try:
                    from ray.experimental import internal_kv as kv
                    kv._internal_kv_del(self._key)
                except Exception:
                    pass

        @staticmethod
        def _one(tensors, what):
            if isinstance(tensors, (list, tuple)):
                if len(tensors) != 1:
                    raise InvalidArgument("%s: one tensor per process (got %d)" % (what, len(tensors)))
                return tensors[0]
            return tensors

        def allreduce(self, tensors, allreduce_options=None):
            t = self._one(tensors, "allreduce")
            b, back = _buffer(t, "allreduce", True)
            self._comm.allreduce_buffers(b, b, _ray_op(getattr(allreduce_options, "reduceOp", None)))
            if back:
                back()

        def barrier(self, barrier_options=None):
            self._comm.barrier()

        def reduce(self, tensors, reduce_options=None):
            t = self._one(tensors, "reduce")
            b, back = _buffer(t, "reduce", True)
            root = getattr(reduce_options, "root_rank", 0)
            self._comm.reduce_buffers(b, b, _ray_op(getattr(reduce_options, "reduceOp", None)), root)
            if back:
                back()

        def broadcast(self, tensors, broadcast_options=None):
            t = self._one(tensors, "broadcast")
            b, back = _buffer(t, "broadcast", True)
            self._comm.broadcast_buffer(b, getattr(broadcast_options, "root_rank", 0))
            if back:
                back()

        def allgather(self, tensor_lists, tensors, allgather_options=None):
            t = self._one(tensors, "allgather")
            outs = tensor_lists[0] if tensor_lists and isinstance(tensor_lists[0], (list, tuple)) else tensor_lists
            if len(outs) != self.world_size:
                raise InvalidArgument("allgather: %d outputs, want %d" % (len(outs), self.world_size))
            import numpy as np
            b, _ = _buffer(t, "allgather input", False)
            flat = np.empty(b.count * self.world_size, dtype=_np_dtype(b.dtype))
            self._comm.allgather_buffers(b, Buffer(flat.ctypes.data, flat.size, b.dtype, flat))
            for i, o in enumerate(outs):
                _assign(o, flat[i * b.count:(i + 1) * b.count])

        def reducescatter(self, tensors, tensor_lists, reducescatter_options=None):
            t = self._one(tensors, "reducescatter")
            ins = tensor_lists[0] if tensor_lists and isinstance(tensor_lists[0], (list, tuple)) else tensor_lists
            import numpy as np
            parts = [np.ascontiguousarray(_to_numpy(i)).reshape(-1) for i in ins]
            flat = np.concatenate(parts)
            b, back = _buffer(t, "reducescatter output", True)
            self._comm.reduce_scatter_buffers(numpy_buffer(flat, "reducescatter input"), b,
                                              _ray_op(getattr(reducescatter_options, "reduceOp", None)))
            if back:
                back()

        def send(self, tensors, send_options):
            t = self._one(tensors, "send")
            b, _ = _buffer(t, "send", False)
            self._comm.send_buffer(b, send_options.dst_rank)

        def recv(self, tensors, recv_options):
            t = self._one(tensors, "recv")
            b, back = _buffer(t, "recv", True)
            self._comm.recv_buffer(b, recv_options.src_rank)
            if back:
                back()

    _group_cls = OnetGroup
    return OnetGroup


def _np_dtype(code):
    import numpy as np
    return {_lib.FLOAT32: np.float32, _lib.FLOAT64: np.float64, _lib.FLOAT16: np.float16, _lib.INT8: np.int8,
            _lib.UINT8: np.uint8, _lib.INT32: np.int32, _lib.INT64: np.int64, _lib.BFLOAT16: np.uint16}[code]


def _to_numpy(x):
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return x


def _assign(out, flat_part):
    if type(out).__module__.startswith("torch"):
        import torch
        src = torch.from_numpy(flat_part.copy())
        if out.dtype == torch.bfloat16:
            src = src.view(torch.bfloat16)
        with torch.no_grad():
            out.copy_(src.view(out.shape))
    else:
        out[...] = flat_part.view(out.dtype).reshape(out.shape)


def onet_torch_config(**kw):
    """Ray Train's TorchConfig with backend "onet": its start-up imports
    opennetworks.torch_backend in every worker, then Ray Train's usual
    init_process_group runs with backend "onet"."""
    _ray()
    from ray.train.torch.config import TorchConfig, _TorchBackend

    class _OnetTorchBackend(_TorchBackend):
        def on_start(self, worker_group, backend_config):
            def _import():
                import opennetworks.torch_backend  # noqa: F401
            worker_group.execute(_import)
            super().on_start(worker_group, backend_config)

    class OnetTorchConfig(TorchConfig):
        @property
        def backend_cls(self):
            return _OnetTorchBackend

    kw.setdefault("backend", "onet")
    return OnetTorchConfig(**kw)
