"""NumPy Communicator ops, blocking and non-blocking, checked exactly.

One process per rank with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (onet
serves its own store there). Prints "PASS numpy rank R of N"."""

import os
import sys
import time

import numpy as np

import opennetworks as on


def eq(what, got, want):
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def main():
    opts = os.environ.get("ONET_TEST_OPTIONS", "transport=tcp;timeout_ms=60000")
    with on.Communicator.from_env(options=opts) as c:
        r, n = c.rank, c.size
        assert (r, n) == (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])), (r, n)
        tri = n * (n + 1) // 2
        for dt in (np.float32, np.float64, np.float16, np.int8, np.uint8, np.int32, np.int64):
            x = np.full((3, 4), r + 1, dtype=dt)
            eq("allreduce %s" % np.dtype(dt), c.allreduce(x), np.full((3, 4), tri, dtype=dt))
        eq("allreduce max", c.allreduce(np.array([r, -r], np.int32), op="max"), np.array([n - 1, 0], np.int32))
        eq("allreduce min", c.allreduce(np.array([r, -r], np.int32), op="min"), np.array([0, 1 - n], np.int32))
        x = np.full(5, float(r + 1))
        assert c.allreduce(x, out=x) is x
        eq("allreduce in place", x, np.full(5, float(tri)))
        got = c.reduce(np.full(3, r + 1, np.int64), root=n - 1)
        if r == n - 1:
            eq("reduce", got, np.full(3, tri, np.int64))
        eq("allgather", c.allgather(np.array([r, 2 * r], np.int32)),
           np.array([[i, 2 * i] for i in range(n)], np.int32))
        x = np.arange(n * 2, dtype=np.float32) + r
        eq("reduce_scatter", c.reduce_scatter(x), (np.arange(n * 2, dtype=np.float32) * n + sum(range(n)))[2 * r:2 * r + 2])
        x = np.arange(n * 3, dtype=np.float64).reshape(n, 3) + 10 * r
        eq("reduce_scatter 2-D", c.reduce_scatter(x), (np.arange(3, dtype=np.float64) + 3 * r) * n + 10 * sum(range(n)))
        for root in range(n):
            x = np.arange(4, dtype=np.int64) * (root + 1) if r == root else np.zeros(4, np.int64)
            eq("broadcast root %d" % root, c.broadcast(x, root), np.arange(4, dtype=np.int64) * (root + 1))
        x = np.array([100 * r + j for j in range(n)], np.int32)
        eq("alltoall", c.alltoall(x), np.array([100 * j + r for j in range(n)], np.int32))
        c.barrier()
        nxt, prv = (r + 1) % n, (r - 1) % n
        rq = c.recv_async(np.empty(3, np.float32), prv, tag=5)
        sq = c.send_async(np.full(3, r, np.float32), nxt, tag=5)
        sq.wait()
        eq("send/recv ring", rq.wait(), np.full(3, prv, np.float32))

        # Non-blocking: several operations in flight at once, waited out of
        # order; test() polls.
        big = np.arange(1 << 20, dtype=np.float32)
        reqs = [c.allreduce_async(big * (k + 1)) for k in range(4)]
        bq = c.barrier_async()
        gq = c.allgather_async(np.array([r], np.int64))
        eq("allgather async", gq.wait(), np.arange(n, dtype=np.int64).reshape(n, 1))
        for k in reversed(range(4)):
            eq("allreduce async %d" % k, reqs[k].wait(), big * (k + 1) * n)
        deadline = time.time() + 30
        while not bq.test():
            if time.time() > deadline:
                raise AssertionError("barrier_async: test() never reported completion")
            time.sleep(0.001)
        assert bq.done and bq.wait() is None
        x = np.full(6, r + 1, np.int32)
        q = c.allreduce_async(x, out=x)
        assert q.wait(timeout=30) is x
        eq("allreduce async in place", x, np.full(6, tri, np.int32))
        q = c.broadcast_async(np.full(2, 7.0) if r == 0 else np.zeros(2), 0)
        eq("broadcast async", q.wait(), np.full(2, 7.0))
        q = c.reduce_scatter_async(np.ones(n * 2, np.float32))
        eq("reduce_scatter async", q.wait(), np.full(2, float(n), np.float32))
        q = c.alltoall_async(np.full(n, r, np.int64))
        eq("alltoall async", q.wait(), np.arange(n, dtype=np.int64))

        # wait(timeout) that runs out leaves the request valid: rank 0 waits
        # for a message rank 1 sends only after the barrier below.
        if r == 0:
            q = c.recv_async(np.empty(2, np.int64), 1, tag=99)
            try:
                q.wait(timeout=0.2)
                raise AssertionError("wait(0.2): no Timeout while the peer has not sent")
            except on.Timeout:
                pass
            assert not q.done and not q.test()
            c.barrier()
            eq("recv after a timed-out wait", q.wait(timeout=30), np.array([5, 6], np.int64))
        else:
            c.barrier()
            if r == 1:
                c.send(np.array([5, 6], np.int64), 0, tag=99)

        st = c.stats()
        assert st["ops"]["allreduce"]["completed"] >= 13, st["ops"]["allreduce"]
        assert st["rank"] == r and st["size"] == n, st
    print("PASS numpy rank %d of %d" % (r, n))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
