"""The interface every sampler implements, and the small helpers they share.

A sampler is an immutable `eqx.Module` whose fields are its hyperparameters. It describes
one particle: `init` builds the per-particle state, `step` advances it by one step at a
noise level, `finalize` turns the last state into a sample. The runner
(`scorefield.samplers.sample`) vmaps these over particles, runs the steps of each level in
`lax.scan`, chunks large particle counts, sums the step infos and detects divergence.

Adding a sampler (see docs/ARCHITECTURE.md for a complete example):

    @SAMPLERS.register
    class MySampler(AbstractGridSampler):        # or AbstractChainSampler / AbstractSampler
        name = "mine"                            # what users type: --sampler mine
        label = "my sampler"                     # for figure titles
        options = (Option("levels", int, 100, "noise levels", low=1), ...)
        sigmas: Float[Array, " L"]
        ...
        @classmethod
        def from_options(cls, context: SamplerContext, **o): ...   # o: every option, defaults filled
        def step(self, fn, state, level, key) -> tuple[State, StepInfo]: ...
        def position(self, state): ...

The step contract: `step(fn, state, level, key) -> (state, StepInfo)` on ONE particle;
`level` is a traced int32 scalar, `key` a per-particle, per-step key; `fn` is the score
`fn(x, sigma) -> (D,)`, or for an `AbstractLogDensitySampler` the log-density
`fn(x) -> scalar` (an annealed one, `smoothed = True`, the log-density of every level
`fn(x, sigma) -> scalar`). `StepInfo(n_evals, acceptance=None, solver_steps=None)` says what the
step cost and did; the runner sums each field per particle and reports per-level means in
`SampleResult.level_info`. `init(fn, x, key) -> (state, n_evals)` and
`finalize(fn, state, key) -> (x, n_evals)` return plain int32 evaluation counts, and so
does the optional `begin_level(fn, state, level) -> (state, n_evals)`, run before each level.
"""

# No `from __future__ import annotations`: equinox reads `eqx.AbstractVar[...]` only from
# real annotations (a string one becomes an ordinary field that every subclass must pass).
import abc
import dataclasses
from typing import Any, Callable, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from ..noise import geometric  # noqa: F401 - re-exported for samplers
from .._errors import ConfigError
from .._registry import Option, OptionError, Registry

State = PyTree[Any]
# What a sampler evaluates: a score function `(x, sigma) -> s` for score samplers, a
# log-density `x -> log p(x)` for an AbstractLogDensitySampler.
ModelFn = Callable[..., Any]

SAMPLERS: Registry = Registry("sampler")
"""Every sampler class by its `name`: what the CLI, config files, recipes and messages offer."""


class StepInfo(eqx.Module):
    """What one step of one particle cost and did (blackjax's `(state, info)` convention).

    Attributes:
        n_evals: model evaluations (score calls, or gradients of the log-density), int32.
        acceptance: Metropolis samplers: the acceptance probability of this step's
            proposal, float32 in [0, 1]; None for samplers without a test.
        solver_steps: ODE samplers: the solver's steps (accepted and rejected), int32.
    """

    n_evals: Int[Array, ""]
    acceptance: Float[Array, ""] | None = None
    solver_steps: Int[Array, ""] | None = None


def info(n_evals, acceptance=None, solver_steps=None) -> StepInfo:
    """A StepInfo with the right dtypes."""
    return StepInfo(
        jnp.asarray(n_evals, jnp.int32),
        None if acceptance is None else jnp.asarray(acceptance, jnp.float32),
        None if solver_steps is None else jnp.asarray(solver_steps, jnp.int32),
    )


@dataclasses.dataclass(frozen=True)
class SamplerContext:
    """What a sampler's defaults are derived from: the model or target being sampled.

    Built by `scorefield.train.sampler_context(run)` for a trained run and by
    `SamplerContext.from_points` for a closed-form target; pass to `from_options`.

    Attributes:
        dim: D.
        sigma_max: the default largest sigma (data units): the run's, or NCSNv2's rule.
        sigma_min: the default smallest sigma, and the default level of one-level samplers.
        levels: the default number of levels of samplers that follow the model's own grid
            (the run's training levels; 100 for a closed-form target).
        centre: the data centre (D,), where priors are centred.
        log_density: `log_density(sigma) -> (x -> log p_sigma(x))` where an exact
            log-density exists (sigma = 0: the unsmoothed one), else None.
        auto_min_ratio: a sampler option sigma_min = "auto" resolves to the larger of
            `sigma_min` and auto_min_ratio * sigma_max (default 1%: a safe floor for a short
            run; a recipe whose model is accurate lower sets its own, see
            `scorefield.train.sampler_context`).
        spread: the data's covariance about `centre`, a (D, D) array, or one variance per
            coordinate (a scalar: a run's sigma_data^2), or None where unknown. Samplers with
            `matched_prior` start from N(centre, sigma_max^2 I + spread), the Gaussian with
            the moments of p_sigma_max (`default_start`).
    """

    dim: int
    sigma_max: float
    sigma_min: float
    levels: int = 100
    centre: Any = None
    log_density: Callable[[float], Callable] | None = None
    exact: bool = False
    auto_min_ratio: float = 0.01
    spread: Any = None

    @classmethod
    def from_points(cls, points, *, log_density=None, levels: int = 100, sigma_max: float | None = None,
                    sigma_min: float | None = None) -> "SamplerContext":
        """The context of a closed-form target known by samples `points` (n, D) of its data:
        centre their mean, sigma_max NCSNv2's rule (largest pairwise distance) unless given,
        sigma_min 1% of sigma_max unless given (resolves an image's pixels; BENCHMARKS.md),
        spread their covariance."""
        from ..noise import sigma_max_ncsnv2

        x = np.asarray(points, np.float64)
        smax = sigma_max_ncsnv2(x) if sigma_max is None else float(sigma_max)
        smin = 1e-2 * float(smax) if sigma_min is None else float(sigma_min)
        spread = np.cov(x.T).reshape(x.shape[1], x.shape[1]) if x.shape[0] > 1 else None
        return cls(dim=int(x.shape[1]), sigma_max=float(smax), sigma_min=smin, levels=int(levels),
                   centre=x.mean(0).astype(np.float32), log_density=log_density, exact=True, spread=spread)

    @classmethod
    def from_dataset(cls, dataset, *, key, n: int = 4096, sigma_max: float | None = None,
                     sigma_min: float | None = None) -> "SamplerContext":
        """The context of a dataset with a closed-form target (a `scorefield.data.Dataset`
        whose `has_exact_score`): `from_points` of `n` draws `dataset.sample(key, n)`, and the
        target's log-density, smoothed at sigma (a Python 0: the unsmoothed one)."""
        target = dataset.target

        def log_density(sigma):
            # sigma may be traced (an annealed sampler's level): only a Python 0 is unsmoothed
            unsmoothed = isinstance(sigma, (int, float)) and sigma == 0
            return target.log_prob if unsmoothed else (lambda x: target.smoothed_log_prob(x, sigma))

        x = np.asarray(dataset.sample(key, n), np.float64)
        return cls.from_points(x, log_density=log_density, sigma_max=sigma_max, sigma_min=sigma_min)

    def log_prob_for(self, sampler) -> Callable | None:
        """What `sample(..., log_prob=)` takes for `sampler`: None for a score sampler; for an
        `AbstractLogDensitySampler`, the log-density at its level (`fn(x)`), or at every
        level (`fn(x, sigma)`) for one that is `smoothed`."""
        if not isinstance(sampler, AbstractLogDensitySampler):
            return None
        if self.log_density is None:
            raise ConfigError(f"sampler '{sampler.name}' needs a log-density, which this context does not have")
        if sampler.smoothed:
            return lambda x, s: self.log_density(s)(x)
        return self.log_density(sampler.level_sigma(0))

    def prior(self, scale: float, *, matched: bool = False):
        """N(centre, scale^2 I) as a `GaussianInit`; with `matched` and a known `spread`,
        N(centre, scale^2 I + spread) as a `MatchedGaussianInit`."""
        from ._init import GaussianInit, MatchedGaussianInit

        centre = 0.0 if self.centre is None else jnp.asarray(self.centre, jnp.float32)
        if matched and self.spread is not None:
            if np.ndim(self.spread) == 0:  # one variance per coordinate: still isotropic
                return GaussianInit(float(np.sqrt(float(scale) ** 2 + float(self.spread))), centre)
            return MatchedGaussianInit(float(scale), np.broadcast_to(np.asarray(centre), (self.dim,)), self.spread)
        return GaussianInit(float(scale), centre)


class AbstractSampler(eqx.Module):
    """A sampler of one particle, run by `scorefield.samplers.sample` over many.

    The schedule is `n_levels` levels of `steps_per_level` steps each (both Python ints,
    known at trace time). Methods act on one particle; keys are explicit.

    Class attributes: `name` (what users type), `label` (for titles), `options` (a tuple
    of `scorefield._registry.Option`: the hyperparameters `from_options` takes).
    """

    name: ClassVar[str] = "sampler"
    label: ClassVar[str] = "sampler"
    options: ClassVar[tuple[Option, ...]] = ()

    # Number of levels (compiled segments the runner reports progress and checks at) and
    # of `step` calls per level: Python ints, a static field or a property.
    n_levels: eqx.AbstractVar[int]
    steps_per_level: eqx.AbstractVar[int]

    @classmethod
    def from_options(cls, context: SamplerContext, **options: Any) -> "AbstractSampler":
        """The sampler for `context` with `options` (every option of `cls.options`, already
        validated, None where the default comes from the context). Registered samplers
        override this; `SAMPLERS.build(name, context, values)` validates and calls it."""
        raise NotImplementedError(f"{cls.__name__} does not build from options")

    @abc.abstractmethod
    def level_sigma(self, level: int) -> float | None:
        """The sigma of `level` for messages (host side), or None where it has none."""

    def frame_sigma(self, level: int, step: int) -> float | None:
        """The noise level of a particle's position after `step` of `level` (host side, for
        the labels of trajectories), or None where it has none: the level's sigma, except
        for samplers whose one level crosses many sigmas (the few-step samplers)."""
        return self.level_sigma(level)

    @abc.abstractmethod
    def default_init(self) -> Any | None:
        """The initial distribution when the caller gives none (e.g. the VE prior), or None."""

    @abc.abstractmethod
    def init(self, fn: ModelFn, x: Float[Array, " d"], key: PRNGKeyArray) -> tuple[State, Int[Array, ""]]:
        """Per-particle state at position `x`, and the number of model evaluations it cost."""

    @abc.abstractmethod
    def step(
        self, fn: ModelFn, state: State, level: Int[Array, ""], key: PRNGKeyArray
    ) -> tuple[State, StepInfo]:
        """One step at `level` (a traced int); returns the new state and its StepInfo."""

    @abc.abstractmethod
    def position(self, state: State) -> Float[Array, " d"]:
        """The particle's position in data space."""

    def begin_level(self, fn: ModelFn, state: State, level: Int[Array, ""]) -> tuple[State, Int[Array, ""]]:
        """Called by the runner before the first step of each level (level 0 included), for a
        sampler whose state depends on the level (e.g. a log-density cached at the previous
        sigma); returns the state and the evaluations it cost. The default does nothing and
        the runner skips it."""
        return state, count(0)

    @abc.abstractmethod
    def finalize(self, fn: ModelFn, state: State, key: PRNGKeyArray) -> tuple[Float[Array, " d"], Int[Array, ""]]:
        """The sample returned for the final state (e.g. after a denoising step), and the
        evaluations that cost."""


class AbstractLogDensitySampler(AbstractSampler):
    """A sampler with a Metropolis test: it evaluates a log-density `fn(x) -> log p(x)` (up to
    a constant) instead of a score, and reports the acceptance in its StepInfo. The runner
    passes it `log_prob`; `from_options` needs `context.log_density`.

    `smoothed = True` marks one that visits several noise levels: its `fn` is then the
    log-density of the data smoothed at any sigma, `fn(x, sigma) -> log p_sigma(x)`."""

    smoothed: ClassVar[bool] = False


class AbstractGridSampler(AbstractSampler):
    """A sampler that visits a descending grid of noise levels, one level per sigma, from
    the prior N(0, sigma_1^2 I) by default."""

    sigmas: eqx.AbstractVar[Float[Array, " L"]]

    @property
    def n_levels(self):
        return int(self.sigmas.shape[0])

    def level_sigma(self, level):
        return float(self.sigmas[level])

    def default_init(self):
        from ._init import GaussianInit

        return GaussianInit(float(self.sigmas[0]))

    def init(self, fn, x, key):
        return x, count(0)


class AbstractChainSampler(AbstractSampler):
    """A sampler that runs one chain of `n_steps` steps at one noise level `sigma` (0: the
    unsmoothed density), with no prior of its own; the sample is the last position."""

    sigma: eqx.AbstractVar[float]
    n_steps: eqx.AbstractVar[int]

    def level_sigma(self, level):
        return float(self.sigma)

    def default_init(self):
        return None

    def finalize(self, fn, state, key):
        return self.position(state), count(0)

    @property
    def n_levels(self):
        return 1

    @property
    def steps_per_level(self):
        return self.n_steps


def as_sigmas(sigmas, what: str = "sigmas") -> Float[Array, " L"]:
    """Validate a descending grid of positive noise levels; returns a float32 array."""
    s = np.asarray(sigmas, np.float64).reshape(-1)
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ConfigError(f"{what}={list(s)} must be a non-empty list of positive finite noise levels")
    if np.any(np.diff(s) >= 0):
        raise ConfigError(f"{what} must be strictly descending (largest sigma first), got {list(s)}")
    return jnp.asarray(s, jnp.float32)


def positive(value: float, what: str) -> float:
    """`value` as a float if it is positive and finite, else a ConfigError naming it."""
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise ConfigError(f"{what}={value} must be a positive finite number")
    return v


def at_least_one(value: int, what: str) -> int:
    """`value` as an int if it is at least 1, else a ConfigError naming it."""
    if int(value) < 1:
        raise ConfigError(f"{what}={value} must be at least 1")
    return int(value)


def count(n: int) -> Int[Array, ""]:
    return jnp.asarray(n, jnp.int32)


def resolve_grid(context: SamplerContext, sigma_max, sigma_min, owner: str) -> tuple[float, float]:
    """(sigma_max, sigma_min) from options (None: the context's; sigma_min "auto": the
    larger of the context's and context.auto_min_ratio (default 1%) of sigma_max), checked
    to be ordered."""
    smax = float(context.sigma_max if sigma_max is None else sigma_max)
    if sigma_min is None:
        smin = float(context.sigma_min)
    elif sigma_min == "auto":
        smin = max(float(context.sigma_min), float(context.auto_min_ratio) * smax)
    else:
        smin = float(sigma_min)
    if not smin < smax:
        raise OptionError(owner, "sigma_min", sigma_min if sigma_min is not None else smin,
                          f"must be smaller than sigma_max={smax:g}")
    return smax, smin


POSITIVE = dict(low=0.0, low_open=True)

# Options several samplers share (same name, type and meaning everywhere).
OPT_SIGMA_MAX = Option("sigma_max", float, None, "largest sigma, data units (default: the run's, or NCSNv2's rule)", **POSITIVE)
OPT_SIGMA_MIN = Option("sigma_min", float, None, "smallest sigma, data units (default: the run's, or 1% of sigma_max)",
                       special=("auto",), **POSITIVE)
# the grid of a sampler that follows the model's own levels (annealed, amala)
OPT_LEVELS = Option("levels", int, None, "noise levels, geometric from sigma_max to sigma_min (default: the run's, or 100)",
                    low=1)


def grid_from_options(context: SamplerContext, sigma_max, sigma_min, levels, owner: str) -> Float[Array, " L"]:
    """The geometric grid of a grid sampler's options: `resolve_grid`'s end points and
    `levels` levels (None: the context's number)."""
    smax, smin = resolve_grid(context, sigma_max, sigma_min, owner)
    return geometric(smax, smin, int(context.levels if levels is None else levels))


def fixed_sigma(context: SamplerContext, sigma, owner: str) -> float:
    """The level of a one-level sampler: the option, or the context's sigma_min; 0 (the
    unsmoothed density) only where the score is exact there."""
    v = float(context.sigma_min if sigma is None else sigma)
    if not (np.isfinite(v) and (v > 0 or (v == 0 and context.exact))):
        raise OptionError(owner, "sigma", sigma, "must be positive (0 only for a closed-form target)")
    return v


OPT_SIGMA = Option("sigma", float, None, "the one noise level, data units (default sigma_min; 0: unsmoothed, closed-form targets only)", low=0.0)
OPT_STEPS = Option("steps", int, 1000, "steps per particle", low=1)


def default_start(sampler: AbstractSampler, context: SamplerContext):
    """Where `sampler`'s particles start by default for `context`: its own prior re-centred
    on the data (N(centre, sigma_max^2 I) for the VE samplers; N(centre, sigma_max^2 I +
    spread) for a sampler with `matched_prior` where the context knows the data's spread),
    or for a sampler without a prior N(centre, context.sigma_max^2 I)."""
    from ._init import GaussianInit

    prior = sampler.default_init()
    if isinstance(prior, GaussianInit):
        return context.prior(prior.scale, matched=bool(getattr(sampler, "matched_prior", False)))
    if prior is not None:
        return prior
    return context.prior(context.sigma_max)
