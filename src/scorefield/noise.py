"""Noise schedules: which perturbation scales sigma a model is trained and sampled at.

sigma is the standard deviation of the isotropic Gaussian perturbation
x~ = x + sigma z, z ~ N(0, I), in data coordinates (covariance sigma^2 I).
Grids are ordered from the largest sigma to the smallest, as annealed samplers visit them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from ._errors import ConfigError

__all__ = ["geometric", "sigma_max_ncsnv2", "random_levels", "log_uniform", "nearest_level"]


def geometric(sigma_max: float, sigma_min: float, n_levels: int) -> Float[Array, " L"]:
    """Geometric grid sigma_1 > ... > sigma_L from `sigma_max` down to `sigma_min`.

    Arguments:
        sigma_max, sigma_min: the end points, both included, 0 < sigma_min < sigma_max
            (a single level, `n_levels == 1`, is `sigma_max`).
        n_levels: L >= 1.
    Returns:
        float32 array of shape (L,), descending.
    """
    if not (np.isfinite(sigma_min) and np.isfinite(sigma_max) and 0 < sigma_min):
        raise ConfigError(f"sigma_min={sigma_min} and sigma_max={sigma_max} must be positive finite numbers")
    if n_levels < 1:
        raise ConfigError(f"n_levels={n_levels} must be at least 1")
    if n_levels > 1 and not sigma_min < sigma_max:
        raise ConfigError(f"sigma_min={sigma_min} must be smaller than sigma_max={sigma_max}")
    if n_levels == 1:
        return jnp.asarray([sigma_max], jnp.float32)
    return jnp.asarray(np.geomspace(sigma_max, sigma_min, n_levels), jnp.float32)


def sigma_max_ncsnv2(points: Float[Array, "n d"] | np.ndarray, *, max_points: int = 4096) -> float:
    """NCSNv2's rule (Song and Ermon 2020, technique 1): sigma_max = the largest Euclidean
    distance between two data points, estimated on at most `max_points` of them.

    Arguments:
        points: data samples of shape (n, d).
        max_points: the estimate uses the first `max_points` rows (pass a random sample).
    Returns:
        the largest pairwise distance, a Python float.
    """
    x = np.asarray(points, np.float64)[:max_points]
    if x.ndim != 2 or len(x) < 2:
        raise ConfigError("sigma_max_ncsnv2 needs at least two points of shape (n, d)")
    sq = np.sum(x * x, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * x @ x.T
    return float(np.sqrt(max(float(d2.max()), 0.0)))


def random_levels(key: PRNGKeyArray, n_levels: int, n: int) -> Int[Array, " n"]:
    """One level index per sample, uniform over 0..L-1."""
    return jax.random.randint(key, (n,), 0, n_levels)


def log_uniform(
    key: PRNGKeyArray, sigma_min: float | Float[ArrayLike, ""], sigma_max: float | Float[ArrayLike, ""], n: int
) -> Float[Array, " n"]:
    """One sigma per sample, log-uniform on [sigma_min, sigma_max]: every scale gets equal mass."""
    u = jax.random.uniform(key, (n,))
    return jnp.exp(jnp.log(sigma_min) + u * (jnp.log(sigma_max) - jnp.log(sigma_min)))


def nearest_level(sigmas: Float[ArrayLike, " L"], sigma: Float[ArrayLike, ""]) -> Int[Array, ""]:
    """Index of the level of `sigmas` nearest to `sigma` in log scale."""
    return jnp.argmin(jnp.abs(jnp.log(sigmas) - jnp.log(sigma)))
