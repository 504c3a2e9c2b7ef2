"""Few-step samplers' shared pieces: sigma schedules, the evaluation budget, the denoiser.

The few-step samplers (`euler`, `heun`, `dpm2m`) integrate the probability-flow ODE of
the variance-exploding process, dx/dsigma = -sigma s(x, sigma), over a grid
sigma_0 = sigma_max > ... > sigma_{N-1} = sigma_min, then take the denoising step
x + sigma_min^2 s(x, sigma_min) (the Euler step from sigma_min to 0, EDM's last step).
They are written in terms of the denoiser D(x, sigma) = x + sigma^2 s(x, sigma), the
posterior mean E[x_0 | x_sigma = x] of a VE perturbation (Tweedie), for any dimension.
"""

from __future__ import annotations

import math
from typing import Callable, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._errors import ConfigError
from .._registry import Option, OptionError
from ._base import OPT_SIGMA_MAX, OPT_SIGMA_MIN, AbstractSampler, count, resolve_grid

SCHEDULES = ("rho", "log-uniform")


def rho_sigmas(sigma_max: float, sigma_min: float, n: int, rho: float = 7.0) -> np.ndarray:
    """EDM's spacing (Karras et al. 2022, eq. 5): sigma_i = (sigma_max^(1/rho) +
    i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, i = 0..n-1.

    Arguments:
        sigma_max, sigma_min: the end points (data units), both included.
        n: grid points, at least 2.
        rho: > 0; larger puts more points at small sigma (rho -> inf tends to log-uniform).
    Returns:
        float64 array (n,), descending.
    """
    i = np.arange(n, dtype=np.float64) / (n - 1)
    a, b = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    s = (a + i * (b - a)) ** rho
    s[0], s[-1] = sigma_max, sigma_min
    return s


def log_uniform_sigmas(sigma_max: float, sigma_min: float, n: int) -> np.ndarray:
    """Uniform in log sigma (uniform in the log signal-to-noise ratio, DPM-Solver's default
    spacing): a geometric grid, float64 (n,), descending, both end points included."""
    return np.geomspace(sigma_max, sigma_min, n)


def check_nfe(nfe, minimum: int, name: str) -> int:
    """`nfe` as an int if it is an integer >= `minimum`, else an OptionError naming it."""
    try:
        ok = float(nfe) == int(nfe)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or int(nfe) < minimum:
        raise OptionError(f"sampler '{name}'", "nfe", nfe, f"must be an integer >= {minimum} (score evaluations per sample)")
    return int(nfe)


def check_float(value, what: str, *, low: float, low_open: bool = False, allow_inf: bool = False,
                owner: str = "sampler") -> float:
    """`value` as a float >= `low` (> `low` with `low_open`), finite unless `allow_inf`
    (then +inf is accepted), else an OptionError naming the option and the valid range."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    ok = (v > low if low_open else v >= low) and (math.isfinite(v) or (allow_inf and v == math.inf))
    if not ok:
        kind = "a number (inf allowed)" if allow_inf else "a finite number"
        raise OptionError(owner, what, value, f"must be {kind} {'>' if low_open else '>='} {low:g}")
    return v


def make_sigmas(schedule: str, sigma_max, sigma_min, n: int, rho, owner: str = "sampler") -> Float[Array, " n"]:
    """The descending grid of `n` sigmas of `schedule` ("rho" or "log-uniform"), float32.

    Validates sigma_max > sigma_min > 0 (finite), rho > 0 (finite), and the schedule name."""
    smax = check_float(sigma_max, "sigma_max", low=0.0, low_open=True, owner=owner)
    smin = check_float(sigma_min, "sigma_min", low=0.0, low_open=True, owner=owner)
    if not smin < smax:
        raise OptionError(owner, "sigma_min", sigma_min, f"must be smaller than sigma_max={smax:g}")
    r = check_float(rho, "rho", low=0.0, low_open=True, owner=owner)
    if schedule == "rho":
        s = rho_sigmas(smax, smin, n, r)
    elif schedule == "log-uniform":
        s = log_uniform_sigmas(smax, smin, n)
    else:
        raise OptionError(owner, "schedule", schedule, f"must be one of {', '.join(SCHEDULES)}")
    s32 = np.asarray(s, np.float32)
    if np.any(np.diff(s32) >= 0):
        raise ConfigError(
            f"the {schedule} schedule of {n} sigmas from {smax:g} to {smin:g} is not strictly descending "
            "in float32; use fewer evaluations or a wider sigma range"
        )
    return jnp.asarray(s32)


def denoise(fn, x: Float[Array, " d"], sigma) -> Float[Array, " d"]:
    """D(x, sigma) = x + sigma^2 s(x, sigma): the posterior mean of the clean point (one
    score evaluation)."""
    return x + sigma**2 * fn(x, sigma)


def evaluations(name: str, n_sigmas: int) -> int:
    """Score evaluations per sample of sampler `name` over a grid of `n_sigmas` points."""
    return 2 * n_sigmas - 1 if name == "heun" else n_sigmas


class AbstractFewStepSampler(AbstractSampler):
    """A sampler that integrates the VE probability-flow ODE over a grid of `nfe`-derived
    sigmas from sigma_max to sigma_min, then denoises at sigma_min.

    The whole grid is one runner level (step i goes from sigma_i to sigma_{i+1}; the state
    carries i), so a few-step sample is one compiled scan per chunk. Where the step rule
    itself gives the denoiser when the next sigma is 0 (`denoise_in_scan`), the denoising
    step is the scan's last step i = N - 1 (`sigma_next`): one compiled program holds the
    only copy of the network, which halves the compilation a first sample waits for
    (BENCHMARKS.md section 6); otherwise the level has N - 1 steps and `finalize` denoises.
    Subclasses set `name` and `min_nfe`, and implement `step`; `from_options` passes every
    option to the constructor (sigma_max and sigma_min from the context when not given;
    sigma_min "auto" or not given: the larger of the context's and its auto_min_ratio,
    1% unless a run's recipe sets it, of sigma_max).
    """

    sigmas: eqx.AbstractVar[Float[Array, " n"]]
    min_nfe: ClassVar[int] = 2
    # start from N(centre, sigma_max^2 I + the data's covariance) where the context knows it
    # (`default_start`): the flow is a bijection, so a prior that misses p_sigma_max's
    # covariance stays wrong to the end (BENCHMARKS.md section 6)
    matched_prior: ClassVar[bool] = True
    denoise_in_scan: ClassVar[bool] = False

    @property
    def n_levels(self):
        return 1

    @property
    def steps_per_level(self):
        return int(self.sigmas.shape[0]) - (0 if self.denoise_in_scan else 1)

    def sigma_next(self, i):
        """The grid's sigma after step i (may be traced): sigma_{i+1}, and 0 after the last
        grid point (the denoising step)."""
        n = self.sigmas.shape[0]
        return jnp.where(i + 1 < n, self.sigmas[jnp.minimum(i + 1, n - 1)], 0.0)

    @property
    def n_evals(self) -> int:
        """The exact number of score evaluations one sample costs (at most the `nfe` asked for)."""
        return evaluations(self.name, int(self.sigmas.shape[0]))

    def level_sigma(self, level):
        return None  # one level spans the whole grid

    def frame_sigma(self, level, step):
        """sigma_{step + 1}, where step `step` leaves the particle (0 after the denoising step)."""
        grid = [float(v) for v in np.asarray(self.sigmas)] + [0.0]
        return grid[min(int(step) + 1, len(grid) - 1)]

    def default_init(self):
        from ._init import GaussianInit

        return GaussianInit(float(self.sigmas[0]))

    def init(self, fn, x, key):
        return (x, jnp.asarray(0, jnp.int32)), count(0)

    def position(self, state):
        return state[0]

    def finalize(self, fn, state, key):
        if self.denoise_in_scan:
            return self.position(state), count(0)
        return denoise(fn, self.position(state), self.sigmas[-1]), count(1)

    @classmethod
    def from_options(cls, context, *, sigma_max, sigma_min, nfe, **options):
        smax, smin = resolve_grid(context, sigma_max, "auto" if sigma_min is None else sigma_min, f"sampler '{cls.name}'")
        return cls(smax, smin, nfe, **options)


def few_step_grid(sampler, sigma_max, sigma_min, nfe, schedule: str, rho,
                  points: Callable[[int], int] = lambda nfe: nfe) -> tuple[int, Float[Array, " n"], str, float]:
    """What a few-step sampler's constructor stores: (nfe checked against its `min_nfe`, its
    grid of `points(nfe)` sigmas of `schedule`, the schedule, rho as a float)."""
    nfe = check_nfe(nfe, sampler.min_nfe, sampler.name)
    sigmas = make_sigmas(schedule, sigma_max, sigma_min, points(nfe), rho, f"sampler '{sampler.name}'")
    return nfe, sigmas, schedule, float(rho)


def few_step_options(min_nfe: int, default_nfe: int, default_schedule: str = "rho") -> tuple[Option, ...]:
    """The options every few-step sampler takes: the grid's end points, nfe and the schedule."""
    return (
        OPT_SIGMA_MAX,
        OPT_SIGMA_MIN,
        # low=1 here (one declaration for every few-step sampler); each checks its own minimum
        Option("nfe", int, default_nfe, "score evaluations per sample, at least 2 (heun: 3; "
               "the sampler uses at most this many)", low=1),
        Option("schedule", str, default_schedule, "sigma spacing: rho (EDM) or log-uniform (geometric)", choices=SCHEDULES),
        Option("rho", float, 7.0, "rho of the rho schedule (larger: more steps at small sigma)", low=0.0, low_open=True),
    )
