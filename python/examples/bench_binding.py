"""Binding overhead: allreduce of float32 through Python, in one run:

  ctypes-onet  onet_allreduce called straight through ctypes (the cgo call alone)
  numpy-onet   opennetworks.Communicator.allreduce (ctypes -> libonet.so), in place
  torch-onet   torch.distributed.all_reduce on the "onet" backend
  torch-gloo   torch.distributed.all_reduce on gloo (a gloo group in the same processes)

One process per rank (torchrun --nproc-per-node 2 bench_binding.py, or the
Go lab test, which also times the same allreduce through Go's
collective.Communicator on the same hosts: python/pytests
TestBindingOverhead). Rank 0 prints one line per case:

  RESULT <case> <bytes> <iters> <microseconds per allreduce>

usage: bench_binding.py [SIZE[:ITERS] ...]   (default 4096:300 16777216:10)
"""

import datetime
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist

import opennetworks as on
from opennetworks import _lib


def timeit(fn, iters, barrier):
    for _ in range(max(2, iters // 10)):
        fn()
    barrier()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters * 1e6


def main():
    specs = []
    for a in sys.argv[1:] or ["4096:300", "16777216:10"]:
        size, _, iters = a.partition(":")
        specs.append((int(size), int(iters or 20)))
    torch.set_num_threads(1)
    dist.init_process_group("onet", timeout=datetime.timedelta(seconds=300))
    r, n = dist.get_rank(), dist.get_world_size()
    gloo = dist.new_group(backend="gloo")
    comm = dist.distributed_c10d._get_default_group().communicator  # the onet Communicator underneath
    rows = []
    for size, iters in specs:
        count = size // 4
        x = np.ones(count, np.float32)
        t = torch.ones(count)
        so, h, ptr = _lib.lib(), comm.handle, x.ctypes.data
        cases = [
            ("ctypes-onet", lambda: so.onet_allreduce(h, ptr, ptr, count, _lib.FLOAT32, _lib.SUM, None), comm.barrier),
            ("numpy-onet", lambda: comm.allreduce(x, out=x), comm.barrier),
            ("torch-onet", lambda: dist.all_reduce(t), dist.barrier),
            ("torch-gloo", lambda: dist.all_reduce(t, group=gloo), lambda: dist.barrier(group=gloo)),
        ]
        for name, fn, barrier in cases:
            us = timeit(fn, iters, barrier)
            # the slowest rank's time, as nccl-tests reports it
            tt = torch.tensor([us], dtype=torch.float64)
            dist.all_reduce(tt, op=dist.ReduceOp.MAX, group=gloo)
            rows.append((name, size, iters, tt.item()))
    if r == 0:
        print("# %d ranks, libonet %s, torch %s" % (n, on.version(), torch.__version__))
        for name, size, iters, us in rows:
            print("RESULT %s %d %d %.1f" % (name, size, iters, us))
        sys.stdout.flush()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    if "RANK" not in os.environ:
        sys.exit("run under torchrun: torchrun --nproc-per-node 2 %s" % sys.argv[0])
    main()
