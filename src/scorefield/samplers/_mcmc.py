"""Metropolis-adjusted samplers from blackjax, for targets with a log-density.

These need `log_prob(x) -> log p(x)` (up to a constant) on one example, not a score: a
closed-form target, or a model parameterised as an energy. The runner passes it as the
model function; evaluations counted are gradient evaluations of log_prob.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from .._errors import ConfigError
from ._base import AbstractChainSampler, count, positive


def _blackjax():
    """blackjax, imported on first use: importing it starts the JAX backend (about a second),
    which every other command would pay for nothing."""
    import blackjax

    return blackjax


class _BlackjaxSampler(AbstractChainSampler):
    needs_log_prob = True

    def position(self, state):
        return state.position


def _check_steps(n_steps):
    if int(n_steps) < 1:
        raise ConfigError(f"n_steps={n_steps} must be at least 1")
    return int(n_steps)


class MALA(_BlackjaxSampler):
    """Metropolis-adjusted Langevin (blackjax.mala): proposal x + h grad log p + sqrt(2h) z.

    Arguments:
        step_size: h (squared data units).
        n_steps: steps per chain (each particle is an independent chain).
    """

    step_size: float
    n_steps: int = eqx.field(static=True)
    name = "mala"

    def __init__(self, step_size: float, n_steps: int):
        self.step_size = positive(step_size, "step_size")
        self.n_steps = _check_steps(n_steps)

    def init(self, fn, x, key):
        return _blackjax().mala(fn, self.step_size).init(x), count(1)

    def step(self, fn, state, level, key):
        state, _ = _blackjax().mala(fn, self.step_size).step(key, state)
        return state, count(1)


class HMC(_BlackjaxSampler):
    """Hamiltonian Monte Carlo (blackjax.hmc) with identity mass and a fixed path length.

    Arguments:
        step_size: leapfrog step (data units per unit momentum).
        n_leapfrog: leapfrog steps per proposal.
        n_steps: proposals per chain.
    """

    step_size: float
    n_steps: int = eqx.field(static=True)
    n_leapfrog: int = eqx.field(static=True)
    name = "hmc"

    def __init__(self, step_size: float, n_steps: int, n_leapfrog: int = 10):
        self.step_size = positive(step_size, "step_size")
        self.n_steps = _check_steps(n_steps)
        if int(n_leapfrog) < 1:
            raise ConfigError(f"n_leapfrog={n_leapfrog} must be at least 1")
        self.n_leapfrog = int(n_leapfrog)

    def step(self, fn, state, level, key):
        alg = _blackjax().hmc(fn, self.step_size, jnp.ones_like(state.position), self.n_leapfrog)
        state, info = alg.step(key, state)
        return state, jnp.asarray(info.num_integration_steps, jnp.int32)

    def init(self, fn, x, key):
        return _blackjax().hmc(fn, self.step_size, jnp.ones_like(x), self.n_leapfrog).init(x), count(1)


class NUTS(_BlackjaxSampler):
    """The No-U-Turn sampler (blackjax.nuts) with identity mass.

    Arguments:
        step_size: leapfrog step.
        n_steps: NUTS iterations per chain.
        max_doublings: tree depth limit (at most 2^max_doublings - 1 leapfrog steps).
    """

    step_size: float
    n_steps: int = eqx.field(static=True)
    max_doublings: int = eqx.field(static=True)
    name = "nuts"

    def __init__(self, step_size: float, n_steps: int, max_doublings: int = 10):
        self.step_size = positive(step_size, "step_size")
        self.n_steps = _check_steps(n_steps)
        if int(max_doublings) < 1:
            raise ConfigError(f"max_doublings={max_doublings} must be at least 1")
        self.max_doublings = int(max_doublings)

    def step(self, fn, state, level, key):
        alg = _blackjax().nuts(fn, self.step_size, jnp.ones_like(state.position), max_num_doublings=self.max_doublings)
        state, info = alg.step(key, state)
        return state, jnp.asarray(info.num_integration_steps, jnp.int32)

    def init(self, fn, x, key):
        return _blackjax().nuts(fn, self.step_size, jnp.ones_like(x)).init(x), count(1)
