"""The finite-sample floor of a metric: its value between exact samples of the target."""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import jax.random as jr
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from ._validate import positive_int


class Floor(NamedTuple):
    """Mean of a metric over `repeats` independent draws of exact samples, and the
    standard error of that mean (sample standard deviation / sqrt(repeats))."""

    mean: Float[Array, ""]
    stderr: Float[Array, ""]


def floor_of(values: Float[Array, " r"]) -> Floor:
    r = values.shape[0]
    std = jnp.std(values, ddof=1) if r > 1 else jnp.asarray(jnp.nan, values.dtype)
    return Floor(jnp.mean(values), std / jnp.sqrt(r))


def two_sample_floor(
    metric: Callable[[Float[Array, "n d"], Float[Array, "m d"]], Float[Array, ""]],
    sample_fn: Callable[[PRNGKeyArray, int], Float[Array, "k d"]],
    n: int,
    m: int | None = None,
    *,
    key: PRNGKeyArray,
    reference: Float[Array, "m d"] | None = None,
    repeats: int = 8,
) -> Floor:
    """Floor of a two-sample metric: `metric(exact_n, exact_m)` averaged over repeats.

    Arguments:
        metric: `metric(x, y) -> scalar`, e.g. `energy_distance` or a `functools.partial`
            of `sliced_wasserstein` with a fixed key (use the same projections as the
            value the floor is compared with).
        sample_fn: `sample_fn(key, k) -> (k, d)` exact iid samples of the target; jit-safe.
        n: size of the first sample (the size of the samples being judged).
        m: size of the second sample (default n). Ignored when `reference` is given.
        key: PRNG key.
        reference: a fixed second argument (e.g. the data point set itself) instead of a
            fresh draw of size m.
        repeats: number of independent draws, >= 1 (>= 2 for a standard error).
    Returns:
        `Floor(mean, stderr)`.
    """
    n = positive_int("n", n)
    m = n if m is None else positive_int("m", m)
    repeats = positive_int("repeats", repeats)

    # The reference travels as an argument, not a closure: a closed-over array would be
    # baked into the compiled program as a constant.
    @jax.jit
    def run(keys, ref):
        def one(k):
            k1, k2 = jr.split(k)
            x = sample_fn(k1, n)
            y = ref if ref is not None else sample_fn(k2, m)
            return metric(x, y)

        return lax.map(one, keys)

    ref = None if reference is None else jnp.asarray(reference)
    return floor_of(run(jr.split(key, repeats), ref))
