"""Langevin dynamics at one fixed noise level (the reference's sampler, SPEC 2 item 7)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._errors import ConfigError
from ._base import AbstractChainSampler, count, positive


class Langevin(AbstractChainSampler):
    """Unadjusted Langevin: x <- x + (eta/2) s(x, sigma) + sqrt(eta) z, z ~ N(0, I).

    Samples (for small eta) the sigma-smoothed density p_sigma; it has no prior of its
    own, so pass `init` to the runner.

    Arguments:
        sigma: the noise level the score is evaluated at (std of the perturbation, data units).
        step_size: eta, in squared data units.
        n_steps: number of steps.
    """

    sigma: float
    step_size: float
    n_steps: int = eqx.field(static=True)
    name = "langevin"

    def __init__(self, sigma: float, step_size: float, n_steps: int):
        self.sigma = float(sigma) if float(sigma) == 0 else positive(sigma, "sigma")
        self.step_size = positive(step_size, "step_size")
        if int(n_steps) < 1:
            raise ConfigError(f"n_steps={n_steps} must be at least 1")
        self.n_steps = int(n_steps)

    def level_sigma(self, level):
        return self.sigma

    def init(self, fn, x, key):
        return x, count(0)

    def step(self, fn, state, level, key):
        x = state
        z = jax.random.normal(key, x.shape, x.dtype)
        s = fn(x, jnp.asarray(self.sigma, x.dtype))
        return x + 0.5 * self.step_size * s + jnp.sqrt(self.step_size) * z, count(1)

    def position(self, state):
        return state
