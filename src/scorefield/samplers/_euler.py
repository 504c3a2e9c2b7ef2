"""Euler's method on the VE probability-flow ODE: the first-order few-step baseline."""

from __future__ import annotations

import equinox as eqx
from jaxtyping import Array, Float

from ._base import SAMPLERS, info
from ._schedules import AbstractFewStepSampler, denoise, few_step_grid, few_step_options


def euler_step(fn, x: Float[Array, " d"], sigma, sigma_next) -> Float[Array, " d"]:
    """One Euler step of dx/dsigma = -sigma s(x, sigma) = (x - D(x, sigma)) / sigma from
    `sigma` to `sigma_next` (one score evaluation); `sigma_next = 0` gives D(x, sigma)."""
    d = (x - denoise(fn, x, sigma)) / sigma
    return x + (sigma_next - sigma) * d


@SAMPLERS.register
class Euler(AbstractFewStepSampler):
    """Euler steps of the probability-flow ODE over `nfe` sigmas, the last one the
    denoising step at sigma_min: exactly `nfe` score evaluations per sample (order 1).

    Arguments:
        sigma_max, sigma_min: the grid's end points (data units); the default start is the
            moment-matched prior N(centre, sigma_max^2 I + the data's covariance)
            (`default_start`), N(centre, sigma_max^2 I) where the spread is unknown.
        nfe: score evaluations per sample, at least 2 (the grid has `nfe` sigmas).
        schedule: "rho" (EDM's spacing) or "log-uniform" (geometric).
        rho: the rho of the "rho" schedule (> 0; EDM's 7).
    """

    sigmas: Float[Array, " n"]
    nfe: int = eqx.field(static=True)
    schedule: str = eqx.field(static=True)
    rho: float = eqx.field(static=True)
    name = "euler"
    label = "Euler (probability-flow ODE)"
    min_nfe = 2
    options = few_step_options(2, 20)
    denoise_in_scan = True  # the Euler step to sigma = 0 is the denoiser

    def __init__(self, sigma_max: float, sigma_min: float, nfe: int = 20, *, schedule: str = "rho", rho: float = 7.0):
        self.nfe, self.sigmas, self.schedule, self.rho = few_step_grid(self, sigma_max, sigma_min, nfe, schedule, rho)

    def step(self, fn, state, level, key):
        x, i = state
        return (euler_step(fn, x, self.sigmas[i], self.sigma_next(i)), i + 1), info(1)
