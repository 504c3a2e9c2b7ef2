"""The likelihood report: NLL and bits per dimension, and KL to the exact density where
the data has one."""

from __future__ import annotations

import math

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from .._errors import InputError
from .._types import ScoreFn
from ..targets import SmoothedTarget
from ._floor import _grid_of, entropy, has_density, kl_floor
from ._ode import LikelihoodResult, log_likelihood

# Held-out draws: a stream of the data that training never uses (training draws from keys
# split off the config's seed; this folds a fixed tag into the user's seed instead).
_HELD_OUT_TAG = 0x4C4C  # "LL"


def _mean_se(a: np.ndarray) -> tuple[float, float]:
    a = np.asarray(a, np.float64)
    se = float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else math.nan
    return float(a.mean()), se


def report(result: LikelihoodResult, *, target=None, points=None, floor=None) -> dict:
    """Summary numbers of a `LikelihoodResult` (all in nats unless named otherwise).

    Keys: `nll` (mean -log p_model per sample) and `nll_se` (its standard error),
    `bits_per_dim` (nll / (D ln 2)), `n`, `dim`, `sigma_min`, `sigma_max`, `trace`,
    `n_probes`, `seconds`, `score_evals_per_point`; `prior_mismatch` where the result has
    an exact prior. Where `target` (the data's exact density) is given with the `points`
    the likelihood was computed at, which must be exact draws of it: `kl` = E_p[log p -
    log p_model] and `kl_se`; and where the target has a smoothed density, `kl_excess` =
    E_p[log p_sigma_min - log p_model] (the same KL minus the floor, paired on the same
    points, so with a much smaller error `kl_excess_se`) and `kl_floor` (`floor`, or
    computed by `kl_floor`). Without a density, `kl_unavailable` says why.
    """
    lp = result.log_prob
    nll, nll_se = _mean_se(-lp)
    out = {
        "nll": nll, "nll_se": nll_se, "bits_per_dim": nll / (result.dim * math.log(2.0)),
        "n": int(len(lp)), "dim": result.dim, "sigma_min": result.sigma_min, "sigma_max": result.sigma_max,
        "trace": result.trace, "n_probes": result.n_probes, "seconds": result.wall_time,
        "score_evals_per_point": result.n_score_evals_per_point,
    }
    if result.prior_mismatch is not None:
        out["prior_mismatch"] = result.prior_mismatch
    if target is None:
        out["kl_unavailable"] = "the data has no closed-form density (point files and empirical data), so no KL"
        return out
    if not has_density(target):
        out["kl_unavailable"] = "the data is a sum of point masses, which has no density, so no KL"
        return out
    if points is None:
        raise InputError("report(target=...) needs the points the likelihood was computed at (exact draws of the target)")
    pts = np.asarray(points, np.float32)
    log_p = np.asarray(jax.jit(jax.vmap(target.log_prob))(pts), np.float64)
    # A draw rounded onto the edge of an empty cell has log p = -inf although it has
    # probability 0; such rows are left out (and counted).
    ok = np.isfinite(log_p)
    out["kl"], out["kl_se"] = _mean_se(log_p[ok] - lp[ok])
    if not ok.all():
        out["kl_dropped"] = int((~ok).sum())
    if _grid_of(target) is not None:  # exact for grids; elsewhere it would be Monte Carlo
        out["entropy"] = entropy(target).value
    if isinstance(target, SmoothedTarget):
        smin = result.sigma_min
        lps = np.asarray(jax.jit(jax.vmap(lambda z: target.smoothed_log_prob(z, smin)))(pts), np.float64)
        out["kl_excess"], out["kl_excess_se"] = _mean_se(lps - lp)
        f = kl_floor(target, smin) if floor is None else floor
        out["kl_floor"] = f.value
        out["kl_floor_se"] = f.stderr
        out["kl_floor_method"] = f.method
    return out


def _held_out(dataset, n: int, key: PRNGKeyArray):
    """(exact target or None, `n` held-out draws (n, D) float32, probe key): the draws come
    from a stream of `key` separate from training's, the same for every likelihood method."""
    n = int(n)
    if n < 2:
        raise InputError(f"n={n} must be at least 2 (a mean and its standard error)")
    target = dataset if not hasattr(dataset, "target") else dataset.target
    k_draw, k_probe = jax.random.split(jax.random.fold_in(key, _HELD_OUT_TAG))
    return target, np.asarray(dataset.sample(k_draw, n), np.float32), k_probe


def evaluate_likelihood(
    score_fn: ScoreFn,
    dataset,
    *,
    n: int,
    sigma_min: float,
    sigma_max: float,
    key: PRNGKeyArray,
    prior_centre=0.0,
    **options,
) -> dict:
    """Likelihood report of `score_fn` on `n` held-out exact draws of `dataset`.

    Arguments:
        score_fn: the model's `score_fn(x, sigma)`.
        dataset: a `scorefield.data.Dataset` (or a `Target`): its `sample` gives the draws
            and its `target`, where present, the exact density for `kl`.
        n: number of draws.
        sigma_min, sigma_max, prior_centre: as in `log_likelihood` (a run's own values).
        key: PRNG key; the draws use a stream separate from training's.
        options: passed to `log_likelihood` (trace, n_probes, rtol, atol, chunk_size, ...).
    Returns:
        `report`'s dict, plus `data`.
    """
    target, pts, k_probe = _held_out(dataset, n, key)
    exact_prior = None
    if target is not None and isinstance(target, SmoothedTarget):
        smax = float(sigma_max)
        exact_prior = lambda z: target.smoothed_log_prob(z, smax)  # noqa: E731
    res = log_likelihood(score_fn, pts, sigma_min=sigma_min, sigma_max=sigma_max, key=k_probe,
                         prior_centre=prior_centre, prior_log_prob=exact_prior, **options)
    out = report(res, target=target, points=pts)
    out["data"] = getattr(dataset, "spec", type(dataset).__name__)
    return out


def evaluate_energy_likelihood(
    log_prob,
    dataset,
    *,
    n: int,
    sigma_min: float,
    sigma_max: float,
    key: PRNGKeyArray,
    extent=None,
    resolution: int | None = None,
) -> dict:
    """Likelihood report of a 2-D energy model, `log_prob(x) = -E(x, sigma_min)`, normalised
    numerically over a box (no ODE), on the same `n` held-out draws `evaluate_likelihood`
    uses for the same key.

    Arguments:
        log_prob: `x (2,) -> -E(x, sigma_min)` up to a constant.
        dataset: as in `evaluate_likelihood` (2-D).
        n, sigma_min, sigma_max, key: as in `evaluate_likelihood`.
        extent: the normalising box (default: the data's box widened by a quarter of its
            side on every side); resolution: its cells along the longer side (default 512).
    Returns:
        `report`'s dict with trace "energy", plus `data`, `normaliser_extent`,
        `normaliser_cells`, `normaliser_edge_mass` (the share of the mass in the box's
        outermost cells: large when the box cuts the model's mass off).
    """
    from ._energy import NORMALISER_RESOLUTION, energy_log_likelihood
    from ._map import data_box

    target, pts, _ = _held_out(dataset, n, key)
    box = data_box(dataset, margin=0.25) if extent is None else extent
    res, z = energy_log_likelihood(log_prob, pts, extent=box, sigma_min=sigma_min, sigma_max=sigma_max,
                                   resolution=NORMALISER_RESOLUTION if resolution is None else resolution)
    out = report(res, target=target, points=pts)
    out["data"] = getattr(dataset, "spec", type(dataset).__name__)
    out["normaliser_extent"] = list(z.extent)
    out["normaliser_cells"] = [len(z.xs), len(z.ys)]
    out["normaliser_edge_mass"] = z.edge_mass
    return out
