"""Particle-steps per second of annealed Langevin with the seed network.

Compares, in one run and on this machine:
  reference  one particle, a lax.scan over steps (the reference walkthrough's loop)
  vmap       the same chain loop naively vmapped over N particles
  runner     scorefield.samplers.sample(AnnealedLangevin(...)) over N particles, in blocks
             of 256 (default) and as one block of N (the naive layout inside the runner)
  matmul     the dense fp32 matmul bound: FLOP/s of a large matmul / FLOPs of one evaluation
and prints each rate and its ratio to the reference. Usage:

    .venv/bin/python benchmarks/bench_samplers.py [--n 16384] [--steps 20] [--devices 2]

`--devices K` splits the CPU into K XLA devices (set before JAX starts) so the runner
shards particles over cores; the other rows are unaffected by it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _poly_sin_cos(t):
    """sin(t), cos(t) for float32 t: reduce to [-pi, pi], then Taylor polynomials (error < 2e-7)."""
    import jax.numpy as jnp

    r = t - jnp.round(t * (0.5 / jnp.pi)) * (2 * jnp.pi)
    r2 = r * r
    c, s = 1.0 / 6402373705728000, 1.0 / 355687428096000  # 1/18!, 1/17!
    for k in range(16, -1, -2):
        c = c * r2 * (-1) + 1.0 / _fact(k)
    for k in range(15, 0, -2):
        s = s * r2 * (-1) + 1.0 / _fact(k)
    return r * s, c


def _fact(k):
    import math

    return float(math.factorial(k))


def FastTrig(net):  # noqa: N802 - a module factory, defined lazily (JAX is imported in main)
    import equinox as eqx
    import jax.numpy as jnp

    from scorefield.noise import nearest_level

    class _FastTrig(eqx.Module):
        """ReferenceNet's forward pass with polynomial sin/cos (same parameters)."""

        net: eqx.Module

        def __call__(self, x, sigma):
            n = self.net
            level = nearest_level(n.sigmas, sigma)
            u = x - n.centre
            _, c = _poly_sin_cos(2 * jnp.pi * n.b_cos @ u)
            s, _ = _poly_sin_cos(2 * jnp.pi * n.b_sin @ u)
            feats = n.scale[level] * jnp.concatenate([c, s]) + n.shift[level]
            return n.mlp(jnp.concatenate([feats, u]))

    return _FastTrig(net)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=4096, help="particles (runner and vmap)")
    p.add_argument("--levels", type=int, default=10)
    p.add_argument("--steps", type=int, default=10, help="steps per level")
    p.add_argument("--ref-steps", type=int, default=5000, help="steps of the single-particle loop")
    p.add_argument("--devices", type=int, default=os.cpu_count() or 1, help="XLA CPU devices for the runner")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    if args.devices > 1:
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.devices}"
        )

    import jax
    import jax.numpy as jnp
    import numpy as np

    import scorefield.samplers as S
    from scorefield.nets import ReferenceNet

    sigmas = S.geometric(1.0, 1e-4, 30)
    net = ReferenceNet(2, sigmas, n_features=256, width=128, depth=3, centre=jnp.asarray([0.5, 0.5]),
                       key=jax.random.key(0))
    score = lambda x, sigma: net(x, sigma)  # noqa: E731
    grid = sigmas[:: max(1, 30 // args.levels)][: args.levels]
    eps = 1e-3

    def best(f, *a):
        f(*a)  # compile and warm up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            jax.block_until_ready(f(*a))
            times.append(time.perf_counter() - t)
        return min(times)

    # reference: one particle, one lax.scan (as the walkthrough's sampler), at level 17
    sigma17 = sigmas[17]

    def chain(x, key, n_steps):
        def body(x, k):
            z = jax.random.normal(k, x.shape)
            return x + 0.5 * eps * score(x, sigma17) + jnp.sqrt(eps) * z, None

        return jax.lax.scan(body, x, jax.random.split(key, n_steps))[0]

    ref = jax.jit(lambda x, k: chain(x, k, args.ref_steps))
    t = best(ref, jnp.asarray([0.5, 0.5]), jax.random.key(1))
    rate_ref = args.ref_steps / t

    # naive vmap of the chain over particles
    total = args.levels * args.steps
    vm = jax.jit(jax.vmap(lambda x, k: chain(x, k, total)))
    x0 = jax.random.uniform(jax.random.key(2), (args.n, 2))
    keys = jax.random.split(jax.random.key(3), args.n)
    t = best(vm, x0, keys)
    rate_vmap = args.n * total / t

    # the runner
    # eta_1 = eps on the largest level, smaller below: an untrained network stays finite
    sampler = S.AnnealedLangevin(grid, args.steps, eps=eps * float(grid[-1] / grid[0]) ** 2, denoise=False)
    def runner(block_size):
        return lambda: S.sample(sampler, score, jax.random.key(4), n=args.n, dim=2, block_size=block_size,
                                init=S.GaussianInit(1.0, 0.5)).samples

    rate_runner = args.n * total / best(runner(256))
    rate_unblocked = args.n * total / best(runner(args.n))

    # The same network with sin/cos as range-reduced polynomials: XLA's CPU sin/cos cost
    # ~15-25 ns per element here (a polynomial ~0.4 ns), and 512 of them per evaluation
    # dominate the seed network. Shows what the sampler reaches once the network is fast.
    fast = FastTrig(net)
    u = jax.random.uniform(jax.random.key(7), (256, 2))
    err = float(jnp.max(jnp.abs(jax.vmap(fast, (0, None))(u, sigma17) - jax.vmap(net, (0, None))(u, sigma17))))
    fast_score = lambda x, sigma: fast(x, sigma)  # noqa: E731
    rate_fast = args.n * total / best(lambda: S.sample(sampler, fast_score, jax.random.key(4), n=args.n, dim=2,
                                                       init=S.GaussianInit(1.0, 0.5)).samples)

    # matmul bound: FLOPs of one evaluation (dense layers + feature projections)
    f = 2 * 256
    flops_eval = 2 * (2 * f) + 2 * (f + 2) * 128 + 2 * 2 * 128 * 128 + 2 * 128 * 2
    a = jax.random.normal(jax.random.key(5), (4096, 512))
    b = jax.random.normal(jax.random.key(6), (512, 512))
    mm = jax.jit(lambda a, b: a @ b)
    t = best(mm, a, b)
    flops_s = 2 * 4096 * 512 * 512 / t
    rate_mm = flops_s / flops_eval

    print(f"# bench_samplers  jax {jax.__version__}  devices {jax.device_count()}  cpus {os.cpu_count()}  "
          f"N={args.n} levels={args.levels} steps/level={args.steps}")
    print(f"{'what':18s} {'particle-steps/s':>18s} {'x reference':>12s}")
    rows = [("reference", rate_ref), ("vmap", rate_vmap), ("runner, one block", rate_unblocked),
            ("runner", rate_runner), ("runner, fast sin/cos", rate_fast), ("matmul bound", rate_mm)]
    for name, r in rows:
        print(f"{name:18s} {r:18,.0f} {r / rate_ref:12.2f}")
    print(f"(matmul {flops_s / 1e9:.1f} GFLOP/s, {flops_eval} FLOPs per evaluation; "
          f"fast sin/cos network differs from the seed network by at most {err:.1e})")


if __name__ == "__main__":
    sys.exit(main())
