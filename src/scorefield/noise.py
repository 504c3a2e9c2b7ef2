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

__all__ = [
    "geometric", "sigma_max_ncsnv2", "finest_scale", "sigma_min_from_data", "random_levels", "log_uniform",
    "log_normal", "nearest_level",
]

# sigma_min = max(finest scale / 4, 1e-4 sigma_max), capped at the old rule 5e-3 sigma_max
SIGMA_MIN_FRACTION = 5e-3
SIGMA_MIN_FLOOR = 1e-4
FINEST_SCALE_DIVISOR = 4.0
FINEST_K, FINEST_QUANTILE = 10, 0.5  # finest_scale's defaults: the median 10th-neighbour distance


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
    return _largest_distance(_squared_distances(_points(points, max_points)))


def _points(points, max_points: int) -> np.ndarray:
    """The first `max_points` rows as float64, refused unless at least two points (n, d)."""
    x = np.asarray(points, np.float64)[:max_points]
    if x.ndim != 2 or len(x) < 2:
        raise ConfigError("sigma_max_ncsnv2 needs at least two points of shape (n, d)")
    return x


def _squared_distances(x: np.ndarray) -> np.ndarray:
    """All (n, n) squared distances of the float64 points x (n, d), one formula for both rules."""
    sq = np.sum(x * x, axis=1)
    # (sq_i + sq_j) - 2 x_i.x_j as written before, with two (n, n) arrays instead of four
    # (doubling is exact, so the values are the same bits)
    d2 = sq[:, None] + sq[None, :]
    g = x @ x.T
    g *= 2.0
    return np.subtract(d2, g, out=d2)


def _largest_distance(d2: np.ndarray) -> float:
    return float(np.sqrt(max(float(d2.max()), 0.0)))


def _data_scales(points: Float[Array, "n d"] | np.ndarray, *, max_points: int = 4096) -> tuple[float, float]:
    """(sigma_max_ncsnv2(points), finest_scale(points)) from one computation of the pairwise
    distances of the first `max_points` rows (each rule alone computes them: an (n, n)
    float64 matrix, about half a second at n = 4096). The same values as the two calls."""
    x = _points(points, max_points)
    _check_finest(x, FINEST_K, FINEST_QUANTILE)
    d2 = _squared_distances(x)
    return _largest_distance(d2), _finest(d2, x.shape[1], FINEST_K, FINEST_QUANTILE)


def finest_scale(
    points: Float[Array, "n d"] | np.ndarray, *, k: int = FINEST_K, quantile: float = FINEST_QUANTILE, max_points: int = 4096
) -> float:
    """The data's finest length scale per coordinate: the `quantile` (default the median) of
    the distances from each point to its `k`-th nearest neighbour, divided by sqrt(2 D).

    Two independent points of one isotropic cluster of standard deviation s lie s sqrt(2 D)
    apart on average, so the ratio reads the cluster width s directly once a point's k
    neighbours spread over its cluster (clusters of a few dozen sample points, or D >= 8);
    where a smooth density is sampled densely it reads the sample spacing instead, which is
    smaller than any structure the data has (the safe direction: the noise range then
    reaches finer than needed). Measured on clusters of std s (2-D with ~30 sample points
    per cluster, and 8 clusters in 8 to 32 D): the median reads 0.52-0.77 s; the 10%
    quantile 0.39-0.70 s, biased low by the points in each cluster's dense core, so the
    median it is; a part of the data finer than the rest counts once it holds half the
    points (give sigma_min explicitly otherwise).

    Arguments:
        points: data samples (n, d), n > k; the first `max_points` rows are used (pass a
            random sample).
        k: which neighbour (10: beyond the few nearest, whose distances scatter most).
        quantile: in (0, 1).
    Returns:
        the scale in data units, a Python float (0 if many points coincide).
    """
    x = np.asarray(points, np.float64)[:max_points]
    _check_finest(x, k, quantile)
    return _finest(_squared_distances(x), x.shape[1], k, quantile)


def _check_finest(x: np.ndarray, k: int, quantile: float) -> None:
    if x.ndim != 2 or len(x) <= k:
        raise ConfigError(f"finest_scale needs more than k={k} points of shape (n, d), got {x.shape}")
    if not 0.0 < quantile < 1.0:
        raise ConfigError(f"finest_scale: quantile={quantile} must be in (0, 1)")


def _finest(d2: np.ndarray, dim: int, k: int, quantile: float) -> float:
    """finest_scale's value from the squared distances d2 (its diagonal is overwritten)."""
    np.fill_diagonal(d2, np.inf)
    d2.partition(k - 1, axis=1)  # in place: np.partition would copy the (n, n) matrix first
    dk = np.sqrt(np.maximum(d2[:, k - 1], 0.0))
    return float(np.quantile(dk, quantile) / np.sqrt(2.0 * dim))


def sigma_min_from_data(points: Float[Array, "n d"] | np.ndarray, sigma_max: float) -> tuple[float, str]:
    """The smallest noise level for point data, from its finest scale, and why.

    Rule: sigma_min = finest_scale / 4, kept within [1e-4, 5e-3] x sigma_max. A sampler that
    stops at sigma and denoises (Tweedie) turns a cluster of std s into one of std
    s / sqrt(1 + sigma^2 / s^2): at sigma = s / 4 that is 3% narrow, at the old 1% of
    sigma_max (sigma ~ s / 2 on the issue's 32-D mixture) 10%. The upper cap 5e-3 sigma_max
    is the former rule, so data without detail finer than that keep their former range; the
    lower cap bounds the span of levels one network must cover (a factor 1e4). Image
    densities do not use this rule: their pixel size sets the scale (see `train.resolve`).

    Arguments:
        points: a random sample of the data (n, d), n > 10.
        sigma_max: the largest noise level (data units).
    Returns:
        (sigma_min, a one-line reason naming the finest scale and the cap that applied).
    """
    return _sigma_min_rule(finest_scale(points), sigma_max)


def _sigma_min_rule(scale: float, sigma_max: float) -> tuple[float, str]:
    """sigma_min_from_data's rule applied to the data's finest scale."""
    hi, lo = SIGMA_MIN_FRACTION * sigma_max, SIGMA_MIN_FLOOR * sigma_max
    raw = scale / FINEST_SCALE_DIVISOR
    value = min(max(raw, lo), hi)
    which = ("finest scale / 4" if lo <= raw <= hi
             else "capped at 5e-3 sigma_max (no detail finer than that)" if raw > hi
             else "floored at 1e-4 sigma_max")
    why = (f"finest scale {scale:.4g} (median 10-NN distance / sqrt(2D)); "
           f"sigma_min = {value:.4g}: {which}")
    return float(value), why


def random_levels(key: PRNGKeyArray, n_levels: int, n: int) -> Int[Array, " n"]:
    """One level index per sample, uniform over 0..L-1."""
    return jax.random.randint(key, (n,), 0, n_levels)


def log_uniform(
    key: PRNGKeyArray, sigma_min: float | Float[ArrayLike, ""], sigma_max: float | Float[ArrayLike, ""], n: int
) -> Float[Array, " n"]:
    """One sigma per sample, log-uniform on [sigma_min, sigma_max]: every scale gets equal mass."""
    u = jax.random.uniform(key, (n,))
    return jnp.exp(jnp.log(sigma_min) + u * (jnp.log(sigma_max) - jnp.log(sigma_min)))


def log_normal(
    key: PRNGKeyArray, median: float | Float[ArrayLike, ""], spread: float | Float[ArrayLike, ""],
    sigma_min: float | Float[ArrayLike, ""], sigma_max: float | Float[ArrayLike, ""], n: int
) -> Float[Array, " n"]:
    """One sigma per sample with ln sigma ~ N(ln median, spread^2) truncated to
    [sigma_min, sigma_max] (Karras et al. 2022's training draw, kept inside the range the
    network is trained and sampled on): most mass on the middle scales, where a denoiser's
    errors show in samples, little on the finest and coarsest.

    Arguments:
        median: the median sigma before truncation (data units); spread: the standard
            deviation of ln sigma (EDM: 1.2).
    Returns:
        (n,) sigmas in data units.
    """
    mu, lo, hi = jnp.log(median), jnp.log(sigma_min), jnp.log(sigma_max)
    z = jax.random.truncated_normal(key, (lo - mu) / spread, (hi - mu) / spread, (n,))
    return jnp.clip(jnp.exp(mu + spread * z), sigma_min, sigma_max)


def nearest_level(sigmas: Float[ArrayLike, " L"], sigma: Float[ArrayLike, ""]) -> Int[Array, ""]:
    """Index of the level of `sigmas` nearest to `sigma` in log scale."""
    return jnp.argmin(jnp.abs(jnp.log(sigmas) - jnp.log(sigma)))
