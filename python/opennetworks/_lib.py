"""ctypes bindings of libonet.so (capi/onet.h) and the status -> exception map.

The library is found, in order, at:

1. ``$ONET_LIB`` (a path to the .so),
2. ``libonet.so`` inside this package's directory (an installed wheel that
   ships it as package data),
3. ``build/libonet.so`` of the source checkout this package lives in
   (``python/opennetworks`` -> ``../../build/libonet.so``).

It is loaded on first use, not at import, so that ``import opennetworks``
(and the torch backend registration) works on a machine that has not built
the library yet; the first call then raises :class:`LibraryNotFound`, an
``ImportError`` that says to run ``make libonet``.
"""

import ctypes
import os
import threading

ABI_VERSION = 1

# onet_status values (onet.h); part of the ABI.
OK = 0
ERR_INVALID = 1
ERR_TIMEOUT = 2
ERR_PEER_LOST = 3
ERR_ABORTED = 4
ERR_CLOSED = 5
ERR_NOT_SUPPORTED = 6
ERR_INTERNAL = 7

STATUS_NAMES = {
    OK: "ONET_OK",
    ERR_INVALID: "ONET_ERR_INVALID",
    ERR_TIMEOUT: "ONET_ERR_TIMEOUT",
    ERR_PEER_LOST: "ONET_ERR_PEER_LOST",
    ERR_ABORTED: "ONET_ERR_ABORTED",
    ERR_CLOSED: "ONET_ERR_CLOSED",
    ERR_NOT_SUPPORTED: "ONET_ERR_NOT_SUPPORTED",
    ERR_INTERNAL: "ONET_ERR_INTERNAL",
}

# onet_dtype values.
FLOAT32, FLOAT64, FLOAT16, BFLOAT16, INT8, UINT8, INT32, INT64 = range(8)
DTYPE_NAMES = {
    FLOAT32: "float32", FLOAT64: "float64", FLOAT16: "float16", BFLOAT16: "bfloat16",
    INT8: "int8", UINT8: "uint8", INT32: "int32", INT64: "int64",
}
DTYPE_SIZES = {FLOAT32: 4, FLOAT64: 8, FLOAT16: 2, BFLOAT16: 2, INT8: 1, UINT8: 1, INT32: 4, INT64: 8}

# onet_op values.
SUM, PROD, MIN, MAX, AVG = range(5)
OPS = {"sum": SUM, "prod": PROD, "product": PROD, "min": MIN, "max": MAX, "avg": AVG, "mean": AVG}


class OnetError(RuntimeError):
    """An error returned by libonet. ``status`` is the onet_status code,
    ``status_name`` its name ("ONET_ERR_TIMEOUT"); the message is the Go
    error text (onet_last_error) or, for checks done in Python before the
    call, what was wrong with the argument."""

    status = ERR_INTERNAL

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def status_name(self):
        return STATUS_NAMES.get(self.status, "ONET_ERR_UNKNOWN")


class InvalidArgument(OnetError, ValueError):
    """ONET_ERR_INVALID: a bad argument, unknown handle or size mismatch
    (also raised in Python for non-contiguous arrays and shape errors)."""

    status = ERR_INVALID


class Timeout(OnetError, TimeoutError):
    """ONET_ERR_TIMEOUT: the operation or the rendezvous timed out."""

    status = ERR_TIMEOUT


class PeerLost(OnetError, ConnectionError):
    """ONET_ERR_PEER_LOST: a peer closed its connection or vanished."""

    status = ERR_PEER_LOST


class Aborted(OnetError):
    """ONET_ERR_ABORTED: Communicator.abort was called on this or another rank."""

    status = ERR_ABORTED


class Closed(OnetError):
    """ONET_ERR_CLOSED: the communicator was closed."""

    status = ERR_CLOSED


class NotSupported(OnetError, TypeError):
    """ONET_ERR_NOT_SUPPORTED: the dtype, reduction or transport is not
    supported (also raised in Python for unsupported array dtypes)."""

    status = ERR_NOT_SUPPORTED


class InternalError(OnetError):
    """ONET_ERR_INTERNAL: anything else, a recovered Go panic included (the
    message then says "panic: ..." and where)."""

    status = ERR_INTERNAL


EXCEPTIONS = {
    ERR_INVALID: InvalidArgument,
    ERR_TIMEOUT: Timeout,
    ERR_PEER_LOST: PeerLost,
    ERR_ABORTED: Aborted,
    ERR_CLOSED: Closed,
    ERR_NOT_SUPPORTED: NotSupported,
    ERR_INTERNAL: InternalError,
}


class LibraryNotFound(ImportError):
    """libonet.so could not be found or loaded."""


def exception_for(status, message):
    """Returns the exception instance for a non-OK status and message."""
    cls = EXCEPTIONS.get(status, InternalError)
    if not message:
        message = "%s (no message)" % STATUS_NAMES.get(status, "status %d" % status)
    return cls(message, status)


_c_int_p = ctypes.POINTER(ctypes.c_int)
_u64 = ctypes.c_uint64
_u64_p = ctypes.POINTER(ctypes.c_uint64)
_vp = ctypes.c_void_p
_sz = ctypes.c_size_t
_int = ctypes.c_int

# name: (restype, argtypes); every onet.h function.
PROTOTYPES = {
    "onet_version": (ctypes.c_char_p, []),
    "onet_abi_version": (_int, []),
    "onet_last_error": (_sz, [ctypes.c_char_p, _sz]),
    "onet_status_name": (ctypes.c_char_p, [_int]),
    "onet_comm_create": (_int, [_int, _int, ctypes.c_char_p, _int, ctypes.c_char_p, _u64_p]),
    "onet_comm_rank": (_int, [_u64, _c_int_p]),
    "onet_comm_size": (_int, [_u64, _c_int_p]),
    "onet_comm_abort": (_int, [_u64, ctypes.c_char_p]),
    "onet_comm_destroy": (_int, [_u64]),
    "onet_allreduce": (_int, [_u64, _vp, _vp, _sz, _int, _int, _u64_p]),
    "onet_reduce": (_int, [_u64, _vp, _vp, _sz, _int, _int, _int, _u64_p]),
    "onet_allgather": (_int, [_u64, _vp, _vp, _sz, _int, _u64_p]),
    "onet_reduce_scatter": (_int, [_u64, _vp, _vp, _sz, _int, _int, _u64_p]),
    "onet_broadcast": (_int, [_u64, _vp, _sz, _int, _int, _u64_p]),
    "onet_alltoall": (_int, [_u64, _vp, _vp, _sz, _int, _u64_p]),
    "onet_barrier": (_int, [_u64, _u64_p]),
    "onet_send": (_int, [_u64, _vp, _sz, _int, _int, _u64, _u64_p]),
    "onet_recv": (_int, [_u64, _vp, _sz, _int, _int, _u64, _u64_p]),
    "onet_wait": (_int, [_u64, _int]),
    "onet_test": (_int, [_u64, _c_int_p]),
    "onet_comm_stats_json": (_sz, [_u64, ctypes.c_char_p, _sz]),
}


def candidate_paths():
    """The paths tried, in order (see the module docstring)."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = []
    env = os.environ.get("ONET_LIB")
    if env:
        paths.append(env)
    paths.append(os.path.join(here, "libonet.so"))
    paths.append(os.path.normpath(os.path.join(here, "..", "..", "build", "libonet.so")))
    return paths


_lock = threading.Lock()
_lib = None


def lib():
    """Returns the loaded library (ctypes.CDLL with prototypes set), loading
    it on the first call. Raises LibraryNotFound."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            _lib = _load()
    return _lib


def _load():
    paths = candidate_paths()
    env = os.environ.get("ONET_LIB")
    tried = []
    for p in paths:
        if not os.path.exists(p):
            if env and p == env:
                raise LibraryNotFound("ONET_LIB=%s: no such file (build it with `make libonet`)" % env)
            tried.append(p)
            continue
        try:
            so = ctypes.CDLL(p)
        except OSError as e:
            raise LibraryNotFound("load %s: %s (rebuild it with `make libonet`)" % (p, e)) from e
        missing = [n for n in PROTOTYPES if not hasattr(so, n)]
        if missing:
            raise LibraryNotFound("%s lacks %s: not a libonet.so of this ABI (rebuild it with `make libonet`)"
                                  % (p, ", ".join(missing)))
        for name, (res, args) in PROTOTYPES.items():
            f = getattr(so, name)
            f.restype = res
            f.argtypes = args
        v = so.onet_abi_version()
        if v != ABI_VERSION:
            raise LibraryNotFound("%s has ABI version %d, this package speaks %d (rebuild with `make libonet` "
                                  "or install the matching opennetworks)" % (p, v, ABI_VERSION))
        so.onet_path = p
        return so
    raise LibraryNotFound("libonet.so not found (tried %s): run `make libonet` in the onetdp checkout, "
                          "or point ONET_LIB at the library" % ", ".join(tried))


def last_error():
    """The calling thread's last error message ("" after a success)."""
    so = lib()
    buf = ctypes.create_string_buffer(512)
    n = so.onet_last_error(buf, len(buf))
    if n >= len(buf):
        buf = ctypes.create_string_buffer(n + 1)
        so.onet_last_error(buf, len(buf))
    return buf.value.decode("utf-8", "replace")


def check(status, what=None):
    """Raises the exception for a non-OK status, with this thread's last
    error message (call it right after the failing call, on the same
    thread)."""
    if status == OK:
        return
    msg = last_error()
    if what and not msg.startswith(what):
        msg = "%s: %s" % (what, msg) if msg else what
    raise exception_for(status, msg)


def version():
    """The library's version string, "0.1.0 (go1.26, abi 1)"."""
    return lib().onet_version().decode()


def status_name(status):
    """onet_status_name of a status code."""
    return lib().onet_status_name(int(status)).decode()
