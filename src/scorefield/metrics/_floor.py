"""The finite-sample floor of a metric: its value between exact samples of the target."""

from __future__ import annotations

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
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

    # Draw all samples in one compiled call, then apply the metric draw by draw: the
    # metric is already compiled for these shapes (it judged the samples), whereas a
    # lax.map over repeats would compile its whole body a second time. The loop is
    # `repeats` long and each step is a heavy compiled kernel, so its host cost is nil.
    kx, ky = jr.split(key)
    xs = _draw(sample_fn, jr.split(kx, repeats), n)
    ys = None if reference is not None else _draw(sample_fn, jr.split(ky, repeats), m)
    ref = None if reference is None else jnp.asarray(reference)
    values = jnp.stack([metric(xs[i], ref if ys is None else ys[i]) for i in range(repeats)])
    return floor_of(values)


@eqx.filter_jit
def _draw(sample_fn, keys, n: int):
    # filter_jit: a bound method of an Equinox module (Dataset.sample) is traced through
    # its arrays, so repeated floors of one data set reuse one compilation.
    return jax.vmap(lambda k: sample_fn(k, n))(keys)
