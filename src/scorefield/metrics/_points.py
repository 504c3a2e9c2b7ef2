"""Metrics for point clouds in D >= 3 that show what energy distance and sliced W2 miss:
per-dimension marginal KS distances; for Gaussian-mixture targets, the fraction of samples
outside every component's 3-sigma region, the within-component spread, and mode weights."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from . import _validate
from ._modes import mixture_params

# the mass of a Gaussian within 3 standard deviations, erf(3 / sqrt 2)
_MASS_3SIGMA = math.erf(3.0 / math.sqrt(2.0))


@jax.jit
def marginal_ks(x: Float[ArrayLike, "n d"], y: Float[ArrayLike, "m d"]) -> Float[Array, " d"]:
    """The two-sample Kolmogorov-Smirnov distance of every coordinate: for each d, the
    largest gap sup_t |F_x(t) - F_y(t)| between the empirical CDFs of x[:, d] and y[:, d].

    Arguments:
        x, y: samples (n, d) and (m, d).
    Returns:
        (d,) distances in [0, 1]. Between exact samples of the same law its mean is about
        0.87 sqrt((n + m) / (n m)) (Kolmogorov's limit): report it next to its floor.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)

    def one(a, b):
        a, b = jnp.sort(a), jnp.sort(b)
        t = jnp.concatenate([a, b])
        fa = jnp.searchsorted(a, t, side="right") / a.shape[0]
        fb = jnp.searchsorted(b, t, side="right") / b.shape[0]
        return jnp.max(jnp.abs(fa - fb))

    return jax.vmap(one, in_axes=(1, 1))(x, y)


@functools.lru_cache(maxsize=64)
def _chi2_quantile(p: float, d: int) -> float:
    """The p-quantile of chi^2 with d degrees of freedom (Wilson-Hilferty, then Newton on
    the regularised gamma function; exact to ~1e-10, no scipy)."""
    z = math.sqrt(2.0) * _erfinv(2.0 * p - 1.0)
    q = d * (1.0 - 2.0 / (9.0 * d) + z * math.sqrt(2.0 / (9.0 * d))) ** 3
    q = max(q, 1e-8)
    for _ in range(50):
        cdf = float(jax.scipy.special.gammainc(d / 2.0, q / 2.0))
        pdf = math.exp((d / 2.0 - 1.0) * math.log(q / 2.0) - q / 2.0 - math.lgamma(d / 2.0)) / 2.0
        step = (cdf - p) / pdf
        q = max(q - step, q / 10.0)
        if abs(step) < 1e-10 * q:
            break
    return q


def _erfinv(y: float) -> float:
    return float(jax.scipy.special.erfinv(jnp.asarray(y, jnp.float64 if jax.config.x64_enabled else jnp.float32)))


@jax.jit
def _mahalanobis2(means, covs, x):
    """(n, k) squared Mahalanobis distances of every sample to every component (one
    compiled program: eagerly, its Cholesky, batched solve and sums compiled op by op)."""
    chol = jnp.linalg.cholesky(covs)

    def per_component(mu, l):
        diff = (x - mu).T  # (d, n)
        w = jax.scipy.linalg.solve_triangular(l, diff, lower=True)
        return jnp.sum(w * w, axis=0)

    return jax.vmap(per_component, out_axes=1)(means, chol)


def outside_shells(mixture, samples: Float[ArrayLike, "n d"], *, n_sigma: float = 3.0) -> Float[Array, ""]:
    """The fraction of samples outside every component's `n_sigma` region: the ellipsoid
    {x : (x - mu)^T Sigma^-1 (x - mu) <= q}, q the chi^2_D quantile of the mass a 1-D
    Gaussian has within n_sigma standard deviations (99.73% at 3). A sample outside all of
    them belongs to no component: a spurious sample. Each component's own exact draws fall
    outside its region with probability 0.27%, fewer outside all of them; compare with the
    floor from exact draws.

    Arguments:
        mixture: a `GaussianMixture` or (means, covariances or variances, weights).
        samples: (n, d).
        n_sigma: the 1-D equivalent width, > 0.
    """
    means, covs, _ = mixture_params(mixture)
    x = _validate.points("samples", samples, dim=means.shape[1]).astype(means.dtype)
    mass = _MASS_3SIGMA if n_sigma == 3.0 else math.erf(n_sigma / math.sqrt(2.0))
    q = _chi2_quantile(mass, int(means.shape[1]))
    m2 = _mahalanobis2(means, covs, x)
    return jnp.mean(jnp.all(m2 > q, axis=1))


def within_std_ratio(mixture, samples: Float[ArrayLike, "n d"]) -> Float[Array, ""]:
    """How wide the samples' components are against the truth: each sample is assigned to
    its nearest component in Mahalanobis distance, and the ratio is
    sqrt(sum_i m2_i / (D n)), m2_i the squared Mahalanobis distance to that component; 1 for
    exact draws of well-separated components (overlapping ones read a little below 1: the
    floor shows it). Below 1: the samples are shrunk toward the means; above: too spread.
    """
    means, covs, _ = mixture_params(mixture)
    x = _validate.points("samples", samples, dim=means.shape[1]).astype(means.dtype)
    m2 = _mahalanobis2(means, covs, x)
    return jnp.sqrt(jnp.mean(jnp.min(m2, axis=1)) / means.shape[1])


def point_metrics(dataset, samples, x, y, reference, *, key, repeats: int) -> dict:
    """The D >= 3 entries of `evaluate`, each value with the floor of the same estimator on
    exact draws: `marginal_ks` (per coordinate, `x` against `y`), `marginal_ks_max` and
    `marginal_ks_mean`; for a Gaussian-mixture target also (on all `samples`)
    `outside_shells`, `within_std_ratio` and `mode_weights_max_error`.

    Arguments:
        dataset: the data (its `sample` gives the exact draws of the floors).
        samples: all (n, d) samples; x: the (k, d) subset the pairwise metrics use, y their
            reference, `reference` the fixed reference (a point set) or None (fresh draws).
        key: PRNG key; repeats: draws per floor.
    Returns:
        {name: value, name_floor: Floor} (the caller formats them).
    """
    import jax.random as jr

    from ..targets import GaussianMixture
    from ._floor import _draw, floor_of, two_sample_floor

    k1, k2 = jr.split(key)
    out: dict = {"marginal_ks": marginal_ks(x, y)}
    for name, reduce in (("marginal_ks_max", jnp.max), ("marginal_ks_mean", jnp.mean)):
        metric = lambda a, b, reduce=reduce: reduce(marginal_ks(a, b))  # noqa: E731
        out[name] = (metric(x, y), two_sample_floor(metric, dataset.sample, x.shape[0], y.shape[0], key=k1,
                                                   reference=reference, repeats=repeats))
    target = getattr(dataset, "target", None)
    if isinstance(target, GaussianMixture):
        _, _, w = mixture_params(target)
        fns = {
            "outside_shells": lambda s: outside_shells(target, s),
            "within_std_ratio": lambda s: within_std_ratio(target, s),
            "mode_weights_max_error": lambda s: jnp.max(jnp.abs(_mode_weights(target, s) - w)),
        }
        # one compiled sampler for all draws (the floors' `_draw`, already compiled for this
        # size by the mode-weight floor), the same draws as sampling key by key
        draws = _draw(target.sample, jr.split(k2, repeats), samples.shape[0])
        for name, fn in fns.items():
            out[name] = (fn(samples), floor_of(jnp.stack([fn(draws[i]) for i in range(repeats)])))
    return out


def _mode_weights(target, s):
    from ._modes import mode_weights

    return mode_weights(target, s)
