"""Annealed Metropolis-adjusted Langevin: the Metropolis-corrected analogue of annealed
Langevin dynamics, for models with a log-density at every noise level (energy networks,
closed-form targets)."""

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
    AbstractLogDensitySampler,
    Option,
    as_sigmas,
    count,
    grid_from_options,
    info,
    positive,
)
from ._mcmc import _blackjax, _needs_log_density

# Acceptance below this at some level is reported as a collapsed chain.
COLLAPSED = 0.05


class _AnnealedState(eqx.Module):
    """One particle: blackjax's MALA state at the current level, the step size relative to
    sigma^2 (h = r sigma^2), and the step within the level."""

    mala: object
    r: Float[Array, ""]
    t: Float[Array, ""]


@SAMPLERS.register
class AnnealedMALA(AbstractGridSampler, AbstractLogDensitySampler):
    """Annealed MALA: `steps_per_level` Metropolis-adjusted Langevin steps (blackjax's MALA
    kernel and test) on log p_sigma_i at each level, from the largest sigma to the smallest.

    Step sizes: h_i = step_size * sigma_i^2 / sigma_L^2 when `step_size` is given (the
    rule of annealed Langevin, so step_size is h at the smallest level). Without it each
    particle adapts r = h / sigma_i^2 by a Robbins-Monro rule on log r toward
    `target_accept` (gain 1/sqrt(t+1) within a level, r carried to the next level; the
    factor exp(d) is taken as its Pade approximant (2 + d) / (2 - d), so that only exact
    IEEE operations touch r and the samples are bitwise the same for any block size) during
    the first half of each level's steps, and keeps it fixed for the rest, so each level
    ends with valid Metropolis steps of a fixed size. The log-density cached in the chain's
    state is re-evaluated at each new level (one gradient per level). With `denoise`, the
    sample is x + sigma_L^2 grad log p_sigma_L(x) (Tweedie). The runner reports the mean
    acceptance per level.

    Arguments:
        sigmas: descending grid sigma_1 > ... > sigma_L (data units).
        steps_per_level: T.
        step_size: h at sigma_L (squared data units), or None to adapt.
        target_accept: the acceptance rate adaptation aims at (0.574 is optimal for MALA
            in high dimension; fewer dimensions tolerate more).
        denoise: apply the final denoising step.
    """

    sigmas: Float[Array, " L"]
    step_size: float | None
    target_accept: float
    steps_per_level: int = eqx.field(static=True)
    denoise: bool = eqx.field(static=True)
    name = "amala"
    label = "annealed MALA"
    smoothed = True
    options = (
        OPT_SIGMA_MAX,
        OPT_SIGMA_MIN,
        OPT_LEVELS,
        Option("steps_per_level", int, 10, "T, MALA steps per level", low=1),
        Option("step_size", float, None, "h at sigma_min, h_i = step_size sigma_i^2/sigma_min^2 "
               "(default: adapted per particle toward --target-accept)", **POSITIVE),
        Option("target_accept", float, 0.6, "acceptance rate the adapted step aims at", low=0.0, high=1.0,
               low_open=True),
        Option("denoise", bool, True, "finish with the denoising step x + sigma_L^2 s(x, sigma_L)"),
    )

    def __init__(self, sigmas, steps_per_level: int = 10, step_size: float | None = None,
                 target_accept: float = 0.6, denoise: bool = True):
        self.sigmas = as_sigmas(sigmas)
        if int(steps_per_level) < 1:
            raise ConfigError(f"steps_per_level={steps_per_level} must be at least 1")
        self.steps_per_level = int(steps_per_level)
        self.step_size = None if step_size is None else positive(step_size, "step_size")
        ta = float(target_accept)
        if not 0.0 < ta < 1.0:
            raise ConfigError(f"target_accept={target_accept} must be between 0 and 1 (exclusive)")
        self.target_accept = ta
        self.denoise = bool(denoise)

    @classmethod
    def from_options(cls, context, *, sigma_max, sigma_min, levels, steps_per_level, step_size, target_accept, denoise):
        _needs_log_density(context, cls.name)
        grid = grid_from_options(context, sigma_max, sigma_min, levels, f"sampler '{cls.name}'")
        return cls(grid, steps_per_level, step_size, target_accept, denoise)

    def _h(self, state, level):
        sigma = self.sigmas[level]
        if self.step_size is not None:
            return self.step_size * (sigma / self.sigmas[-1]) ** 2
        return state.r * sigma**2

    def init(self, fn, x, key):
        # the log-density is evaluated at the first level by begin_level
        mala = _blackjax().mcmc.mala.MALAState(x, jnp.zeros((), x.dtype), jnp.zeros_like(x))
        return _AnnealedState(mala, jnp.ones((), jnp.float32), jnp.zeros((), jnp.float32)), count(0)

    def begin_level(self, fn, state, level):
        sigma = self.sigmas[level]
        mala = _blackjax().mcmc.mala.init(state.mala.position, lambda y: fn(y, sigma))
        return _AnnealedState(mala, state.r, jnp.zeros_like(state.t)), count(1)

    def step(self, fn, state, level, key):
        sigma = self.sigmas[level]
        kernel = _blackjax().mcmc.mala.build_kernel()
        mala, i = kernel(key, state.mala, lambda y: fn(y, sigma), self._h(state, level))
        acc = jnp.asarray(i.acceptance_rate, jnp.float32)
        acc = jnp.where(jnp.isfinite(acc), acc, 0.0)
        r = state.r
        if self.step_size is None:
            # XLA's vectorised exp differs in the last bit between SIMD lanes and the remainder
            # loop, so exp(d) would make the samples depend on the block size; |d| < 1 here
            d = (acc - self.target_accept) / jnp.sqrt(state.t + 1.0)
            adapting = state.t < self.steps_per_level // 2
            r = jnp.where(adapting, r * ((2.0 + d) / (2.0 - d)), r)
        return _AnnealedState(mala, r, state.t + 1.0), info(1, acceptance=acc)

    def position(self, state):
        return state.mala.position

    def finalize(self, fn, state, key):
        x = state.mala.position
        if not self.denoise:
            return x, count(0)
        sigma = self.sigmas[-1]
        return x + sigma**2 * jax.grad(fn)(x, sigma), count(1)


def acceptance_summary(sampler, acceptance) -> str:
    """The acceptance part of a summary line: the rate per level (all of them when there are
    at most 10, else the first, median and last levels and the lowest), and a warning naming
    the first level where the chain's acceptance collapsed below 5%."""
    a = np.asarray(acceptance, np.float64)
    if a.size == 1:
        text = f"acceptance {a[0]:.3f}"
    elif a.size <= 10:
        text = "acceptance per level " + " ".join(f"{v:.2f}" for v in a)
    else:
        lo = int(np.argmin(a))
        text = (f"acceptance per level {a[0]:.2f} (sigma_max) .. {np.median(a):.2f} (median) .. {a[-1]:.2f} "
                f"(sigma_min), lowest {a[lo]:.2f} at level {lo}")
    bad = np.flatnonzero(a < COLLAPSED)
    if bad.size:
        lev = int(bad[0])
        sigma = None if sampler is None else sampler.level_sigma(lev)
        at = f"level {lev}" + ("" if sigma is None else f" (sigma={sigma:.3g})")
        text += (f"; WARNING: acceptance collapsed below {COLLAPSED:.0%} at {at}: the chain barely moves there, "
                 "lower the step size")
    return text
