"""`evaluate`: the metrics that apply to a data set, each next to its floor."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import jax.random as jr
from jaxtyping import ArrayLike, Float, PRNGKeyArray

from .._errors import InputError
from .._types import ScoreFn
from ..data import EmpiricalSampler
from ..targets import GaussianMixture, ImageDensity, SmoothedTarget
from . import _validate
from ._energy import energy_distance
from ._fisher import fisher_divergence, perturbed_points
from ._floor import Floor, _draw, floor_of, two_sample_floor
from ._hist import hist_tv, hist_tv_floor
from ._mmd import median_bandwidth, mmd2
from ._modes import mixture_params, mode_weights
from ._points import point_metrics
from ._sliced import sliced_wasserstein


def _put(out: dict, name: str, value, floor: Floor | None = None) -> None:
    out[name] = float(value)
    if floor is not None:
        out[f"{name}_floor"] = float(floor.mean)
        out[f"{name}_floor_stderr"] = float(floor.stderr)
        out[f"{name}_floor_std"] = float(floor.std)
        out[f"{name}_floor_low"] = float(floor.low)
        out[f"{name}_floor_high"] = float(floor.high)


def _subset(key, x, k):
    """k rows of x without replacement (all of x, in order, if k >= len(x))."""
    if x.shape[0] <= k:
        return x
    return x[jr.choice(key, x.shape[0], (k,), replace=False)]


def evaluate(
    dataset,
    samples: Float[ArrayLike, "n d"],
    *,
    key: PRNGKeyArray,
    repeats: int = 8,
    max_points: int = 2000,
    n_projections: int = 64,
    score_fn: ScoreFn | None = None,
    sigmas: Float[ArrayLike, " l"] | Sequence[float] | None = None,
    n_fisher: int = 1024,
) -> dict[str, Any]:
    """Every metric that applies to `dataset`, each with its finite-sample floor.

    - image data (an `ImageDensity` target): `hist_tv` on all N samples, floor at N.
    - a Gaussian-mixture target: `mode_weights` (mean responsibilities) against the
      mixture's weights, and their total variation `mode_weights_tv` with its floor.
    - always: `energy_distance`, `mmd2` (Gaussian kernel, bandwidth `mmd_bandwidth` by
      the median heuristic on the reference, fixed for value and floor) and
      `sliced_wasserstein` (SW_2, fixed directions), between at most `max_points` of the
      samples and a reference of the same size: exact samples of the data where it has
      an exact sampler, or the point set itself (at most `max_points` of it) for point
      files. Floors: the same metric with exact draws of the data in place of the samples.
    - D >= 3: `marginal_ks` (the KS distance of each coordinate, pairwise samples against
      the reference), `marginal_ks_max`, `marginal_ks_mean` with floors; for a Gaussian-
      mixture target also `outside_shells` (fraction outside every component's 3-sigma
      ellipsoid), `within_std_ratio` (spread about the nearest component / truth) and
      `mode_weights_max_error`, with floors (see `metrics._points`).
    - with `score_fn` and `sigmas`, where the data has an exact smoothed score:
      `fisher_divergence` E|s_theta(x, sigma) - s(x, sigma)|^2 per level (x from
      p_sigma, `n_fisher` points) and `fisher_relative`, the same over E|s(x, sigma)|^2.

    Arguments:
        dataset: a `scorefield.data.Dataset` (`spec`, `dim`, `target`, `sample(key, n)`).
        samples: (N, D) samples to judge, finite.
        key: PRNG key (reference draws, floors, projections).
        repeats: draws averaged in each floor.
        max_points: cap on the sample size of the pairwise metrics (their cost is
            quadratic in it; memory is not).
        n_projections: directions of the sliced Wasserstein distance.
        score_fn, sigmas: a score model `score_fn(x, sigma)` and its noise levels.
        n_fisher: points per level for the Fisher divergence.
    Returns:
        a JSON-ready dict of floats and lists: the names above, `<name>_floor` (mean over
        the exact draws), `<name>_floor_stderr` (its standard error), `<name>_floor_std`
        and `<name>_floor_low`, `<name>_floor_high` (the spread of ONE exact draw: its
        std and 95% prediction range, the yardstick for one value; see `Floor`), plus `data`, `dim`, `n_samples`, and `pair_n`, `reference`,
        `reference_n` (how many samples against what the pairwise metrics compared).
    """
    dim = int(dataset.dim)
    samples = _validate.points("samples", samples, dim=dim, min_n=2).astype(jnp.float32)
    if not bool(jnp.all(jnp.isfinite(samples))):
        bad = int(jnp.sum(~jnp.all(jnp.isfinite(samples), axis=1)))
        raise InputError(f"samples has {bad} rows with NaN or inf; all values must be finite")
    repeats = _validate.positive_int("repeats", repeats)
    max_points = _validate.positive_int("max_points", max_points)
    n = samples.shape[0]
    target = dataset.target
    keys = iter(jr.split(key, 16))
    out: dict[str, Any] = {"data": str(dataset.spec), "dim": dim, "n_samples": n}

    if isinstance(target, ImageDensity):
        # The hist_tv floor is cheap (counts only), so it gets at least 32 draws.
        floor = hist_tv_floor(target, n, key=next(keys), repeats=max(repeats, 32))
        _put(out, "hist_tv", hist_tv(target, samples), floor)

    if isinstance(target, GaussianMixture):
        _, _, w = mixture_params(target)
        got = mode_weights(target, samples)
        out["mode_weights"] = [float(v) for v in got]
        out["mode_weights_target"] = [float(v) for v in w]
        floor = _mode_tv_floor(target, w, n, next(keys), repeats)
        _put(out, "mode_weights_tv", 0.5 * jnp.sum(jnp.abs(got - w)), floor)

    # Pairwise metrics: model samples against a reference, floors from exact draws.
    x = _subset(next(keys), samples, max_points)
    k = x.shape[0]
    point_set = dataset.sampler.points if target is None and isinstance(dataset.sampler, EmpiricalSampler) else None
    if point_set is not None:
        y = _subset(next(keys), jnp.asarray(point_set, jnp.float32), max_points)
        reference, ref_name = y, "point set"
    else:
        y = dataset.sample(next(keys), k)
        reference, ref_name = None, "exact samples"
    out["pair_n"] = k
    out["reference"] = ref_name
    out["reference_n"] = int(y.shape[0])
    h = median_bandwidth(y)
    out["mmd_bandwidth"] = float(h)
    sw_key = next(keys)
    metrics = {
        "energy_distance": energy_distance,
        "mmd2": functools.partial(mmd2, bandwidth=h),
        "sliced_wasserstein": functools.partial(sliced_wasserstein, key=sw_key, n_projections=n_projections),
    }
    m = y.shape[0]
    for name, metric in metrics.items():
        floor = two_sample_floor(
            metric, dataset.sample, k, m, key=next(keys), reference=reference, repeats=repeats
        )
        _put(out, name, metric(x, y), floor)
    if dim >= 3:  # per-coordinate KS; spurious samples, spread, mode weights of mixtures
        for name, v in point_metrics(dataset, samples, x, y, reference, key=next(keys), repeats=repeats).items():
            if isinstance(v, tuple):
                _put(out, name, *v)
            else:
                out[name] = [float(a) for a in v]

    if score_fn is not None and sigmas is not None:
        if isinstance(target, SmoothedTarget):
            sig = jnp.asarray(sigmas, jnp.float32).reshape(-1)
            data = dataset.sample(next(keys), int(n_fisher))
            xs = perturbed_points(next(keys), data, sig)
            fd = fisher_divergence(score_fn, target.smoothed_score, xs, sig)
            scale = fisher_divergence(_zero_score, target.smoothed_score, xs, sig)
            out["fisher_sigmas"] = [float(s) for s in sig]
            out["fisher_divergence"] = [float(v) for v in fd]
            out["fisher_relative"] = [float(v) for v in fd / scale]
        else:
            out["fisher_divergence"] = None  # no exact smoothed score for this data
    return out


def _zero_score(x, sigma):
    # Module-level, so the jitted E|s|^2 is compiled once per data set, not per call.
    return jnp.zeros_like(x)


def _mode_tv_floor(target, w, n: int, key, repeats: int) -> Floor:
    # The exact draws come from the floors' one compiled sampler (`_draw`, the same program
    # as the D >= 3 point metrics' draws of n points) and each is judged by the compiled
    # `mode_weights` that judged the samples (same shapes): no program of its own to compile
    # (a lax.map of sampler and weights took 1.4 s of XLA per sample size). Same keys, same
    # draws as before.
    draws = _draw(target.sample, jr.split(key, repeats), n)
    return floor_of(jnp.stack([0.5 * jnp.sum(jnp.abs(mode_weights(target, draws[i]) - w)) for i in range(repeats)]))
