"""Exact reference numbers of a target: its entropy and KL(p || p * N(0, sigma^2 I)), the
smallest KL any model of p smoothed at sigma can reach."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from .._errors import InputError
from ..targets import GridDensity, SmoothedTarget, Target, log_normal_mass


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A number with its standard error (0.0 for a deterministic quadrature) and how it was
    obtained ("closed form", "quadrature" or "monte carlo (N draws)")."""

    value: float
    stderr: float
    method: str


def _grid_of(target) -> GridDensity | None:
    """The piecewise-constant grid behind an image density or the checkerboard, else None."""
    if isinstance(target, GridDensity):
        return None if target.centres else target
    grid = getattr(target, "grid", None)
    return grid if isinstance(grid, GridDensity) and not grid.centres else None


def has_density(target) -> bool:
    """Whether `target.log_prob` exists (point-mass grids raise NoDensityError)."""
    if target is None:
        return False
    if isinstance(target, GridDensity):
        return not target.centres
    try:
        target.log_prob(jnp.zeros((target.dim,), jnp.float32))
    except NotImplementedError:
        return False
    return True


def entropy(target: Target, *, key: PRNGKeyArray | None = None, n: int = 100_000) -> Estimate:
    """H(p) = -E_p[log p] in nats: exact for a piecewise-constant grid (an image:
    -sum P log(P / h^2)), Monte Carlo over `n` exact draws otherwise."""
    grid = _grid_of(target)
    if grid is not None:
        p = np.asarray(grid.probs, np.float64).ravel()
        p = p[p > 0]
        return Estimate(float(-np.sum(p * (np.log(p) - 2.0 * math.log(grid.cell)))), 0.0, "closed form")
    if not has_density(target):
        raise InputError(f"{type(target).__name__} has no density, so no entropy; give a target with log_prob")
    key = jax.random.key(0) if key is None else key
    lp = np.asarray(_batched(target.log_prob)(target.sample(key, int(n))), np.float64)
    return Estimate(float(-lp.mean()), float(lp.std(ddof=1) / math.sqrt(len(lp))), f"monte carlo ({len(lp)} draws)")


def _batched(f):
    return jax.jit(jax.vmap(f))


def _gauss_legendre(sub: int, order: int = 8):
    """Nodes in [0, 1] and weights (sum 1) of a composite Gauss-Legendre rule with `sub`
    equal pieces of `order` nodes each."""
    t, w = np.polynomial.legendre.leggauss(order)
    t, w = (t + 1) / 2, w / 2
    nodes = (np.arange(sub)[:, None] + t[None, :]).ravel() / sub
    weights = np.tile(w, sub) / sub
    return nodes, weights


def kl_floor(target: Target, sigma: float, *, key: PRNGKeyArray | None = None, n: int = 100_000) -> Estimate | None:
    """KL(p || p * N(0, sigma^2 I)) in nats: the KL of the best model that stops at `sigma`.

    Piecewise-constant grids (images, the checkerboard): a deterministic quadrature,
    sum over cells of P_rc times the cell mean of log p - log p_sigma, each cell integrated
    by a composite 8-point Gauss-Legendre rule per axis with pieces no wider than ~sigma/4
    (where log p_sigma bends; at most 64 pieces per cell side). Other targets with a smoothed density: Monte Carlo over `n`
    exact draws (the integrand is O(sigma^2) and varies little, so the error is small).
    Returns None when the target has no smoothed log-density or no density.
    """
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma > 0):
        raise InputError(f"sigma={sigma!r} must be a positive finite number")
    if target is None or not isinstance(target, SmoothedTarget) or not has_density(target):
        return None
    grid = _grid_of(target)
    if grid is not None:
        return _grid_kl_floor(grid, sigma)
    key = jax.random.key(0) if key is None else key
    x = target.sample(key, int(n))
    diff = np.asarray(_batched(lambda z: target.log_prob(z) - target.smoothed_log_prob(z, sigma))(x), np.float64)
    return Estimate(float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(len(diff))), f"monte carlo ({len(diff)} draws)")


_log_mass = jax.jit(log_normal_mass)  # one compiled call, not one eager op compile per shape


def _grid_kl_floor(grid: GridDensity, sigma: float) -> Estimate:
    # p_sigma factorises per cell into a factor along x times one along y, so on a tensor
    # grid of nodes it is EY @ P @ EX^T (each factor scaled by its row maximum, in float64).
    h = grid.cell
    sub = int(min(64, max(1, math.ceil(4.0 * h / sigma))))
    nodes, weights = _gauss_legendre(sub)
    q = len(nodes)
    probs = np.asarray(grid.probs, np.float64)
    x_left, y_bottom = (np.asarray(e, np.float64) for e in grid._edges())
    xs = (x_left[:, None] + h * nodes[None, :]).ravel()  # (W q,) nodes, column-major by cell
    ys = (y_bottom[:, None] + h * nodes[None, :]).ravel()  # (H q,) nodes of row r in block r

    def factors(t, lefts):
        z = (t[:, None] - (lefts[None, :] + 0.5 * h)) / sigma
        lm = np.asarray(_log_mass(jnp.asarray(z, jnp.float32), jnp.float32(h / sigma)), np.float64)
        lm = lm - math.log(h)
        top = lm.max(axis=1)
        return np.exp(lm - top[:, None]), top

    ex, ax = factors(xs, x_left)  # (W q, W)
    ey, ay = factors(ys, y_bottom)  # (H q, H)
    means = np.zeros_like(probs)
    for r in range(grid.height):
        if not (probs[r] > 0).any():
            continue
        rows = slice(r * q, (r + 1) * q)
        s = ey[rows] @ probs @ ex.T  # (q, W q)
        logs = np.log(np.maximum(s, np.finfo(np.float64).tiny)) + ay[rows, None] + ax[None, :]
        means[r] = np.einsum("i,icj,j->c", weights, logs.reshape(q, grid.width, q), weights)
    occ = probs > 0
    p = probs[occ]
    value = float(np.sum(p * (np.log(p) - 2.0 * math.log(h) - means[occ])))
    return Estimate(value, 0.0, f"quadrature ({q}x{q} Gauss-Legendre nodes per cell)")
