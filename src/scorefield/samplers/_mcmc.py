"""Metropolis-adjusted samplers from blackjax, for targets with a log-density.

These need `log_prob(x) -> log p(x)` (up to a constant) on one example, not a score: a
closed-form target, or a model parameterised as an energy. The runner passes it as the
model function; evaluations counted are gradient evaluations of log_prob.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from .._errors import ConfigError
from ._base import (
    OPT_SIGMA,
    OPT_STEPS,
    POSITIVE,
    SAMPLERS,
    AbstractChainSampler,
    AbstractLogDensitySampler,
    Option,
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


class _AbstractBlackjaxSampler(AbstractChainSampler, AbstractLogDensitySampler):
    """A blackjax kernel on one chain; `sigma` is the smoothing of the log-density it is given
    (for messages and for `log_density(sigma)`; 0: the unsmoothed density)."""

    def position(self, state):
        return state.position


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


def _check_steps(n_steps):
    if int(n_steps) < 1:
        raise ConfigError(f"n_steps={n_steps} must be at least 1")
    return int(n_steps)


@SAMPLERS.register
class MALA(_AbstractBlackjaxSampler):
    """Metropolis-adjusted Langevin (blackjax.mala): proposal x + h grad log p + sqrt(2h) z.

    Arguments:
        step_size: h (squared data units).
        n_steps: steps per chain (each particle is an independent chain).
        sigma: the smoothing of the log-density given to the runner (messages only).
    """

    step_size: float
    sigma: float
    n_steps: int = eqx.field(static=True)
    name = "mala"
    label = "MALA"
    options = (
        OPT_SIGMA,
        Option("step_size", float, None, "h, squared data units (default (sigma_max/20)^2 / 2)", **POSITIVE),
        OPT_STEPS,
    )

    def __init__(self, step_size: float, n_steps: int, *, sigma: float = 0.0):
        self.step_size = positive(step_size, "step_size")
        self.n_steps = _check_steps(n_steps)
        self.sigma = _sigma(sigma)

    @classmethod
    def from_options(cls, context, *, sigma, step_size, steps):
        _needs_log_density(context, cls.name)
        step = (context.sigma_max / 20.0) ** 2 / 2 if step_size is None else step_size
        return cls(step, steps, sigma=fixed_sigma(context, sigma, "sampler 'mala'"))

    def init(self, fn, x, key):
        return _blackjax().mala(fn, self.step_size).init(x), count(1)

    def step(self, fn, state, level, key):
        state, i = _blackjax().mala(fn, self.step_size).step(key, state)
        return state, info(1, acceptance=i.acceptance_rate)


@SAMPLERS.register
class HMC(_AbstractBlackjaxSampler):
    """Hamiltonian Monte Carlo (blackjax.hmc) with identity mass and a fixed path length.

    Arguments:
        step_size: leapfrog step (data units per unit momentum).
        n_leapfrog: leapfrog steps per proposal.
        n_steps: proposals per chain.
        sigma: the smoothing of the log-density given to the runner (messages only).
    """

    step_size: float
    sigma: float
    n_steps: int = eqx.field(static=True)
    n_leapfrog: int = eqx.field(static=True)
    name = "hmc"
    label = "HMC"
    options = (
        OPT_SIGMA,
        Option("step_size", float, None, "leapfrog step, data units per unit momentum (default sigma_max/20)", **POSITIVE),
        OPT_STEPS,
        Option("leapfrog", int, 5, "leapfrog steps per proposal", low=1),
    )

    def __init__(self, step_size: float, n_steps: int, n_leapfrog: int = 10, *, sigma: float = 0.0):
        self.step_size = positive(step_size, "step_size")
        self.n_steps = _check_steps(n_steps)
        if int(n_leapfrog) < 1:
            raise ConfigError(f"n_leapfrog={n_leapfrog} must be at least 1")
        self.n_leapfrog = int(n_leapfrog)
        self.sigma = _sigma(sigma)

    @classmethod
    def from_options(cls, context, *, sigma, step_size, steps, leapfrog):
        _needs_log_density(context, cls.name)
        step = context.sigma_max / 20.0 if step_size is None else step_size
        return cls(step, steps, leapfrog, sigma=fixed_sigma(context, sigma, "sampler 'hmc'"))

    def step(self, fn, state, level, key):
        alg = _blackjax().hmc(fn, self.step_size, jnp.ones_like(state.position), self.n_leapfrog)
        state, i = alg.step(key, state)
        return state, info(i.num_integration_steps, acceptance=i.acceptance_rate)

    def init(self, fn, x, key):
        return _blackjax().hmc(fn, self.step_size, jnp.ones_like(x), self.n_leapfrog).init(x), count(1)


@SAMPLERS.register
class NUTS(_AbstractBlackjaxSampler):
    """The No-U-Turn sampler (blackjax.nuts) with identity mass.

    Arguments:
        step_size: leapfrog step.
        n_steps: NUTS iterations per chain.
        max_doublings: tree depth limit (at most 2^max_doublings - 1 leapfrog steps).
        sigma: the smoothing of the log-density given to the runner (messages only).
    """

    step_size: float
    sigma: float
    n_steps: int = eqx.field(static=True)
    max_doublings: int = eqx.field(static=True)
    name = "nuts"
    label = "NUTS"
    options = (
        OPT_SIGMA,
        Option("step_size", float, None, "leapfrog step, data units per unit momentum (default sigma_max/20)", **POSITIVE),
        OPT_STEPS,
        Option("max_doublings", int, 10, "tree depth limit (at most 2^max_doublings - 1 leapfrog steps)", low=1),
    )

    def __init__(self, step_size: float, n_steps: int, max_doublings: int = 10, *, sigma: float = 0.0):
        self.step_size = positive(step_size, "step_size")
        self.n_steps = _check_steps(n_steps)
        if int(max_doublings) < 1:
            raise ConfigError(f"max_doublings={max_doublings} must be at least 1")
        self.max_doublings = int(max_doublings)
        self.sigma = _sigma(sigma)

    @classmethod
    def from_options(cls, context, *, sigma, step_size, steps, max_doublings):
        _needs_log_density(context, cls.name)
        step = context.sigma_max / 20.0 if step_size is None else step_size
        return cls(step, steps, max_doublings, sigma=fixed_sigma(context, sigma, "sampler 'nuts'"))

    def step(self, fn, state, level, key):
        alg = _blackjax().nuts(fn, self.step_size, jnp.ones_like(state.position), max_num_doublings=self.max_doublings)
        state, i = alg.step(key, state)
        return state, info(i.num_integration_steps, acceptance=i.acceptance_rate)

    def init(self, fn, x, key):
        return _blackjax().nuts(fn, self.step_size, jnp.ones_like(x)).init(x), count(1)
