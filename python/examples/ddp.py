"""DDP on synthetic data with the onet backend.

    torchrun --nproc_per_node 2 ddp.py                 # backend onet
    torchrun --nproc_per_node 2 ddp.py --backend gloo  # the same with gloo
    torchrun --nnodes 2 --node_rank 0 --master_addr 10.0.0.1 --master_port 29500 --nproc_per_node 1 ddp.py

Only the name given to init_process_group changes. With CUDA available
each rank trains on its GPU: onet copies the gradients through host memory
(it moves host memory only), so nccl stays faster on GPUs.
"""

import argparse
import datetime
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn

import opennetworks  # noqa: F401  (registers the "onet" backend)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", default="onet")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=64)
    a = p.parse_args()
    dist.init_process_group(a.backend, timeout=datetime.timedelta(minutes=5))
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", 0))
    dev = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1)).to(dev)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[local] if dev.type == "cuda" else None)
    opt = torch.optim.Adam(ddp.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1234 + rank)  # each rank its own shard of synthetic data
    w = torch.randn(32, 1, generator=torch.Generator().manual_seed(99))
    t0 = time.time()
    for step in range(a.steps):
        x = torch.randn(a.batch, 32, generator=g)
        y = torch.sin(x @ w)
        x, y = x.to(dev), y.to(dev)
        opt.zero_grad()
        loss = nn.functional.mse_loss(ddp(x), y)
        loss.backward()
        opt.step()
        if rank == 0 and (step % 10 == 0 or step == a.steps - 1):
            print("step %3d loss %.5f" % (step, loss.item()), flush=True)
    if rank == 0:
        print("%s: %d ranks, %d steps in %.2f s" % (a.backend, world, a.steps, time.time() - t0))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
