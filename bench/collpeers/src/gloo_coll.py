# onetdp's Gloo peer for `onetdp bench allreduce|allgather|broadcast
# --peers`: times torch.distributed all_reduce, all_gather or broadcast of
# float32 over the gloo backend the way nccl-tests times a collective
# (warm-up at the largest and smallest size, one untimed call per size,
# ITERS timed calls, the slowest rank's time per call), checks one call
# against the expected values, and prints one line per size on rank 0:
#
#   ROW size count iters oop_us ip_us oop_wrong ip_wrong
#
# A placement torch has no call for prints -1: all_reduce and broadcast
# work in place, all_gather into a separate list of tensors.
#
# usage: python3 gloo_coll.py allreduce|allgather|broadcast WARMUP SIZE:ITERS...
# with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (env:// init).
import datetime
import os
import sys
import time

import torch
import torch.distributed as dist


def main():
    op, warmup = sys.argv[1], int(sys.argv[2])
    specs = [tuple(int(x) for x in s.split(":")) for s in sys.argv[3:]]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    rank, n = dist.get_rank(), dist.get_world_size()

    def param_count(size):
        count = size // 4
        return count // n if op == "allgather" else count

    maxparam = max(param_count(s) for s, _ in specs)
    buf = torch.zeros(max(maxparam * n, 1), dtype=torch.float32)
    send = torch.zeros(max(maxparam, 1), dtype=torch.float32)

    def pattern(r, count):
        i = torch.arange(count, dtype=torch.int64)
        return ((i * 7 + r * 13) % 17 - 8).to(torch.float32)

    def call(param):
        if op == "allreduce":
            t = buf[:param]
            return lambda: dist.all_reduce(t)
        if op == "broadcast":
            t = buf[:param]
            return lambda: dist.broadcast(t, 0)
        out = list(buf[: param * n].view(n, param).unbind(0))
        s = send[:param]
        return lambda: dist.all_gather(out, s)

    def timed(param, iters):
        f = call(param)
        f()
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            f()
        t = torch.tensor([(time.perf_counter() - t0) / iters], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.item()

    def check(param):
        buf.fill_(-100.0)
        if op == "allreduce":
            buf[:param] = pattern(rank, param)
            want = sum(pattern(r, param) for r in range(n))
        elif op == "broadcast":
            if rank == 0:
                buf[:param] = pattern(0, param)
            want = pattern(0, param)
        else:
            send[:param] = pattern(rank, param)
            want = torch.cat([pattern(r, param) for r in range(n)])
        call(param)()
        got = buf[: want.numel()]
        wrong = torch.tensor([int((got != want).sum().item())], dtype=torch.int64)
        dist.all_reduce(wrong)
        return wrong.item()

    for size in (max(s for s, _ in specs), min(s for s, _ in specs)):
        f = call(param_count(size))
        for _ in range(warmup):
            f()
    if rank == 0:
        print("# torch %s gloo, %d ranks" % (torch.__version__, n), flush=True)
    for size, iters in specs:
        param = param_count(size)
        t = timed(param, iters)
        wrong = check(param)
        oop, ip, woop, wip = -1.0, t * 1e6, -1, wrong
        if op == "allgather":
            oop, ip, woop, wip = t * 1e6, -1.0, wrong, -1
        if rank == 0:
            print("ROW %d %d %d %.3f %.3f %d %d" % (size, param, iters, oop, ip, woop, wip), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
