"""Annealed Langevin dynamics (NCSN, Song and Ermon 2019) and NCSNv2's step-size rule."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._errors import ConfigError
from ._base import (
    OPT_LEVELS,
    OPT_SIGMA_MAX,
    OPT_SIGMA_MIN,
    POSITIVE,
    SAMPLERS,
    AbstractGridSampler,
    Option,
    as_sigmas,
    at_least_one,
    count,
    grid_from_options,
    info,
    positive,
)


def ncsnv2_eps(sigmas, steps_per_level: int) -> float:
    """NCSNv2's rule for eps (Song and Ermon 2020, technique 4), in this library's convention.

    With gamma = sigma_{i-1} / sigma_i (the grid's ratio; the mean ratio if not geometric)
    and r = eps' / sigma_L^2, the variance a single-point dataset reaches after T steps of a
    level, relative to sigma_i^2, is
        f(r) = (1 - r)^(2T) (gamma^2 - 2 / (2 - r)) + 2 / (2 - r)
    (the paper's 2 eps' / (sigma_L^2 - sigma_L^2 (1 - eps'/sigma_L^2)^2) simplified).
    f > 1 for every r in (0, 1) when gamma > 1, so we take the r that brings f closest to
    1. The paper's update is x + eps' s + sqrt(2 eps') z; ours is x + (eta/2) s + sqrt(eta) z,
    so the returned eps = 2 eps'.

    Arguments:
        sigmas: the descending noise grid (at least two levels).
        steps_per_level: T.
    Returns:
        eps such that eta_i = eps * sigma_i^2 / sigma_L^2.
    """
    s = np.asarray(as_sigmas(sigmas), np.float64)
    if s.size < 2:
        raise ConfigError("ncsnv2_eps needs at least two noise levels to know their ratio")
    T = at_least_one(steps_per_level, "steps_per_level")
    gamma = float(np.exp(np.mean(np.log(s[:-1] / s[1:]))))

    def f(r):
        b = 2.0 / (2.0 - r)
        return np.exp(2 * T * np.log1p(-r)) * (gamma**2 - b) + b

    # f is unimodal in log r on (0, 1): a log grid, then golden-section refinement.
    grid = np.geomspace(1e-12, 1 - 1e-9, 4000)
    i = int(np.argmin(np.abs(f(grid) - 1)))
    lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, grid.size - 1)])
    g = (np.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if abs(f(np.exp(a)) - 1) < abs(f(np.exp(b)) - 1):
            hi = b
        else:
            lo = a
    r = float(np.exp(0.5 * (lo + hi)))
    return 2.0 * r * float(s[-1]) ** 2


@SAMPLERS.register
class AnnealedLangevin(AbstractGridSampler):
    """Annealed Langevin dynamics: T steps per level from the largest sigma to the smallest.

    At level i the step is eta_i = eps * sigma_i^2 / sigma_L^2 and the update
    x <- x + (eta_i/2) s(x, sigma_i) + sqrt(eta_i) z. With `denoise`, the sample is
    x + sigma_L^2 s(x, sigma_L) (Tweedie's estimate of the clean point; one evaluation).
    The default start is the prior N(0, sigma_1^2 I).

    Arguments:
        sigmas: descending noise grid sigma_1 > ... > sigma_L (data units).
        steps_per_level: T.
        eps: step scale; None picks it by NCSNv2's rule (`ncsnv2_eps`).
        denoise: apply the final denoising step.
    """

    sigmas: Float[Array, " L"]
    eps: float
    steps_per_level: int = eqx.field(static=True)
    denoise: bool = eqx.field(static=True)
    name = "annealed"
    label = "annealed Langevin"
    options = (
        OPT_SIGMA_MAX,
        OPT_SIGMA_MIN,
        OPT_LEVELS,
        Option("steps_per_level", int, 100, "T, Langevin steps per level", low=1),
        Option("eps", float, "auto", "step scale, eta_i = eps sigma_i^2 / sigma_L^2 (default auto: NCSNv2's rule)",
               special=("auto",), **POSITIVE),
        Option("denoise", bool, True, "finish with the denoising step x + sigma_L^2 s(x, sigma_L)"),
    )

    @classmethod
    def from_options(cls, context, *, sigma_max, sigma_min, levels, steps_per_level, eps, denoise):
        grid = grid_from_options(context, sigma_max, sigma_min, levels, "sampler 'annealed'")
        return cls(grid, steps_per_level, eps=None if eps == "auto" else eps, denoise=denoise)

    def __init__(self, sigmas, steps_per_level: int = 100, eps: float | None = None, denoise: bool = True):
        self.sigmas = as_sigmas(sigmas)
        self.steps_per_level = at_least_one(steps_per_level, "steps_per_level")
        self.eps = ncsnv2_eps(self.sigmas, steps_per_level) if eps is None else positive(eps, "eps")
        self.denoise = bool(denoise)

    def step(self, fn, state, level, key):
        x = state
        sigma = self.sigmas[level]
        eta = self.eps * (sigma / self.sigmas[-1]) ** 2
        z = jax.random.normal(key, x.shape, x.dtype)
        return x + 0.5 * eta * fn(x, sigma) + jnp.sqrt(eta) * z, info(1)

    def position(self, state):
        return state

    def finalize(self, fn, state, key):
        if not self.denoise:
            return state, count(0)
        sigma = self.sigmas[-1]
        return state + sigma**2 * fn(state, sigma), count(1)
