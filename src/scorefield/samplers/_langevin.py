"""Langevin dynamics at one fixed noise level (the reference's sampler, SPEC 2 item 7)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ._base import (
    OPT_SIGMA,
    OPT_STEPS,
    POSITIVE,
    SAMPLERS,
    AbstractChainSampler,
    Option,
    at_least_one,
    count,
    fixed_sigma,
    info,
    positive,
)


@SAMPLERS.register
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
    label = "Langevin"
    options = (
        OPT_SIGMA,
        Option("step_size", float, None, "eta, squared data units (default min((sigma_max/20)^2, sigma^2): stable "
               "at any sigma, since the curvature of log p_sigma is at most 1/sigma^2)", **POSITIVE),
        OPT_STEPS,
    )

    @classmethod
    def from_options(cls, context, *, sigma, step_size, steps):
        sigma = fixed_sigma(context, sigma, "sampler 'langevin'")
        step = step_size
        if step is None:
            # -Hessian of log p_sigma <= I / sigma^2 for any data (p_sigma = p * N(0, sigma^2 I)),
            # so eta <= sigma^2 keeps |1 - eta k / 2| < 1 everywhere; sigma_max / 20 bounds it
            # on smooth targets, where the curvature is the data's
            step = (context.sigma_max / 20.0) ** 2
            step = min(step, sigma**2) if sigma > 0 else step
        return cls(sigma, step, steps)

    def __init__(self, sigma: float, step_size: float, n_steps: int):
        self.sigma = float(sigma) if float(sigma) == 0 else positive(sigma, "sigma")
        self.step_size = positive(step_size, "step_size")
        self.n_steps = at_least_one(n_steps, "n_steps")

    def init(self, fn, x, key):
        return x, count(0)

    def step(self, fn, state, level, key):
        x = state
        z = jax.random.normal(key, x.shape, x.dtype)
        s = fn(x, jnp.asarray(self.sigma, x.dtype))
        return x + 0.5 * self.step_size * s + jnp.sqrt(self.step_size) * z, info(1)

    def position(self, state):
        return state
