"""DDP training of a small model on synthetic data with a given backend.

usage: lab_ddp.py BACKEND OUT.pt [COMPARE.pt]

Every rank trains the same seeded model on its own seeded synthetic batches
for STEPS steps; rank 0 saves the final state_dict to OUT.pt. With
COMPARE.pt (the weights another backend ended with), rank 0 also checks
that every parameter matches within tolerance and prints the largest
difference. Prints "PASS ddp BACKEND ..." on rank 0."""

import datetime
import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn

import opennetworks  # noqa: F401  (registers "onet")

STEPS = int(os.environ.get("DDP_STEPS", "30"))
TOL = 1e-5


def main():
    backend, out = sys.argv[1], sys.argv[2]
    compare = sys.argv[3] if len(sys.argv) > 3 else None
    torch.set_num_threads(1)
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=120))
    r, n = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    # A small bucket cap splits the gradients into several buckets (several
    # allreduces per step, overlapping the backward pass).
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.01)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(1000 + r)
    w_true = torch.randn(16, 4, generator=torch.Generator().manual_seed(7))
    loss = None
    for _ in range(STEPS):
        x = torch.randn(32, 16, generator=g)
        y = x @ w_true + 0.01 * torch.randn(32, 4, generator=g)
        opt.zero_grad()
        loss = nn.functional.mse_loss(ddp(x), y)
        loss.backward()
        opt.step()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # Every rank must hold the same weights.
    for k, v in state.items():
        ref = v.clone()
        dist.broadcast(ref, 0)
        if not torch.equal(ref, v):
            raise AssertionError("rank %d: %s differs from rank 0's" % (r, k))
    if r == 0:
        moved = max((state[k] - init[k]).abs().max().item() for k in state)
        if moved < 1e-3:
            raise AssertionError("weights did not move (max change %g)" % moved)
        torch.save(state, out)
        msg = "PASS ddp %s ranks %d steps %d loss %.6f" % (backend, n, STEPS, loss.item())
        if compare:
            other = torch.load(compare)
            worst = 0.0
            for k, v in state.items():
                d = (v - other[k]).abs().max().item()
                worst = max(worst, d)
                if not torch.allclose(v, other[k], rtol=TOL, atol=TOL):
                    raise AssertionError("%s: max difference %g from %s beyond %g" % (k, d, compare, TOL))
            msg += " max_diff_vs_%s %.3g" % (os.path.basename(compare), worst)
        print(msg)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
