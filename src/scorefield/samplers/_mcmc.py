"""Metropolis-adjusted samplers from blackjax, for targets with a log-density.

These need `log_prob(x) -> log p(x)` (up to a constant) on one example, not a score: a
closed-form target, or a model parameterised as an energy. The runner passes it as the
model function; evaluations counted are gradient evaluations of log_prob.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._errors import ConfigError
from ._base import (
    OPT_SIGMA,
    OPT_STEPS,
    POSITIVE,
    SAMPLERS,
    AbstractChainSampler,
    AbstractLogDensitySampler,
    Option,
    at_least_one,
    count,
    fixed_sigma,
    info,
    positive,
)


def _blackjax():
    """blackjax, imported on first use: importing it starts the JAX backend (about a second),
    which every other command would pay for nothing."""
    import blackjax

    return blackjax


class _Adapting(eqx.Module):
    """One chain whose step adapts: blackjax's state, the step relative to the starting one
    (r), and the step number."""

    chain: object
    r: Float[Array, ""]
    t: Float[Array, ""]


class _AbstractBlackjaxSampler(AbstractChainSampler, AbstractLogDensitySampler):
    """A blackjax kernel on one chain; `sigma` is the smoothing of the log-density it is given
    (for messages and for `log_density(sigma)`; 0: the unsmoothed density).

    With `adapt`, the step starts at `step_size` and each chain adapts it during the first
    half of its steps (warm-up) by a Robbins-Monro rule on log(step) toward `target_accept`
    (gain 1/sqrt(t+1), the factor exp(d) taken as its Pade approximant (2 + d)/(2 - d), the
    rule of annealed MALA), then keeps it fixed, so the second half are valid Metropolis
    steps of one size. Without it the step is `step_size` throughout."""

    step_size: eqx.AbstractVar[float]
    n_steps: eqx.AbstractVar[int]
    adapt: eqx.AbstractVar[bool]
    target_accept: eqx.AbstractVar[float]

    @abc.abstractmethod
    def _init(self, fn, x, step_size): ...

    @abc.abstractmethod
    def _step(self, fn, state, key, step_size): ...

    def _error(self, acc):
        """The adaptation's error signal, in (-1, 1)."""
        return acc - self.target_accept

    def init(self, fn, x, key):
        state, n = self._init(fn, x, self.step_size)
        if not self.adapt:
            return state, n
        return _Adapting(state, jnp.ones((), jnp.float32), jnp.zeros((), jnp.float32)), n

    def step(self, fn, state, level, key):
        if not self.adapt:
            return self._step(fn, state, key, self.step_size)
        new, i = self._step(fn, state.chain, key, self.step_size * state.r)
        acc = jnp.where(jnp.isfinite(i.acceptance), i.acceptance, 0.0)
        r = adapted_ratio(state.r, state.t, self._error(acc), self.n_steps // 2)
        return _Adapting(new, r, state.t + 1.0), i

    def position(self, state):
        return (state.chain if self.adapt else state).position


def adapted_ratio(r, t, error, warmup: int):
    """One Robbins-Monro step on log r: r * exp(d), d = error / sqrt(t + 1), while t < warmup
    (r unchanged after). exp(d) is taken as its Pade approximant (2 + d) / (2 - d): XLA's
    vectorised exp differs in the last bit between SIMD lanes and the remainder loop, so
    exp(d) would make samples depend on the block size; |d| < 1 as |error| < 1."""
    d = error / jnp.sqrt(t + 1.0)
    return jnp.where(t < warmup, r * ((2.0 + d) / (2.0 - d)), r)


def _adapt_options(target: float):
    return (Option("target_accept", float, target, "acceptance rate the adapted step aims at (when --step-size "
                   "is not given)", low=0.0, high=1.0, low_open=True),)


def _target(target_accept) -> float:
    ta = float(target_accept)
    if not 0.0 < ta < 1.0:
        raise ConfigError(f"target_accept={target_accept} must be between 0 and 1 (exclusive)")
    return ta


def _needs_log_density(context, name: str) -> None:
    if context.log_density is None:
        score_only = ", ".join(c.name for c in SAMPLERS if not issubclass(c, AbstractLogDensitySampler))
        raise ConfigError(f"sampler '{name}' needs a log-density and this model has none (a trained score network "
                          f"gives a score only); samplers that need only a score are {score_only}")


def _sigma(sigma) -> float:
    v = float(sigma)
    if not v >= 0:
        raise ConfigError(f"sigma={sigma} must be 0 (the unsmoothed density) or positive")
    return v


@SAMPLERS.register
class MALA(_AbstractBlackjaxSampler):
    """Metropolis-adjusted Langevin (blackjax.mala): proposal x + h grad log p + sqrt(2h) z.

    Arguments:
        step_size: h (squared data units); with `adapt`, where the adaptation starts.
        n_steps: steps per chain (each particle is an independent chain).
        sigma: the smoothing of the log-density given to the runner (messages only).
        adapt: adapt h per chain during the first half of the steps (see the base class).
        target_accept: the acceptance the adaptation aims at (0.574, MALA's optimum).
    """

    step_size: float
    sigma: float
    target_accept: float
    n_steps: int = eqx.field(static=True)
    adapt: bool = eqx.field(static=True)
    name = "mala"
    label = "MALA"
    options = (
        OPT_SIGMA,
        Option("step_size", float, None, "h, squared data units (default: adapted per chain during the first half "
               "of the steps toward --target-accept, from sigma^2 / 2)", **POSITIVE),
        OPT_STEPS,
    ) + _adapt_options(0.574)

    def __init__(self, step_size: float, n_steps: int, *, sigma: float = 0.0, adapt: bool = False,
                 target_accept: float = 0.574):
        self.step_size = positive(step_size, "step_size")
        self.n_steps = at_least_one(n_steps, "n_steps")
        self.sigma = _sigma(sigma)
        self.adapt = bool(adapt)
        self.target_accept = _target(target_accept)

    @classmethod
    def from_options(cls, context, *, sigma, step_size, steps, target_accept):
        _needs_log_density(context, cls.name)
        sig = fixed_sigma(context, sigma, "sampler 'mala'")
        if step_size is not None:
            return cls(step_size, steps, sigma=sig, target_accept=target_accept)
        start = (sig if sig > 0 else context.sigma_min) ** 2 / 2
        return cls(start, steps, sigma=sig, adapt=True, target_accept=target_accept)

    def _init(self, fn, x, step_size):
        return _blackjax().mala(fn, step_size).init(x), count(1)

    def _step(self, fn, state, key, step_size):
        state, i = _blackjax().mala(fn, step_size).step(key, state)
        return state, info(1, acceptance=i.acceptance_rate)


@SAMPLERS.register
class HMC(_AbstractBlackjaxSampler):
    """Hamiltonian Monte Carlo (blackjax.hmc) with identity mass and a fixed path length.

    Arguments:
        step_size: leapfrog step (data units per unit momentum); with `adapt`, where the
            adaptation starts.
        n_leapfrog: leapfrog steps per proposal.
        n_steps: proposals per chain.
        sigma: the smoothing of the log-density given to the runner (messages only).
        adapt: adapt the step per chain during the first half of the proposals.
        target_accept: the acceptance the adaptation aims at (0.65, HMC's optimum).
    """

    step_size: float
    sigma: float
    target_accept: float
    n_steps: int = eqx.field(static=True)
    n_leapfrog: int = eqx.field(static=True)
    adapt: bool = eqx.field(static=True)
    name = "hmc"
    label = "HMC"
    options = (
        OPT_SIGMA,
        Option("step_size", float, None, "leapfrog step, data units per unit momentum (default: adapted per chain "
               "during the first half of the steps toward --target-accept, from sigma / 2)", **POSITIVE),
        OPT_STEPS,
        Option("leapfrog", int, 5, "leapfrog steps per proposal", low=1),
    ) + _adapt_options(0.65)

    def __init__(self, step_size: float, n_steps: int, n_leapfrog: int = 10, *, sigma: float = 0.0,
                 adapt: bool = False, target_accept: float = 0.65):
        self.step_size = positive(step_size, "step_size")
        self.n_steps = at_least_one(n_steps, "n_steps")
        self.n_leapfrog = at_least_one(n_leapfrog, "n_leapfrog")
        self.sigma = _sigma(sigma)
        self.adapt = bool(adapt)
        self.target_accept = _target(target_accept)

    @classmethod
    def from_options(cls, context, *, sigma, step_size, steps, leapfrog, target_accept):
        _needs_log_density(context, cls.name)
        sig = fixed_sigma(context, sigma, "sampler 'hmc'")
        if step_size is not None:
            return cls(step_size, steps, leapfrog, sigma=sig, target_accept=target_accept)
        start = 0.5 * (sig if sig > 0 else context.sigma_min)
        return cls(start, steps, leapfrog, sigma=sig, adapt=True, target_accept=target_accept)

    def _step(self, fn, state, key, step_size):
        alg = _blackjax().hmc(fn, step_size, jnp.ones_like(state.position), self.n_leapfrog)
        state, i = alg.step(key, state)
        return state, info(i.num_integration_steps, acceptance=i.acceptance_rate)

    def _init(self, fn, x, step_size):
        return _blackjax().hmc(fn, step_size, jnp.ones_like(x), self.n_leapfrog).init(x), count(1)


@SAMPLERS.register
class NUTS(_AbstractBlackjaxSampler):
    """The No-U-Turn sampler (blackjax.nuts) with identity mass.

    Arguments:
        step_size: leapfrog step; with `adapt`, where the adaptation starts.
        n_steps: NUTS iterations per chain.
        max_doublings: tree depth limit (at most 2^max_doublings - 1 leapfrog steps).
        sigma: the smoothing of the log-density given to the runner (messages only).
        adapt: adapt the step per chain during the first half of the iterations, on the
            sign of (acceptance - target_accept) (NUTS's acceptance statistic differs in the
            last bit between SIMD lanes; its sign keeps the samples the same for any block
            size), so toward a median acceptance of target_accept.
        target_accept: the acceptance the adaptation aims at (0.8, as Stan's).
    """

    step_size: float
    sigma: float
    target_accept: float
    n_steps: int = eqx.field(static=True)
    max_doublings: int = eqx.field(static=True)
    adapt: bool = eqx.field(static=True)
    name = "nuts"
    label = "NUTS"
    options = (
        OPT_SIGMA,
        Option("step_size", float, None, "leapfrog step, data units per unit momentum (default: adapted per chain "
               "during the first half of the steps toward --target-accept, from sigma / 2)", **POSITIVE),
        OPT_STEPS,
        Option("max_doublings", int, 10, "tree depth limit (at most 2^max_doublings - 1 leapfrog steps)", low=1),
    ) + _adapt_options(0.8)

    def __init__(self, step_size: float, n_steps: int, max_doublings: int = 10, *, sigma: float = 0.0,
                 adapt: bool = False, target_accept: float = 0.8):
        self.step_size = positive(step_size, "step_size")
        self.n_steps = at_least_one(n_steps, "n_steps")
        self.max_doublings = at_least_one(max_doublings, "max_doublings")
        self.sigma = _sigma(sigma)
        self.adapt = bool(adapt)
        self.target_accept = _target(target_accept)

    @classmethod
    def from_options(cls, context, *, sigma, step_size, steps, max_doublings, target_accept):
        _needs_log_density(context, cls.name)
        sig = fixed_sigma(context, sigma, "sampler 'nuts'")
        if step_size is not None:
            return cls(step_size, steps, max_doublings, sigma=sig, target_accept=target_accept)
        start = 0.5 * (sig if sig > 0 else context.sigma_min)
        return cls(start, steps, max_doublings, sigma=sig, adapt=True, target_accept=target_accept)

    def _error(self, acc):
        return 0.5 * jnp.sign(acc - self.target_accept)

    def _step(self, fn, state, key, step_size):
        alg = _blackjax().nuts(fn, step_size, jnp.ones_like(state.position), max_num_doublings=self.max_doublings)
        state, i = alg.step(key, state)
        return state, info(i.num_integration_steps, acceptance=i.acceptance_rate)

    def _init(self, fn, x, step_size):
        return _blackjax().nuts(fn, step_size, jnp.ones_like(x)).init(x), count(1)
