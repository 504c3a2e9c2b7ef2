"""Particle-steps per second of annealed Langevin with the seed network.

Compares, in one run and on this machine:
  seed       the reference's network (XLA sin/cos) in its one-particle lax.scan loop
  1 particle the same loop with scorefield's ReferenceNet (same weights, polynomial sin/cos)
  vmap       the same chain loop naively vmapped over N particles (one scan, whole batch)
  runner     scorefield.samplers.sample(AnnealedLangevin(...)) over N particles: with its
             default block size for these devices, as one block of N (the naive layout inside
             the runner), and with any --block-sizes given
  matmul     the dense fp32 matmul bound: FLOP/s of a large matmul / FLOPs of one evaluation
and prints each rate and its ratio to the reference and to the naive vmap, all measured in
the same run (interleaved repeats, best of each). Usage:

    .venv/bin/python benchmarks/bench_samplers.py [--n 16384] [--steps 20] [--devices 2]
        [--block-sizes 256,512,1024,2048]

`--devices K` (default 1) splits the CPU into K XLA devices (set before JAX starts) so the
runner shards particles over them; the other rows run on one device either way (with XLA's
intra-op threads).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def XlaTrig(net):  # noqa: N802 - a module factory, defined lazily (JAX is imported in main)
    """The seed network exactly as the reference wrote it: XLA's sin/cos and jax.nn.softplus
    (scorefield's ReferenceNet computes the same functions more cheaply on CPU)."""
    import equinox as eqx
    import jax.numpy as jnp

    from scorefield.noise import nearest_level

    class _XlaTrig(eqx.Module):
        net: eqx.Module

        def __call__(self, x, sigma):
            n = self.net
            level = nearest_level(n.sigmas, sigma)
            u = x - n.centre
            feats = jnp.concatenate([jnp.cos(2 * jnp.pi * n.b_cos @ u), jnp.sin(2 * jnp.pi * n.b_sin @ u)])
            return n.mlp(jnp.concatenate([n.scale[level] * feats + n.shift[level], u]))

    import jax

    # and the activation as the reference wrote it (scorefield's is the same function, cheaper)
    return _XlaTrig(eqx.tree_at(lambda m: m.mlp.activation, net, jax.nn.softplus))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=4096, help="particles (runner and vmap)")
    p.add_argument("--levels", type=int, default=10)
    p.add_argument("--steps", type=int, default=10, help="steps per level")
    p.add_argument("--ref-steps", type=int, default=5000, help="steps of the single-particle loop")
    p.add_argument("--devices", type=int, default=1,
                   help="XLA CPU devices (sets --xla_force_host_platform_device_count unless XLA_FLAGS has it)")
    p.add_argument("--block-sizes", default="",
                   help="comma-separated runner block sizes to time besides the default (e.g. 256,512,1024,2048)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each row, interleaved; the best counts")
    args = p.parse_args()
    flags = os.environ.get("XLA_FLAGS", "")
    if args.devices > 1 and "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = flags + f" --xla_force_host_platform_device_count={args.devices}"

    import jax
    import jax.numpy as jnp

    import scorefield.samplers as S
    from scorefield.nets import ReferenceNet
    from scorefield.samplers._runner import default_block_size

    load0 = os.getloadavg()[0]
    sigmas = S.geometric(1.0, 1e-4, 30)
    net = ReferenceNet(2, sigmas, n_features=256, width=128, depth=3, centre=jnp.asarray([0.5, 0.5]),
                       key=jax.random.key(0))
    score = lambda x, sigma: net(x, sigma)  # noqa: E731
    grid = sigmas[:: max(1, 30 // args.levels)][: args.levels]
    eps = 1e-3

    # reference: one particle, one lax.scan (as the walkthrough's sampler), at level 17
    sigma17 = sigmas[17]

    def chain(x, key, n_steps, fn=score):
        def body(x, k):
            z = jax.random.normal(k, x.shape)
            return x + 0.5 * eps * fn(x, sigma17) + jnp.sqrt(eps) * z, None

        return jax.lax.scan(body, x, jax.random.split(key, n_steps))[0]

    # the seed: the reference's network (XLA sin/cos) in the reference's one-particle loop
    seed_net = XlaTrig(net)
    u = jax.random.uniform(jax.random.key(7), (256, 2))
    err = float(jnp.max(jnp.abs(jax.vmap(seed_net, (0, None))(u, sigma17) - jax.vmap(net, (0, None))(u, sigma17))))
    seed = jax.jit(lambda x, k: chain(x, k, args.ref_steps, lambda y, s: seed_net(y, s)))
    ref = jax.jit(lambda x, k: chain(x, k, args.ref_steps))
    x1, k1 = jnp.asarray([0.5, 0.5]), jax.random.key(1)

    # naive vmap of the chain over particles: one lax.scan of all steps on the whole batch
    total = args.levels * args.steps
    vm = jax.jit(jax.vmap(lambda x, k: chain(x, k, total)))
    x0 = jax.random.uniform(jax.random.key(2), (args.n, 2))
    keys = jax.random.split(jax.random.key(3), args.n)

    # the runner
    # eta_1 = eps on the largest level, smaller below: an untrained network stays finite
    sampler = S.AnnealedLangevin(grid, args.steps, eps=eps * float(grid[-1] / grid[0]) ** 2, denoise=False)

    def runner(block_size):
        return lambda: S.sample(sampler, score, jax.random.key(4), n=args.n, dim=2, block_size=block_size,
                                init=S.GaussianInit(1.0, 0.5)).samples

    # matmul bound: FLOPs of one evaluation (dense layers + feature projections)
    f = 2 * 256
    flops_eval = 2 * (2 * f) + 2 * (f + 2) * 128 + 2 * 2 * 128 * 128 + 2 * 128 * 2
    a = jax.random.normal(jax.random.key(5), (4096, 512))
    b = jax.random.normal(jax.random.key(6), (512, 512))
    mm = jax.jit(lambda a, b: a @ b)

    auto = default_block_size()
    extra = [int(v) for v in args.block_sizes.split(",") if v.strip()]
    # name: (callable, particle-steps per call); matmul counts evaluations per call
    rows = {
        "seed reference": (lambda: seed(x1, k1), args.ref_steps),
        "1 particle, our net": (lambda: ref(x1, k1), args.ref_steps),
        "vmap": (lambda: vm(x0, keys), args.n * total),
        f"runner (block {auto or 'chunk'})": (runner(None), args.n * total),
        "runner, one block": (runner(args.n), args.n * total),
    }
    for bs in extra:
        rows[f"runner, block {bs}"] = (runner(bs), args.n * total)
    rows["matmul bound"] = (lambda: mm(a, b), 2 * 4096 * 512 * 512 / flops_eval)

    # Interleaved repeats, best of each: other load on the machine hits every row alike.
    for fn, _ in rows.values():
        jax.block_until_ready(fn())  # compile and warm up
    times = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, (fn, _) in rows.items():
            t = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - t)
    rate = {name: work / min(times[name]) for name, (_, work) in rows.items()}

    print(f"# bench_samplers  jax {jax.__version__}  devices {jax.device_count()}  cpus {os.cpu_count()}  "
          f"N={args.n} levels={args.levels} steps/level={args.steps}  "
          f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"{'what':24s} {'particle-steps/s':>18s} {'x seed':>10s} {'x vmap':>10s}")
    for name, r in rate.items():
        print(f"{name:24s} {r:18,.0f} {r / rate['seed reference']:10.2f} {r / rate['vmap']:10.2f}")
    flops_s = rate["matmul bound"] * flops_eval
    print(f"(matmul {flops_s / 1e9:.1f} GFLOP/s, {flops_eval} FLOPs per evaluation; "
          f"our ReferenceNet (polynomial sin/cos) differs from the seed's XLA sin/cos by at most {err:.1e})")


if __name__ == "__main__":
    sys.exit(main())
