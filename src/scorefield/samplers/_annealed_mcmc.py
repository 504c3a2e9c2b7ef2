"""Annealed Metropolis-corrected samplers (MALA, HMC, NUTS through the levels): the
Metropolis-corrected analogues of annealed Langevin dynamics, for models with a log-density
at every noise level (energy networks, closed-form targets)."""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

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
    at_least_one,
    count,
    grid_from_options,
    info,
    positive,
)
from ._mcmc import _blackjax, _needs_log_density, _target, adapted_ratio

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
        self.steps_per_level = at_least_one(steps_per_level, "steps_per_level")
        self.step_size = None if step_size is None else positive(step_size, "step_size")
        self.target_accept = _target(target_accept)
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
            r = adapted_ratio(r, state.t, acc - self.target_accept, self.steps_per_level // 2)
        return _AnnealedState(mala, r, state.t + 1.0), info(1, acceptance=acc)

    def position(self, state):
        return state.mala.position

    def finalize(self, fn, state, key):
        x = state.mala.position
        if not self.denoise:
            return x, count(0)
        sigma = self.sigmas[-1]
        return x + sigma**2 * jax.grad(fn)(x, sigma), count(1)


class _AnnealedHamiltonianState(eqx.Module):
    """One particle: blackjax's HMC state (position, log-density and its gradient) at the
    current level, the step relative to sigma (eps = r sigma), and the step within the level."""

    hmc: object
    r: Float[Array, ""]
    t: Float[Array, ""]


class _AbstractAnnealedHamiltonian(AbstractGridSampler, AbstractLogDensitySampler):
    """`steps_per_level` Metropolis-corrected Hamiltonian proposals (a blackjax kernel, identity
    mass) on log p_sigma_i at each level, from the largest sigma to the smallest.

    Leapfrog step: eps_i = step_size * sigma_i / sigma_L when `step_size` is given (a
    Hamiltonian step is a distance, so it scales with sigma, not sigma^2 as Langevin's h).
    Without it each particle adapts r = eps / sigma_i by the rule of annealed MALA (a
    Robbins-Monro step on log r toward `target_accept`, gain 1/sqrt(t+1), exp taken as its
    Pade approximant so the samples are bitwise the same for any block size) during the first
    half of each level's steps, fixed for the rest; r carries over to the next level. The
    log-density is re-evaluated at each new level (one gradient per level); with `denoise`,
    the sample is x + sigma_L^2 grad log p_sigma_L(x) (Tweedie)."""

    sigmas: eqx.AbstractVar[Float[Array, " L"]]
    step_size: eqx.AbstractVar[float | None]
    target_accept: eqx.AbstractVar[float]
    steps_per_level: eqx.AbstractVar[int]
    denoise: eqx.AbstractVar[bool]
    smoothed = True

    @abc.abstractmethod
    def _kernel(self, key, state, logdensity, eps):
        """One proposal with Metropolis test: (new HMCState, blackjax info)."""

    def _eps(self, state, level):
        sigma = self.sigmas[level]
        if self.step_size is not None:
            return self.step_size * (sigma / self.sigmas[-1])
        return state.r * sigma

    def init(self, fn, x, key):
        # the log-density is evaluated at the first level by begin_level
        hmc = _blackjax().mcmc.hmc.HMCState(x, jnp.zeros((), x.dtype), jnp.zeros_like(x))
        return _AnnealedHamiltonianState(hmc, jnp.full((), 0.5, jnp.float32), jnp.zeros((), jnp.float32)), count(0)

    def begin_level(self, fn, state, level):
        sigma = self.sigmas[level]
        hmc = _blackjax().mcmc.hmc.init(state.hmc.position, lambda y: fn(y, sigma))
        return _AnnealedHamiltonianState(hmc, state.r, jnp.zeros_like(state.t)), count(1)

    def step(self, fn, state, level, key):
        sigma = self.sigmas[level]
        hmc, i = self._kernel(key, state.hmc, lambda y: fn(y, sigma), self._eps(state, level))
        acc = jnp.asarray(i.acceptance_rate, jnp.float32)
        acc = jnp.where(jnp.isfinite(acc), acc, 0.0)
        r = state.r
        if self.step_size is None:
            r = adapted_ratio(r, state.t, self._error(acc), self.steps_per_level // 2)
        return _AnnealedHamiltonianState(hmc, r, state.t + 1.0), info(i.num_integration_steps, acceptance=acc)

    def _error(self, acc):
        """The adaptation's error signal, in (-1, 1)."""
        return acc - self.target_accept

    def position(self, state):
        return state.hmc.position

    def finalize(self, fn, state, key):
        x = state.hmc.position
        if not self.denoise:
            return x, count(0)
        sigma = self.sigmas[-1]
        return x + sigma**2 * jax.grad(fn)(x, sigma), count(1)


def _annealed_options(target: float, steps: int):
    return (
        OPT_SIGMA_MAX,
        OPT_SIGMA_MIN,
        OPT_LEVELS,
        Option("steps_per_level", int, steps, "T, proposals per level", low=1),
        Option("step_size", float, None, "leapfrog step at sigma_min, data units; eps_i = step_size sigma_i/sigma_min "
               "(default: adapted per particle toward --target-accept)", **POSITIVE),
        Option("target_accept", float, target, "acceptance rate the adapted step aims at", low=0.0, high=1.0,
               low_open=True),
        Option("denoise", bool, True, "finish with the denoising step x + sigma_L^2 s(x, sigma_L)"),
    )


def _check_annealed(steps_per_level, step_size, target_accept):
    steps_per_level = at_least_one(steps_per_level, "steps_per_level")
    return steps_per_level, None if step_size is None else positive(step_size, "step_size"), _target(target_accept)


@SAMPLERS.register
class AnnealedHMC(_AbstractAnnealedHamiltonian):
    """Annealed HMC: at each level, `steps_per_level` HMC proposals of `n_leapfrog` leapfrog
    steps (blackjax.mcmc.hmc) on log p_sigma_i; step sizes as in the base class.

    Arguments:
        sigmas: descending grid sigma_1 > ... > sigma_L (data units).
        steps_per_level: T.
        n_leapfrog: leapfrog steps per proposal.
        step_size: leapfrog step at sigma_L (data units), or None to adapt.
        target_accept: the acceptance rate adaptation aims at (0.65: HMC's optimum).
        denoise: apply the final denoising step.
    """

    sigmas: Float[Array, " L"]
    step_size: float | None
    target_accept: float
    steps_per_level: int = eqx.field(static=True)
    n_leapfrog: int = eqx.field(static=True)
    denoise: bool = eqx.field(static=True)
    name = "ahmc"
    label = "annealed HMC"
    options = _annealed_options(0.65, 5) + (Option("leapfrog", int, 5, "leapfrog steps per proposal", low=1),)

    def __init__(self, sigmas, steps_per_level: int = 5, n_leapfrog: int = 5, step_size: float | None = None,
                 target_accept: float = 0.65, denoise: bool = True):
        self.sigmas = as_sigmas(sigmas)
        self.steps_per_level, self.step_size, self.target_accept = _check_annealed(steps_per_level, step_size,
                                                                                   target_accept)
        self.n_leapfrog = at_least_one(n_leapfrog, "n_leapfrog")
        self.denoise = bool(denoise)

    @classmethod
    def from_options(cls, context, *, sigma_max, sigma_min, levels, steps_per_level, step_size, target_accept, denoise,
                     leapfrog):
        _needs_log_density(context, cls.name)
        grid = grid_from_options(context, sigma_max, sigma_min, levels, f"sampler '{cls.name}'")
        return cls(grid, steps_per_level, leapfrog, step_size, target_accept, denoise)

    def _kernel(self, key, state, logdensity, eps):
        kernel = _blackjax().mcmc.hmc.build_kernel()
        return kernel(key, state, logdensity, eps, jnp.ones_like(state.position), self.n_leapfrog)


@SAMPLERS.register
class AnnealedNUTS(_AbstractAnnealedHamiltonian):
    """Annealed NUTS: at each level, `steps_per_level` No-U-Turn iterations
    (blackjax.mcmc.nuts, trees of at most 2^max_doublings - 1 leapfrog steps) on
    log p_sigma_i; step sizes as in the base class, except that the adaptation moves log r
    by a fixed amount on the sign of (acceptance - target_accept) (so toward a median
    acceptance of target_accept). Particles are vectorised, so a batch waits for its
    deepest tree: keep max_doublings small.

    Arguments:
        sigmas: descending grid sigma_1 > ... > sigma_L (data units).
        steps_per_level: T.
        max_doublings: tree depth limit.
        step_size: leapfrog step at sigma_L (data units), or None to adapt.
        target_accept: the median acceptance adaptation aims at (0.8, as Stan's mean).
        denoise: apply the final denoising step.
    """

    sigmas: Float[Array, " L"]
    step_size: float | None
    target_accept: float
    steps_per_level: int = eqx.field(static=True)
    max_doublings: int = eqx.field(static=True)
    denoise: bool = eqx.field(static=True)
    name = "anuts"
    label = "annealed NUTS"
    options = _annealed_options(0.8, 3) + (
        Option("max_doublings", int, 5, "tree depth limit (at most 2^max_doublings - 1 leapfrog steps)", low=1),)

    def __init__(self, sigmas, steps_per_level: int = 3, max_doublings: int = 5, step_size: float | None = None,
                 target_accept: float = 0.8, denoise: bool = True):
        self.sigmas = as_sigmas(sigmas)
        self.steps_per_level, self.step_size, self.target_accept = _check_annealed(steps_per_level, step_size,
                                                                                   target_accept)
        self.max_doublings = at_least_one(max_doublings, "max_doublings")
        self.denoise = bool(denoise)

    @classmethod
    def from_options(cls, context, *, sigma_max, sigma_min, levels, steps_per_level, step_size, target_accept, denoise,
                     max_doublings):
        _needs_log_density(context, cls.name)
        grid = grid_from_options(context, sigma_max, sigma_min, levels, f"sampler '{cls.name}'")
        return cls(grid, steps_per_level, max_doublings, step_size, target_accept, denoise)

    def _error(self, acc):
        # NUTS's acceptance statistic (a mean over the tree) differs in the last bit between
        # SIMD lanes, so the step adapts on its sign only (toward the median acceptance
        # target_accept), which keeps the samples bitwise the same for any block size
        return 0.5 * jnp.sign(acc - self.target_accept)

    def _kernel(self, key, state, logdensity, eps):
        kernel = _blackjax().mcmc.nuts.build_kernel()
        return kernel(key, state, logdensity, eps, jnp.ones_like(state.position), self.max_doublings)


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
