"""Sliced Wasserstein distance: exact 1-D Wasserstein distances along random directions."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import jax.random as jr
from jax import lax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import InputError
from . import _validate


def wasserstein_1d(u: Float[ArrayLike, " n"], v: Float[ArrayLike, " m"], p: int = 2) -> Float[Array, ""]:
    """W_p^p between the empirical distributions of two 1-D samples (uniform weights).

    Exact for any sizes: integrates |F_u^-1(t) - F_v^-1(t)|^p over t in (0, 1) on the merged
    grid of breakpoints {i/n} and {j/m}, where both quantile functions are constant.
    Memory O(n + m).
    """
    n, m = u.shape[0], v.shape[0]
    u, v = jnp.sort(u), jnp.sort(v)
    if n == m:
        return jnp.mean(jnp.abs(u - v) ** p)
    t = jnp.sort(jnp.concatenate([jnp.arange(1, n + 1) / n, jnp.arange(1, m + 1) / m]))
    dt = jnp.diff(t, prepend=0.0)
    mid = t - 0.5 * dt
    # Inside an interval t*n is never an integer, so floor(t*n) is the quantile's index.
    iu = jnp.clip(jnp.floor(mid * n).astype(jnp.int32), 0, n - 1)
    iv = jnp.clip(jnp.floor(mid * m).astype(jnp.int32), 0, m - 1)
    return jnp.sum(dt * jnp.abs(u[iu] - v[iv]) ** p)


@partial(jax.jit, static_argnames=("n_projections", "p"))
def _sliced(x, y, key, n_projections, p):
    d = x.shape[1]
    dirs = jr.normal(key, (n_projections, d), x.dtype)
    dirs = dirs / jnp.linalg.norm(dirs, axis=1, keepdims=True)
    wp = lax.map(lambda th: wasserstein_1d(x @ th, y @ th, p), dirs)
    return jnp.mean(wp) ** (1.0 / p)


def sliced_wasserstein(
    x: ArrayLike,
    y: ArrayLike,
    *,
    key: PRNGKeyArray,
    n_projections: int = 128,
    p: int = 2,
) -> Float[Array, ""]:
    """Sliced Wasserstein distance SW_p = (mean over directions theta of
    W_p^p(theta . x, theta . y))^(1/p), in the units of the data.

    Arguments:
        x, y: samples of shapes (n, d) and (m, d); n and m may differ (exact 1-D distances
            via quantile functions, see `wasserstein_1d`).
        key: PRNG key for the directions, uniform on the unit sphere. Use one key for a
            value and for its floor so both see the same directions.
        n_projections: number of directions (one 1-D problem of size n + m at a time).
        p: 1 or 2 (default 2, SW_2).
    Returns:
        float scalar >= 0. Between two samples of one distribution it is positive
        (about n^-1/2 for SW_2 in 1-D); compare with the floor.
    """
    x = _validate.points("x", x)
    y = _validate.points("y", y)
    _validate.same_dim("x", x, "y", y)
    n_projections = _validate.positive_int("n_projections", n_projections)
    if p not in (1, 2):
        raise InputError(f"p must be 1 or 2, got {p!r}")
    dtype = jnp.result_type(x.dtype, y.dtype)
    return _sliced(x.astype(dtype), y.astype(dtype), key, n_projections, p)
