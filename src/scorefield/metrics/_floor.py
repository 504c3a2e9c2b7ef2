"""The finite-sample floor of a metric: its value between exact samples of the target."""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._validate import positive_int

# Student's t quantile t_{0.975, nu} for nu = 1..30; beyond, the Cornish-Fisher series
# (error < 1e-5 at nu > 30). A table, not scipy: scipy is not a runtime dependency.
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.306, 2.2622, 2.2281,
         2.201, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.093, 2.086,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


def t975(nu: int) -> float:
    """The 97.5% quantile of Student's t with `nu` >= 1 degrees of freedom."""
    if nu <= len(_T975):
        return _T975[nu - 1]
    z = 1.959964
    return (z + (z**3 + z) / (4 * nu) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * nu**3))


class Floor(NamedTuple):
    """A metric's value between exact samples, over `repeats` independent draws.

    Fields:
        mean: the mean over the draws (the floor).
        stderr: the standard error of that mean (std / sqrt(repeats)): how well the floor
            is known, NOT how far one value may fall from it.
        std: the standard deviation of ONE draw (ddof 1): the spread of a single value.
        low, high: a 95% prediction range for one new draw: an exact sampler's value lands
            in [low, high] 95% of the time. The metrics are positive and skewed (V-statistics
            are weighted chi-squares), so the range is Student's t on the log of the draws,
            exp(m +- t_{r-1} s sqrt(1 + 1/r)), m, s the mean and std of log value; where a
            draw is <= 0, the same on the values themselves.
    All are NaN where `repeats` is too small for them (std, range: repeats >= 2).
    """

    mean: Float[Array, ""]
    stderr: Float[Array, ""]
    std: Float[Array, ""] = jnp.nan
    low: Float[Array, ""] = jnp.nan
    high: Float[Array, ""] = jnp.nan

    def range_text(self) -> str:
        """"0.0470 (exact draws 0.0442-0.0501, 95%)": the floor and the range of one
        draw, with enough significant digits that the range never rounds to one number."""
        mean, low, high = float(self.mean), float(self.low), float(self.high)
        if not (math.isfinite(low) and math.isfinite(high)):
            return f"{mean:.3g}"
        digits = 3
        while digits < 8 and f"{low:.{digits}g}" == f"{high:.{digits}g}":
            digits += 1
        return f"{mean:.{digits}g} (exact draws {low:.{digits}g}-{high:.{digits}g}, 95%)"


def floor_of(values: Float[ArrayLike, " r"]) -> Floor:
    """`Floor` of the draws `values` (r of them): mean, its s.e., one draw's std and range."""
    v = np.asarray(values, np.float64)
    r = v.shape[0]
    mean = float(np.mean(v))
    if r < 2:
        nan = math.nan
        std = stderr = low = high = nan
    else:
        std = float(np.std(v, ddof=1))
        stderr = std / math.sqrt(r)
        t = t975(r - 1) * math.sqrt(1.0 + 1.0 / r)
        if np.all(v > 0):
            lv = np.log(v)
            m, s = float(np.mean(lv)), float(np.std(lv, ddof=1))
            low, high = math.exp(m - t * s), math.exp(m + t * s)
        else:
            low, high = mean - t * std, mean + t * std
    dt = jnp.result_type(values) if hasattr(values, "dtype") else jnp.float32
    return Floor(*(jnp.asarray(a, dt) for a in (mean, stderr, std, low, high)))


def two_sample_floor(
    metric: Callable[[Float[Array, "n d"], Float[Array, "m d"]], Float[Array, ""]],
    sample_fn: Callable[[PRNGKeyArray, int], Float[Array, "k d"]],
    n: int,
    m: int | None = None,
    *,
    key: PRNGKeyArray,
    reference: Float[ArrayLike, "m d"] | None = None,
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
        repeats: number of independent draws, >= 1 (>= 2 for a spread).
    Returns:
        `Floor` (mean, stderr, std and the 95% range of one draw).
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
