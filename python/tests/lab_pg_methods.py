"""Every ProcessGroup method of the "onet" backend, checked exactly.

Run one process per rank with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
set (torchrun, or the Go lab test). Prints "PASS pg_methods" on success;
any mismatch raises (non-zero exit)."""

import datetime
import os
import sys

import torch
import torch.distributed as dist

import opennetworks  # noqa: F401  (registers "onet")
from opennetworks.torch_backend import ProcessGroupOnet


def eq(what, got, want):
    if got.dtype != want.dtype or got.shape != want.shape or not torch.equal(got, want):
        raise AssertionError("%s: got %s (%s), want %s (%s)" % (what, got.tolist(), got.dtype, want.tolist(), want.dtype))


def main():
    dist.init_process_group("onet", timeout=datetime.timedelta(seconds=60))
    r, n = dist.get_rank(), dist.get_world_size()
    pg = dist.distributed_c10d._get_default_group()
    assert isinstance(pg, ProcessGroupOnet), type(pg)
    assert dist.get_backend() in ("onet", "ONET"), dist.get_backend()
    tri = n * (n + 1) // 2  # sum of rank+1 over ranks

    # allreduce: every dtype, every reduction, sync and async, non-contiguous.
    for dt in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8,
               torch.int32, torch.int64):
        t = torch.full((5,), r + 1, dtype=dt)
        dist.all_reduce(t)
        eq("allreduce sum %s" % dt, t, torch.full((5,), tri, dtype=dt))
    for op, want in ((dist.ReduceOp.PRODUCT, float(torch.arange(1, n + 1).prod())), (dist.ReduceOp.MIN, 1.0),
                     (dist.ReduceOp.MAX, float(n))):
        t = torch.full((3,), float(r + 1))
        dist.all_reduce(t, op=op)
        eq("allreduce %s" % op, t, torch.full((3,), want))
    t = torch.full((4,), float(2 * (r + 1)))
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    eq("allreduce avg", t, torch.full((4,), float(n + 1)))
    big = torch.arange(1 << 16, dtype=torch.float32) * (r + 1)
    w = dist.all_reduce(big, async_op=True)
    w.wait()
    assert w.is_completed()
    eq("allreduce async 64Ki", big, torch.arange(1 << 16, dtype=torch.float32) * tri)
    nc = torch.zeros(4, 6)
    col = nc[:, 1]  # non-contiguous: goes through a host copy
    col.fill_(r + 1)
    dist.all_reduce(col)
    eq("allreduce non-contiguous", nc[:, 1].contiguous(), torch.full((4,), float(tri)))
    eq("allreduce non-contiguous leaves the rest", nc[:, 0].contiguous(), torch.zeros(4))
    fut = dist.all_reduce(torch.ones(2), async_op=True).get_future()
    got = fut.wait()
    eq("allreduce future", got[0], torch.full((2,), float(n)))

    # broadcast from every root.
    for root in range(n):
        t = torch.arange(7, dtype=torch.int64) + (100 * root if r == root else -1)
        dist.broadcast(t, root)
        eq("broadcast root %d" % root, t, torch.arange(7, dtype=torch.int64) + 100 * root)

    # allgather (list) and _allgather_base (one tensor).
    outs = [torch.empty(3, dtype=torch.float64) for _ in range(n)]
    dist.all_gather(outs, torch.full((3,), float(r * 10), dtype=torch.float64))
    for i in range(n):
        eq("allgather from %d" % i, outs[i], torch.full((3,), float(i * 10), dtype=torch.float64))
    out = torch.empty(n * 2, dtype=torch.int32)
    pg._allgather_base(out, torch.tensor([r, -r], dtype=torch.int32)).wait()
    eq("_allgather_base", out, torch.tensor([v for i in range(n) for v in (i, -i)], dtype=torch.int32))
    if hasattr(dist, "all_gather_into_tensor"):
        out2 = torch.empty(n * 2, dtype=torch.int32)
        dist.all_gather_into_tensor(out2, torch.tensor([r, -r], dtype=torch.int32))
        eq("all_gather_into_tensor", out2, out)

    # reduce_scatter (list) and _reduce_scatter_base.
    ins = [torch.full((2,), float(r + 1 + 10 * i)) for i in range(n)]
    o = torch.empty(2)
    dist.reduce_scatter(o, ins)
    eq("reduce_scatter", o, torch.full((2,), float(tri + n * 10 * r)))
    inp = torch.arange(n * 3, dtype=torch.float32) + r
    o = torch.empty(3)
    pg._reduce_scatter_base(o, inp, dist.ReduceScatterOptions()).wait()
    want = (torch.arange(n * 3, dtype=torch.float32) * n + sum(range(n)))[r * 3:(r + 1) * 3]
    eq("_reduce_scatter_base", o, want)

    # barrier.
    dist.barrier()
    pg.barrier().wait()

    # send / recv around the ring, with a tag; and isend/irecv both ways.
    nxt, prv = (r + 1) % n, (r - 1) % n
    sbuf = torch.arange(5, dtype=torch.float32) + r
    rbuf = torch.empty(5)
    sw = dist.isend(sbuf, nxt, tag=7)
    rw = dist.irecv(rbuf, prv, tag=7)
    sw.wait()
    rw.wait()
    eq("isend/irecv ring", rbuf, torch.arange(5, dtype=torch.float32) + prv)
    if r == 0:
        dist.send(torch.tensor([42, 43], dtype=torch.int64), n - 1, tag=3)
    elif r == n - 1:
        x = torch.empty(2, dtype=torch.int64)
        src = dist.recv(x, 0, tag=3)
        assert src == 0, src
        eq("send/recv", x, torch.tensor([42, 43], dtype=torch.int64))

    # alltoall_base: even, then uneven splits.
    inp = torch.arange(n * 2, dtype=torch.float32) + 100 * r
    out = torch.empty(n * 2)
    dist.all_to_all_single(out, inp)
    eq("alltoall_base even", out, torch.tensor([100 * i + 2 * r + k for i in range(n) for k in range(2)],
                                               dtype=torch.float32))
    # rank r sends j+1 rows of 2 to rank j; receives r+1 rows from everyone.
    in_splits = [j + 1 for j in range(n)]
    inp = torch.cat([torch.full((j + 1, 2), float(1000 * r + j)) for j in range(n)])
    out = torch.empty((r + 1) * n, 2)
    dist.all_to_all_single(out, inp, output_split_sizes=[r + 1] * n, input_split_sizes=in_splits)
    want = torch.cat([torch.full((r + 1, 2), float(1000 * i + r)) for i in range(n)])
    eq("alltoall_base uneven", out, want)

    # A subgroup of the even ranks has its own communicator.
    evens = list(range(0, n, 2))
    g = dist.new_group(evens, backend="onet")
    if r in evens:
        t = torch.ones(3)
        dist.all_reduce(t, group=g)
        eq("subgroup allreduce", t, torch.full((3,), float(len(evens))))

    # GPU tensors go through host memory (where CUDA is available).
    if torch.cuda.is_available():
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        t = torch.full((1000,), float(r + 1), device=dev)
        dist.all_reduce(t)
        eq("allreduce cuda", t.cpu(), torch.full((1000,), float(tri)))
        big = torch.full((1 << 18,), float(r + 1), device=dev, dtype=torch.bfloat16)
        dist.all_reduce(big, async_op=True).wait()
        eq("allreduce cuda bf16 async", big.cpu(), torch.full((1 << 18,), float(tri), dtype=torch.bfloat16))
        print("cuda tensors: ok")

    dist.barrier()
    dist.destroy_process_group()
    print("PASS pg_methods rank %d of %d" % (r, n))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
