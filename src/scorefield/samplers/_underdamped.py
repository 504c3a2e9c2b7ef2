"""Unadjusted underdamped Langevin / Hamiltonian Monte Carlo driven by the score alone."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError
from ._base import OPT_SIGMA, OPT_STEPS, POSITIVE, SAMPLERS, AbstractChainSampler, Option, count, fixed_sigma, info, positive


@SAMPLERS.register
class UnderdampedLangevin(AbstractChainSampler):
    """Kinetic Langevin with unit mass, force s(x, sigma), no Metropolis test.

    Each step: partial momentum refresh v <- c v + sqrt(1 - c^2) z with
    c = exp(-friction * h * n_leapfrog), then `n_leapfrog` leapfrog steps of size h (one
    score evaluation each, the last one reused by the next step). `friction=None` refreshes
    the momentum fully (c = 0): unadjusted HMC. Samples p_sigma up to an O(h^2) bias.
    No prior of its own: pass `init` to the runner.

    Arguments:
        sigma: the noise level the score is evaluated at (data units).
        step_size: h (data units per unit momentum).
        n_steps: number of steps.
        n_leapfrog: leapfrog steps per step.
        friction: gamma (per unit time), or None for a full refresh (unadjusted HMC).
    """

    sigma: float
    step_size: float
    friction: float | None
    n_steps: int = eqx.field(static=True)
    n_leapfrog: int = eqx.field(static=True)
    name = "uhmc"
    label = "unadjusted HMC"
    options = (
        OPT_SIGMA,
        Option("step_size", float, None, "leapfrog step h, data units per unit momentum (default min(sigma_max/20, "
               "sigma): stable at any sigma, since the curvature of log p_sigma is at most 1/sigma^2)", **POSITIVE),
        OPT_STEPS,
        Option("leapfrog", int, 5, "leapfrog steps per step", low=1),
        Option("friction", float, None, "friction gamma per unit time (default none: a full momentum refresh)",
               nullable=True, **POSITIVE),
    )

    @classmethod
    def from_options(cls, context, *, sigma, step_size, steps, leapfrog, friction):
        sigma = fixed_sigma(context, sigma, "sampler 'uhmc'")
        step = step_size
        if step is None:
            # leapfrog is stable for h sqrt(k) < 2, and k <= 1 / sigma^2 for any data: h <= sigma
            # (the old default sigma_max / 20 was 10x that at a run's sigma_min, and diverged
            # on the default recipe's model, issue 15)
            step = context.sigma_max / 20.0
            step = min(step, sigma) if sigma > 0 else step
        return cls(sigma, step, steps, leapfrog, friction)

    def __init__(self, sigma: float, step_size: float, n_steps: int, n_leapfrog: int = 1, friction: float | None = 1.0):
        self.sigma = float(sigma) if float(sigma) == 0 else positive(sigma, "sigma")
        self.step_size = positive(step_size, "step_size")
        if int(n_steps) < 1 or int(n_leapfrog) < 1:
            raise ConfigError(f"n_steps={n_steps} and n_leapfrog={n_leapfrog} must be at least 1")
        self.n_steps = int(n_steps)
        self.n_leapfrog = int(n_leapfrog)
        self.friction = None if friction is None else positive(friction, "friction")

    def init(self, fn, x, key):
        v = jax.random.normal(key, x.shape, x.dtype)
        return (x, v, fn(x, jnp.asarray(self.sigma, x.dtype))), count(1)

    def step(self, fn, state, level, key):
        x, v, s = state
        h = self.step_size
        sigma = jnp.asarray(self.sigma, x.dtype)
        c = 0.0 if self.friction is None else float(np.exp(-self.friction * h * self.n_leapfrog))
        v = c * v + np.sqrt(1.0 - c * c) * jax.random.normal(key, x.shape, x.dtype)

        def leapfrog(carry, _):
            x, v, s = carry
            v = v + 0.5 * h * s
            x = x + h * v
            s = fn(x, sigma)
            return (x, v + 0.5 * h * s, s), None

        (x, v, s), _ = jax.lax.scan(leapfrog, (x, v, s), None, length=self.n_leapfrog)
        return (x, v, s), info(self.n_leapfrog)

    def position(self, state):
        return state[0]
