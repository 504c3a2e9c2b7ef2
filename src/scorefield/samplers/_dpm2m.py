"""DPM-Solver++(2M) (Lu et al. 2022) for the VE process in data prediction."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import SAMPLERS, count, info
from ._schedules import AbstractFewStepSampler, denoise, few_step_grid, few_step_options


def dpm2m_step(fn, x: Float[Array, " d"], d_prev: Float[Array, " d"], sigma_prev, sigma, sigma_next, first):
    """One DPM-Solver++(2M) step from `sigma` to `sigma_next >= 0` (one score evaluation).

    For the VE process (alpha = 1) in lambda = -log sigma the ODE is dx/dlambda = D - x, so
    x_next = (sigma_next / sigma) x + int_lambda^lambda_next e^(u - lambda_next) D du exactly;
    with h = log(sigma / sigma_next), r = h_prev / h and D extrapolated from the last two
    denoised values this becomes
        x_next = (sigma_next / sigma) x + (1 - sigma_next / sigma) D~,
        D~ = (1 + 1/(2r)) D(x, sigma) - 1/(2r) D_prev,
    and D~ = D(x, sigma) on the `first` step (no history: first order) and on the step to
    sigma_next = 0 (h infinite: the step is the denoiser, x_next = D(x, sigma)).

    Arguments:
        d_prev: D at the previous grid point (`sigma_prev`); ignored when `first`.
        first: a bool (may be traced).
    Returns:
        (x_next, D(x, sigma)), the second to pass on as the next step's `d_prev`.
    """
    d = denoise(fn, x, sigma)
    flat = first | (sigma_next <= 0)
    h = jnp.log(sigma / jnp.where(flat, 0.5 * sigma, sigma_next))  # any finite h where flat
    h_prev = jnp.log(sigma_prev / sigma)
    w = jnp.where(flat, 0.0, 0.5 * h / jnp.where(flat, 1.0, h_prev))
    d_mix = (1.0 + w) * d - w * d_prev
    ratio = sigma_next / sigma
    return ratio * x + (1.0 - ratio) * d_mix, d


@SAMPLERS.register
class DPMSolver2M(AbstractFewStepSampler):
    """DPM-Solver++(2M): multistep second-order exponential integrator in log sigma over
    `nfe` sigmas from sigma_max to sigma_min (the first step first-order), then the
    denoising step at sigma_min (the solver's step to sigma = 0): exactly `nfe` score
    evaluations per sample. Global order 2.

    Arguments:
        sigma_max, sigma_min: the grid's end points (data units); the default start is the
            moment-matched prior N(centre, sigma_max^2 I + the data's covariance)
            (`default_start`), N(centre, sigma_max^2 I) where the spread is unknown.
        nfe: score evaluations per sample, at least 2.
        schedule: "rho" (EDM's spacing, the default) or "log-uniform" (uniform in log-SNR).
        rho: the rho of the "rho" schedule (> 0; EDM's 7).
    """

    sigmas: Float[Array, " n"]
    nfe: int = eqx.field(static=True)
    schedule: str = eqx.field(static=True)
    rho: float = eqx.field(static=True)
    name = "dpm2m"
    label = "DPM-Solver++(2M)"
    min_nfe = 2
    options = few_step_options(2, 20)
    denoise_in_scan = True  # the step to sigma = 0 is the denoiser

    def __init__(self, sigma_max: float, sigma_min: float, nfe: int = 20, *, schedule: str = "rho", rho: float = 7.0):
        self.nfe, self.sigmas, self.schedule, self.rho = few_step_grid(self, sigma_max, sigma_min, nfe, schedule, rho)

    def init(self, fn, x, key):
        return (x, jnp.asarray(0, jnp.int32), jnp.zeros_like(x)), count(0)

    def step(self, fn, state, level, key):
        x, i, d_prev = state
        s = self.sigmas
        x, d = dpm2m_step(fn, x, d_prev, s[jnp.maximum(i - 1, 0)], s[i], self.sigma_next(i), i == 0)
        return (x, i + 1, d), info(1)
