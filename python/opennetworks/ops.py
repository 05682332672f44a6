"""Framework-level collective ops over a Communicator: NumPy, PyTorch and
JAX, and get_collective_ops() that picks one."""

import sys
import threading

from ._lib import InvalidArgument, NotSupported
from .communicator import Communicator

_default = None
_default_lock = threading.Lock()


def init(rank=None, size=None, master_addr=None, master_port=None, options=None, **kw):
    """Creates the process's default communicator (from the environment
    unless told otherwise) and returns it; a second call returns the first
    one."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Communicator(rank, size, master_addr, master_port, options, **kw)
        return _default


def get_default_communicator():
    """The default communicator, created from the environment on first use."""
    return _default if _default is not None else init()


def shutdown():
    """Closes the default communicator (if any)."""
    global _default
    with _default_lock:
        c, _default = _default, None
    if c is not None:
        c.close()


class NumPyCollectiveOps:
    """allreduce, allgather and broadcast on NumPy arrays (zero copy)."""

    framework = "numpy"

    def __init__(self, communicator=None):
        self.comm = communicator or get_default_communicator()

    @property
    def rank(self):
        return self.comm.rank

    @property
    def size(self):
        return self.comm.size

    def allreduce(self, array, op="sum"):
        """A new array: the reduction of array over all ranks."""
        return self.comm.allreduce(array, op)

    def allgather(self, array):
        """Every rank's array, in rank order (views of one gathered array)."""
        return list(self.comm.allgather(array))

    def broadcast(self, array, src):
        """src's array, written into array in place and returned."""
        return self.comm.broadcast(array, src)

    def barrier(self):
        self.comm.barrier()


class PyTorchCollectiveOps:
    """allreduce, allgather and broadcast on torch.Tensor.

    Contiguous CPU tensors are used in place through data_ptr() (zero
    copy); float32/64, float16, bfloat16, int8, uint8, int32 and int64 are
    supported, other dtypes raise NotSupported, non-contiguous tensors
    InvalidArgument. GPU tensors are copied to host memory, reduced there,
    and copied back (onet moves host memory only)."""

    framework = "torch"

    def __init__(self, communicator=None):
        import torch  # noqa: F401  (fail here, clearly, without torch)
        from . import _torch
        self._t = _torch
        self.comm = communicator or get_default_communicator()

    @property
    def rank(self):
        return self.comm.rank

    @property
    def size(self):
        return self.comm.size

    def allreduce(self, tensor, op="sum"):
        """Reduces tensor over all ranks in place and returns it."""
        s = self._t.stage(tensor, "allreduce", allow_noncontiguous=False)
        self.comm.allreduce_buffers(s.buf, s.buf, self._t.reduce_op(op))
        s.copy_back()
        return tensor

    def allgather(self, tensor):
        """Every rank's tensor, in rank order, as new tensors on tensor's
        device."""
        import torch
        s = self._t.stage(tensor, "allgather", allow_noncontiguous=False)
        out = torch.empty((self.comm.size,) + tuple(tensor.shape), dtype=tensor.dtype)
        o = self._t.stage(out, "allgather output")
        self.comm.allgather_buffers(s.buf, o.buf)
        return [t.to(tensor.device) for t in out.unbind(0)]

    def broadcast(self, tensor, src):
        """src's tensor, written into tensor in place and returned."""
        s = self._t.stage(tensor, "broadcast", allow_noncontiguous=False)
        self.comm.broadcast_buffer(s.buf, src)
        s.copy_back()
        return tensor

    def barrier(self):
        self.comm.barrier()


class JAXCollectiveOps:
    """allreduce, allgather and broadcast on JAX arrays. JAX arrays are
    immutable and may live on an accelerator: each call copies the array to
    a host NumPy buffer, runs the collective there, and returns new JAX
    arrays (jax.numpy.asarray, on the default device)."""

    framework = "jax"

    def __init__(self, communicator=None):
        try:
            import jax.numpy as jnp
        except ImportError as e:
            raise ImportError("JAXCollectiveOps needs jax (pip install jax): %s" % e) from e
        import numpy as np
        self._jnp, self._np = jnp, np
        self.comm = communicator or get_default_communicator()

    @property
    def rank(self):
        return self.comm.rank

    @property
    def size(self):
        return self.comm.size

    def _host(self, array, what):
        h = self._np.array(array, copy=True, order="C")  # writable host copy
        if h.dtype.name not in ("float32", "float64", "float16", "bfloat16", "int8", "uint8", "int32", "int64"):
            raise NotSupported("%s: dtype %s is not supported" % (what, h.dtype))
        return h

    def allreduce(self, array, op="sum"):
        h = self._host(array, "allreduce")
        self.comm.allreduce(h, op, out=h)
        return self._jnp.asarray(h)

    def allgather(self, array):
        h = self._host(array, "allgather")
        g = self.comm.allgather(h)
        return [self._jnp.asarray(x) for x in g]

    def broadcast(self, array, src):
        h = self._host(array, "broadcast")
        self.comm.broadcast(h, src)
        return self._jnp.asarray(h)

    def barrier(self):
        self.comm.barrier()


def get_collective_ops(framework="auto", communicator=None):
    """The collective ops for a framework: "torch", "jax", "numpy", or
    "auto" (torch when it is imported, else jax when it is imported, else
    numpy). communicator defaults to the process's default communicator
    (init(), from the environment)."""
    fw = (framework or "auto").lower()
    if fw == "auto":
        fw = "torch" if "torch" in sys.modules else "jax" if "jax" in sys.modules else "numpy"
    if fw in ("torch", "pytorch"):
        return PyTorchCollectiveOps(communicator)
    if fw == "jax":
        return JAXCollectiveOps(communicator)
    if fw == "numpy":
        return NumPyCollectiveOps(communicator)
    raise InvalidArgument("framework %r: want torch, jax, numpy or auto" % (framework,))
