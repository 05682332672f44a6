"""Unit tests that need no lab: one rank (size 1) on 127.0.0.1.

    cd python && /usr/bin/python3 -m unittest discover -s tests -v

They skip when libonet.so is not built (run `make libonet`), unless
ONET_REQUIRE_LIB=1 (the Go test sets it), which turns that into a failure.
"""

import datetime
import os
import socket
import subprocess
import sys
import textwrap
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import opennetworks as on  # noqa: E402
from opennetworks import _lib  # noqa: E402
from opennetworks.communicator import op_code, options_string  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


def have_lib():
    try:
        _lib.lib()
        return True, ""
    except on.LibraryNotFound as e:
        if os.environ.get("ONET_REQUIRE_LIB") == "1":
            raise
        return False, str(e)


HAVE_LIB, NO_LIB = have_lib()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def single(**kw):
    kw.setdefault("transport", "tcp")
    kw.setdefault("timeout_ms", 10000)
    return on.Communicator(0, 1, "127.0.0.1", free_port(), **kw)


def run_python(code, env=None, timeout=60):
    e = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=e, capture_output=True, text=True,
                          timeout=timeout)


class PurePython(unittest.TestCase):
    """No library needed."""

    def test_exception_mapping(self):
        want = {1: on.InvalidArgument, 2: on.Timeout, 3: on.PeerLost, 4: on.Aborted, 5: on.Closed,
                6: on.NotSupported, 7: on.InternalError, 99: on.InternalError}
        for st, cls in want.items():
            e = _lib.exception_for(st, "go says %d" % st)
            self.assertIs(type(e), cls, st)
            self.assertIsInstance(e, on.OnetError)
            self.assertEqual(str(e), "go says %d" % st)
            self.assertEqual(e.status, st)
        self.assertEqual(_lib.exception_for(2, "").status_name, "ONET_ERR_TIMEOUT")
        self.assertIn("ONET_ERR_TIMEOUT", str(_lib.exception_for(2, "")))
        self.assertTrue(issubclass(on.Timeout, TimeoutError))
        self.assertTrue(issubclass(on.InvalidArgument, ValueError))
        self.assertTrue(issubclass(on.PeerLost, ConnectionError))
        self.assertTrue(issubclass(on.NotSupported, TypeError))
        self.assertTrue(issubclass(on.LibraryNotFound, ImportError))

    def test_options_string(self):
        self.assertEqual(options_string("a=1;b=2", c=3), "a=1;b=2;c=3")
        self.assertEqual(options_string({"transport": "tcp"}, shm=True, addr=None), "transport=tcp;shm=1")
        self.assertEqual(options_string(None), "")
        with self.assertRaises(on.InvalidArgument):
            options_string(algo="a;b")

    def test_op_code(self):
        self.assertEqual([op_code(x) for x in ("sum", "PROD", "min", "max", "avg", 3)], [0, 1, 2, 3, 4, 3])
        for bad in ("xor", 9, -1):
            with self.assertRaises(on.InvalidArgument):
                op_code(bad)

    def test_library_not_found(self):
        p = run_python("""
            import opennetworks as on
            try:
                on.version()
            except ImportError as e:
                print(type(e).__name__, e)
        """, env={"ONET_LIB": "/nonexistent/libonet.so"})
        self.assertIn("LibraryNotFound", p.stdout, p.stderr)
        self.assertIn("make libonet", p.stdout)


@unittest.skipUnless(HAVE_LIB, "libonet.so not built (%s)" % NO_LIB)
class SingleRank(unittest.TestCase):

    def test_version_and_status_names(self):
        self.assertIn("abi 1", on.version())
        for st, name in _lib.STATUS_NAMES.items():
            self.assertEqual(_lib.status_name(st), name)
        self.assertEqual(_lib.status_name(99), "ONET_ERR_UNKNOWN")

    def test_numpy_ops(self):
        with single() as c:
            self.assertEqual((c.rank, c.size), (0, 1))
            x = np.arange(6, dtype=np.float32).reshape(2, 3)
            np.testing.assert_array_equal(c.allreduce(x), x)
            np.testing.assert_array_equal(c.allreduce(x, op="max"), x)
            np.testing.assert_array_equal(c.allgather(x), x[None])
            np.testing.assert_array_equal(c.reduce_scatter(x), x.reshape(-1))
            np.testing.assert_array_equal(c.alltoall(x), x)
            np.testing.assert_array_equal(c.reduce(x, root=0), x)
            y = x.copy()
            self.assertIs(c.broadcast(y, 0), y)
            c.barrier()
            q = c.allreduce_async(x)
            self.assertIsInstance(q, on.Request)
            np.testing.assert_array_equal(q.wait(), x)
            self.assertTrue(q.test() and q.done)
            q = c.barrier_async()
            q.wait(timeout=10)
            st = c.stats()
            self.assertEqual(st["ops"]["allreduce"]["completed"], 3)
            self.assertEqual(st["transport"], "tcp")

    def test_send_recv_self_is_invalid(self):
        with single() as c:
            with self.assertRaisesRegex(on.InvalidArgument, "peer 0"):
                c.recv_async(np.empty(4, np.int64), 0, tag=9)
            with self.assertRaisesRegex(on.InvalidArgument, "peer 0"):
                c.send(np.arange(4, dtype=np.int64), 0, tag=9)

    def test_argument_errors(self):
        with single() as c:
            with self.assertRaisesRegex(on.NotSupported, "dtype complex128"):
                c.allreduce(np.ones(2, np.complex128))
            with self.assertRaisesRegex(on.InvalidArgument, "not C-contiguous"):
                c.allreduce(np.ones((3, 3))[:, 0])
            with self.assertRaisesRegex(on.InvalidArgument, "want a numpy.ndarray"):
                c.allreduce([1, 2, 3])
            with self.assertRaisesRegex(on.InvalidArgument, "dtypes must match"):
                c.allreduce(np.ones(2, np.float32), out=np.ones(2, np.float64))

    def test_go_errors(self):
        with self.assertRaisesRegex(on.InvalidArgument, 'unknown key "bogus"'):
            on.Communicator(0, 1, "127.0.0.1", free_port(), "transport=tcp;bogus=1")
        with self.assertRaisesRegex(on.InvalidArgument, "unknown handle"):
            _lib.check(_lib.lib().onet_barrier(0, None))
        c = single()
        c.close()
        with self.assertRaises(on.Closed):
            c.allreduce(np.ones(2))
        c.close()  # a no-op

    def test_abort(self):
        with single() as c:
            c.abort("unit abort")
            with self.assertRaisesRegex(on.Aborted, "unit abort"):
                c.allreduce(np.ones(2))

    def test_go_panic_is_an_exception(self):
        # A bad pointer makes the Go side fault; the ABI recovers the panic
        # and returns ONET_ERR_INTERNAL: the process lives on and says so.
        # (The communicator is not used again: after a recovered panic its
        # next operation blocks, a libonet bug reported with this package.)
        p = run_python("""
            import os, socket, numpy as np, opennetworks as on
            from opennetworks import _lib
            s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
            c = on.Communicator(0, 1, "127.0.0.1", port, transport="tcp", timeout_ms=5000)
            out = np.zeros(4, np.float32)
            try:
                _lib.check(_lib.lib().onet_allgather(c.handle, 8, out.ctypes.data, 4, 0, None))
                print("NO EXCEPTION")
            except on.InternalError as e:
                print("INTERNAL", e.status_name, e)
            c.close()
            print("ALIVE")
        """)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertIn("INTERNAL ONET_ERR_INTERNAL", p.stdout)
        self.assertIn("panic: runtime error: invalid memory address", p.stdout)
        self.assertIn("ALIVE", p.stdout)

    def test_collective_ops_numpy(self):
        with single() as c:
            ops = on.get_collective_ops("numpy", c)
            self.assertIsInstance(ops, on.NumPyCollectiveOps)
            x = np.ones(3, np.int32)
            np.testing.assert_array_equal(ops.allreduce(x), x)
            self.assertEqual(len(ops.allgather(x)), 1)
            np.testing.assert_array_equal(ops.broadcast(x, 0), x)
            with self.assertRaises(on.InvalidArgument):
                on.get_collective_ops("tensorflow", c)

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_collective_ops_torch(self):
        with single() as c:
            ops = on.get_collective_ops("torch", c)
            self.assertIsInstance(ops, on.PyTorchCollectiveOps)
            for dt in (torch.float32, torch.bfloat16, torch.float16, torch.int64):
                t = torch.arange(5).to(dt)
                self.assertIs(ops.allreduce(t), t)
                self.assertTrue(torch.equal(t, torch.arange(5).to(dt)))
                g = ops.allgather(t)
                self.assertEqual(len(g), 1)
                self.assertTrue(torch.equal(g[0], t))
                self.assertIs(ops.broadcast(t, 0), t)
            with self.assertRaisesRegex(on.InvalidArgument, "not contiguous"):
                ops.allreduce(torch.ones(4, 4)[:, 1])
            with self.assertRaisesRegex(on.NotSupported, "dtype torch.complex64"):
                ops.allreduce(torch.ones(2, dtype=torch.complex64))
            with self.assertRaisesRegex(on.NotSupported, "dtype torch.bool"):
                ops.broadcast(torch.ones(2, dtype=torch.bool), 0)

    def test_collective_ops_jax(self):
        try:
            import jax.numpy as jnp
        except ImportError:
            self.skipTest("jax is not installed")
        with single() as c:
            ops = on.get_collective_ops("jax", c)
            x = jnp.arange(4, dtype=jnp.float32)
            self.assertTrue(bool((ops.allreduce(x) == x).all()))
            self.assertEqual(len(ops.allgather(x)), 1)
            self.assertTrue(bool((ops.broadcast(x, 0) == x).all()))

    def test_ray_backend_with_a_stand_in_ray(self):
        # Ray is not installed here: a stand-in with Ray's module layout
        # (BaseGroup, backend_registry, internal_kv) drives OnetGroup at size 1.
        p = run_python("""
            import sys, types, numpy as np
            def mod(name, **attrs):
                m = types.ModuleType(name); m.__dict__.update(attrs); sys.modules[name] = m; return m
            class BaseGroup:
                def __init__(self, world_size, rank, group_name):
                    self.world_size, self.rank, self.group_name = world_size, rank, group_name
            kv = {}
            registered = {}
            ray = mod("ray", __version__="0-stand-in")
            mod("ray.util", get_node_ip_address=lambda: "127.0.0.1"); ray.util = sys.modules["ray.util"]
            mod("ray.util.collective"); mod("ray.util.collective.collective_group")
            mod("ray.util.collective.collective_group.base_collective_group", BaseGroup=BaseGroup)
            mod("ray.util.collective.backend_registry",
                register_collective_backend=lambda n, c: registered.__setitem__(n, c))
            mod("ray.experimental")
            mod("ray.experimental.internal_kv", _internal_kv_put=lambda k, v, overwrite=True: kv.__setitem__(k, v),
                _internal_kv_get=lambda k: kv.get(k), _internal_kv_del=lambda k: kv.pop(k, None))
            from opennetworks import ray_backend
            cls = ray_backend.register()
            assert registered == {"ONET": cls}, registered
            assert cls.backend() == "ONET" and cls.check_backend_availability()
            g = cls(1, 0, "g1")
            x = np.arange(4, dtype=np.float32)
            g.allreduce([x]); g.barrier(); g.broadcast(x)
            outs = [np.zeros(4, np.float32)]
            g.allgather([outs], [x])
            assert (outs[0] == x).all(), outs
            o = np.zeros(4, np.float32)
            g.reducescatter([o], [[x]])
            assert (o == x).all(), o
            g.destroy_group()
            assert kv == {}, kv
            print("RAY OK")
        """)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertIn("RAY OK", p.stdout)

    def test_ray_missing(self):
        try:
            import ray  # noqa: F401
            self.skipTest("ray is installed")
        except ImportError:
            pass
        from opennetworks import ray_backend
        with self.assertRaisesRegex(ImportError, "needs ray"):
            ray_backend.register()

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_torch_backend_single_rank(self):
        # In a subprocess: init_process_group works once per process.
        p = run_python("""
            import datetime, socket, torch, torch.distributed as dist
            import opennetworks
            s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
            dist.init_process_group("onet", init_method="tcp://127.0.0.1:%d" % port, rank=0, world_size=1,
                                    timeout=datetime.timedelta(seconds=30))
            t = torch.arange(4.0)
            dist.all_reduce(t)
            assert torch.equal(t, torch.arange(4.0)), t
            w = dist.all_reduce(t, async_op=True)
            w.wait()
            out = [torch.empty(4)]
            dist.all_gather(out, t)
            assert torch.equal(out[0], t)
            dist.broadcast(t, 0)
            dist.barrier()
            try:
                dist.all_reduce(torch.ones(2, dtype=torch.bool))
                print("NO EXCEPTION")
            except opennetworks.NotSupported as e:
                print("NOTSUPPORTED", e)
            dist.destroy_process_group()
            print("OK", dist.is_available())
        """)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertIn("NOTSUPPORTED", p.stdout)
        self.assertIn("OK True", p.stdout)


if __name__ == "__main__":
    unittest.main()
