"""JAX arrays through onet: allreduce, allgather, broadcast.

    torchrun --nproc_per_node 2 jax_allreduce.py       # torchrun only sets RANK/WORLD_SIZE/MASTER_*
    ONET_RANK=0 ONET_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 python3 jax_allreduce.py &
    ONET_RANK=1 ONET_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 python3 jax_allreduce.py

JAX arrays are immutable and may live on an accelerator: JAXCollectiveOps
copies each one to a host NumPy buffer, runs the collective there, and
returns new JAX arrays.
"""

import sys

try:
    import jax
    import jax.numpy as jnp
except ImportError:
    sys.exit("this example needs jax (pip install jax)")

import opennetworks as on


def main():
    comm = on.init()  # rank, size and master from the environment
    ops = on.get_collective_ops("jax", comm)
    r, n = ops.rank, ops.size
    x = jnp.arange(8, dtype=jnp.float32) * (r + 1)
    s = ops.allreduce(x, op="sum")
    want = jnp.arange(8, dtype=jnp.float32) * (n * (n + 1) // 2)
    assert bool((s == want).all()), (s, want)
    parts = ops.allgather(jnp.array([r], dtype=jnp.int32))
    assert [int(p[0]) for p in parts] == list(range(n)), parts
    b = ops.broadcast(jnp.full((3,), r, dtype=jnp.bfloat16), src=0)
    assert bool((b == 0).all()), b
    # A gradient step of a data-parallel linear model: average the grads.
    key = jax.random.PRNGKey(r)
    xs = jax.random.normal(key, (32, 4))
    ys = xs @ jnp.arange(4.0)
    w = jnp.zeros(4)
    grad = jax.grad(lambda w: jnp.mean((xs @ w - ys) ** 2))(w)
    g = ops.allreduce(grad, op="avg")
    if r == 0:
        print("JAX %s on %s: allreduce/allgather/broadcast OK on %d ranks; averaged grad %s"
              % (jax.__version__, jax.devices()[0].platform, n, g))
    on.shutdown()


if __name__ == "__main__":
    main()
