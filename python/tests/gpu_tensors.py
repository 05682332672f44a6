"""CUDA tensors on the "onet" backend: they go through a host copy.

Checks allreduce, broadcast, allgather, all_gather_into_tensor and
reduce_scatter_tensor on GPU tensors exactly (results stay on the GPU),
then a few DDP steps of a model on the GPU (every rank ends with rank 0's
weights), and times a 16 MiB allreduce of a GPU tensor against the same
CPU tensor (the cost of the staging copies). Ranks may share one GPU
(cuda:LOCAL_RANK modulo the device count). One process per rank
(RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Prints "PASS gpu_tensors"
on rank 0, or "SKIP gpu_tensors" without CUDA."""

import datetime
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn

import opennetworks  # noqa: F401  (registers "onet")


def eq(what, got, want):
    if got.device != want.device or got.dtype != want.dtype or not torch.equal(got, want):
        raise AssertionError("%s: got %s on %s, want %s on %s" % (what, got.tolist(), got.device, want.tolist(), want.device))


def timed(fn, iters=10):
    fn()
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters * 1e6


def main():
    if not torch.cuda.is_available():
        print("SKIP gpu_tensors: torch %s sees no CUDA device" % torch.__version__)
        return
    dist.init_process_group("onet", timeout=datetime.timedelta(seconds=120))
    r, n = dist.get_rank(), dist.get_world_size()
    dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", r)) % torch.cuda.device_count())
    tri = n * (n + 1) // 2

    for dt in (torch.float32, torch.bfloat16, torch.int64):
        t = torch.full((1000,), r + 1, dtype=dt, device=dev)
        dist.all_reduce(t)
        eq("allreduce %s" % dt, t, torch.full((1000,), tri, dtype=dt, device=dev))
    t = torch.arange(7, device=dev, dtype=torch.float32) * (r + 1)
    w = dist.all_reduce(t, op=dist.ReduceOp.MAX, async_op=True)
    w.wait()
    eq("allreduce max async", t, torch.arange(7, device=dev, dtype=torch.float32) * n)
    b = torch.full((5,), float(r), device=dev)
    dist.broadcast(b, src=n - 1)
    eq("broadcast", b, torch.full((5,), float(n - 1), device=dev))
    outs = [torch.empty(3, device=dev, dtype=torch.int32) for _ in range(n)]
    dist.all_gather(outs, torch.full((3,), r, device=dev, dtype=torch.int32))
    for i, o in enumerate(outs):
        eq("allgather[%d]" % i, o, torch.full((3,), i, device=dev, dtype=torch.int32))
    flat = torch.empty(2 * n, device=dev)
    dist.all_gather_into_tensor(flat, torch.full((2,), float(r), device=dev))
    eq("all_gather_into_tensor", flat, torch.arange(n, device=dev, dtype=torch.float32).repeat_interleave(2))
    rs = torch.empty(4, device=dev)
    dist.reduce_scatter_tensor(rs, torch.arange(4 * n, device=dev, dtype=torch.float32) + r)
    want = (torch.arange(4 * n, device=dev, dtype=torch.float32) * n + n * (n - 1) / 2)[4 * r:4 * r + 4]
    eq("reduce_scatter_tensor", rs, want)

    # DDP on the GPU: gradients cross as host copies.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4)).to(dev)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index], bucket_cap_mb=0.01)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
    g = torch.Generator(device=dev).manual_seed(1000 + r)
    for _ in range(10):
        x = torch.randn(32, 16, generator=g, device=dev)
        opt.zero_grad()
        nn.functional.mse_loss(ddp(x), x[:, :4]).backward()
        opt.step()
    for k, v in model.state_dict().items():
        ref = v.clone()
        dist.broadcast(ref, 0)
        eq("ddp weight %s" % k, v, ref)
    moved = max((model.state_dict()[k] - init[k]).abs().max().item() for k in init)
    if moved < 1e-4:
        raise AssertionError("ddp: weights did not move (max change %g)" % moved)

    big_gpu = torch.ones(4 << 20, device=dev)
    big_cpu = torch.ones(4 << 20)
    gpu_us = timed(lambda: dist.all_reduce(big_gpu))
    cpu_us = timed(lambda: dist.all_reduce(big_cpu))
    if r == 0:
        print("PASS gpu_tensors ranks %d on %s (%s): 16 MiB allreduce %.0f us from GPU, %.0f us from CPU (%.2fx)"
              % (n, torch.cuda.get_device_name(dev), dev, gpu_us, cpu_us, gpu_us / cpu_us))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
