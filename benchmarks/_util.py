"""Shared measuring helpers for the benchmarks: best-of timing and the machine's dense
fp32 matmul rate (the roofline every score-network benchmark is compared with)."""

from __future__ import annotations

import platform
import time

import jax
import jax.numpy as jnp


def best_time(fn, *, repeats: int = 5, warmup: int = 1) -> float:
    """Best wall time in seconds of ``fn()`` (which must block until done)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_gflops(n: int = 2048, dtype=jnp.float32) -> float:
    """Measured dense matmul rate in GFLOP/s (2 n^3 FLOPs per product)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), dtype)
    f = jax.jit(lambda a, b: a @ b)
    # best of 10: the rate is the roofline, and this machine has bursts of outside load
    t = best_time(lambda: f(a, b).block_until_ready(), repeats=10)
    return 2 * n**3 / t / 1e9


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} on {jax.devices()[0].platform}"


def flops_of(compiled) -> float:
    """FLOPs XLA counts for a compiled computation (cost analysis)."""
    compiled = getattr(compiled, "compiled", compiled)  # unwrap equinox's Compiled
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0]
    return float(cost.get("flops", float("nan")))
