"""torch.Tensor <-> libonet buffers: zero copy for contiguous CPU tensors,
a host staging copy otherwise (GPU tensors; non-contiguous ones where the
caller allows it)."""

import torch

from . import _lib
from ._lib import InvalidArgument, NotSupported
from .communicator import Buffer

TORCH_DTYPES = {
    torch.float32: _lib.FLOAT32, torch.float64: _lib.FLOAT64, torch.float16: _lib.FLOAT16,
    torch.bfloat16: _lib.BFLOAT16, torch.int8: _lib.INT8, torch.uint8: _lib.UINT8,
    torch.int32: _lib.INT32, torch.int64: _lib.INT64,
}


def dtype_code(t, what):
    code = TORCH_DTYPES.get(t.dtype)
    if code is None:
        raise NotSupported("%s: dtype %s is not supported (want one of %s)"
                           % (what, t.dtype, ", ".join(str(d) for d in TORCH_DTYPES)))
    return code


class Staged:
    """A tensor seen as a libonet buffer. buf is what the operation uses;
    when the tensor could not be used in place, buf is a contiguous host
    copy and copy_back() writes it into the tensor (call it after the
    operation, for outputs only)."""

    __slots__ = ("tensor", "host", "buf")

    def __init__(self, tensor, host, buf):
        self.tensor, self.host, self.buf = tensor, host, buf

    @property
    def staged(self):
        return self.host is not None

    def copy_back(self):
        if self.host is not None:
            with torch.no_grad():
                self.tensor.copy_(self.host.view(self.tensor.shape))


def stage(t, what, allow_noncontiguous=True, load=True):
    """Staged view of tensor t. A contiguous CPU tensor is used in place
    (its data_ptr, zero copy). A GPU tensor always goes through a host copy
    (load=False skips copying the contents in, for pure outputs). A
    non-contiguous CPU tensor is copied too when allow_noncontiguous,
    else InvalidArgument."""
    if not isinstance(t, torch.Tensor):
        raise InvalidArgument("%s: want a torch.Tensor, got %s" % (what, type(t).__name__))
    code = dtype_code(t, what)
    if t.is_sparse:
        raise NotSupported("%s: sparse tensors are not supported" % what)
    d = t.detach()
    if d.device.type == "cpu" and d.is_contiguous():
        return Staged(t, None, Buffer(d.data_ptr() if d.numel() else 0, d.numel(), code, d))
    if d.device.type == "cpu" and not allow_noncontiguous:
        raise InvalidArgument("%s: tensor is not contiguous (strides %s): pass tensor.contiguous()"
                              % (what, tuple(d.stride())))
    if load:
        host = d.to("cpu").contiguous()
        if host.data_ptr() == d.data_ptr():
            host = host.clone()
    else:
        host = torch.empty(d.shape, dtype=d.dtype, device="cpu")
    return Staged(t, host, Buffer(host.data_ptr() if host.numel() else 0, host.numel(), code, host))


def flat_output(tensors, what):
    """One contiguous host buffer standing for a list of equal tensors
    (allgather's output list); returns (buffer tensor, copy-back fn)."""
    if not tensors:
        raise InvalidArgument("%s: empty output list" % what)
    n = tensors[0].numel()
    for t in tensors:
        dtype_code(t, what)
        if t.numel() != n or t.dtype != tensors[0].dtype:
            raise InvalidArgument("%s: output tensors differ in size or dtype" % what)
    base = tensors[0]
    flat = torch.empty(n * len(tensors), dtype=base.dtype)

    def copy_back():
        with torch.no_grad():
            for i, t in enumerate(tensors):
                t.copy_(flat[i * n:(i + 1) * n].view(t.shape))
    return flat, copy_back


def reduce_op(op):
    """onet_op of a torch.distributed.ReduceOp (or a string); NotSupported
    for BAND/BOR/BXOR/PREMUL_SUM."""
    if isinstance(op, str) or isinstance(op, int) and not isinstance(op, bool) and not hasattr(op, "name"):
        from .communicator import op_code
        return op_code(op)
    import torch.distributed as dist
    R = dist.ReduceOp
    table = [(R.SUM, _lib.SUM), (R.PRODUCT, _lib.PROD), (R.MIN, _lib.MIN), (R.MAX, _lib.MAX)]
    if hasattr(R, "AVG"):
        table.append((R.AVG, _lib.AVG))
    for r, code in table:
        try:
            if op == r:
                return code
        except TypeError:  # pragma: no cover
            continue
    raise NotSupported("reduction %s is not supported by onet (sum, product, min, max, avg)" % (op,))
