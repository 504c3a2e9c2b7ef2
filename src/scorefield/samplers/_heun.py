"""EDM's second-order sampler (Karras et al. 2022, Algorithms 1 and 2) for the VE
probability-flow ODE, with optional stochastic churn."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._registry import Option, OptionError
from ._base import SAMPLERS, count, info
from ._schedules import AbstractFewStepSampler, check_float, denoise, few_step_grid, few_step_options


def heun_step(fn, x: Float[Array, " d"], sigma, sigma_next) -> Float[Array, " d"]:
    """One Heun (explicit trapezoidal) step of dx/dsigma = (x - D(x, sigma)) / sigma from
    `sigma` to `sigma_next > 0`: two score evaluations, local error O(h^3)."""
    d = (x - denoise(fn, x, sigma)) / sigma
    x_euler = x + (sigma_next - sigma) * d
    d_next = (x_euler - denoise(fn, x_euler, sigma_next)) / sigma_next
    return x + (sigma_next - sigma) * 0.5 * (d + d_next)


def churn(x: Float[Array, " d"], sigma, gamma, s_noise, z: Float[Array, " d"]):
    """EDM's noise injection: raise the level to sigma_hat = sigma (1 + gamma) by adding
    N(0, (sigma_hat^2 - sigma^2) s_noise^2 I) noise (`z` standard normal).

    Returns:
        (x_hat, sigma_hat).
    """
    sigma_hat = sigma * (1.0 + gamma)
    # sqrt(sigma_hat^2 - sigma^2) written so that gamma = 0 gives exactly 0 (a fused
    # multiply-add of the difference can round below 0, and its sqrt is NaN)
    return x + sigma * jnp.sqrt(gamma * (2.0 + gamma)) * s_noise * z, sigma_hat


@SAMPLERS.register
class Heun(AbstractFewStepSampler):
    """EDM's sampler: Heun steps between N sigmas from sigma_max to sigma_min, then the
    Euler step from sigma_min to 0 (the denoising step x + sigma_min^2 s(x, sigma_min)):
    2 N - 1 score evaluations, N = (nfe + 1) // 2 (an even `nfe` uses nfe - 1; `n_evals`
    is the exact count). Global order 2.

    With `churn > 0` (Algorithm 2) each step first raises sigma_i to
    sigma_hat = sigma_i (1 + gamma_i), gamma_i = min(churn / N, sqrt(2) - 1) when
    s_tmin <= sigma_i <= s_tmax (else 0), adding noise of std sqrt(sigma_hat^2 - sigma_i^2)
    s_noise, and steps from sigma_hat; churn = 0 is deterministic (Algorithm 1).

    Arguments:
        sigma_max, sigma_min: the grid's end points (data units); the default start is the
            moment-matched prior N(centre, sigma_max^2 I + the data's covariance)
            (`default_start`), N(centre, sigma_max^2 I) where the spread is unknown.
        nfe: score evaluations per sample, at least 3.
        schedule: "rho" (EDM's spacing, the default) or "log-uniform".
        rho: the rho of the "rho" schedule (> 0; EDM's 7).
        churn: S_churn >= 0, the total amount of stochasticity.
        s_tmin, s_tmax: the sigma range where churn applies (data units; s_tmax inf or None:
            no upper limit).
        s_noise: >= 0, the scale of the added noise (EDM's S_noise; 1 is exact in theory).
    """

    sigmas: Float[Array, " n"]
    nfe: int = eqx.field(static=True)
    schedule: str = eqx.field(static=True)
    rho: float = eqx.field(static=True)
    churn: float = eqx.field(static=True)
    s_tmin: float = eqx.field(static=True)
    s_tmax: float = eqx.field(static=True)
    s_noise: float = eqx.field(static=True)
    name = "heun"
    label = "Heun (EDM)"
    min_nfe = 3
    options = few_step_options(3, 21) + (
        Option("churn", float, 0.0, "EDM's S_churn: total stochasticity (0: deterministic)", low=0.0),
        Option("s_tmin", float, 0.0, "smallest sigma churn applies at, data units", low=0.0),
        Option("s_tmax", float, None, "largest sigma churn applies at, data units (default: no limit)", low=0.0),
        Option("s_noise", float, 1.0, "EDM's S_noise: scale of the churn noise", low=0.0),
    )

    def __init__(
        self,
        sigma_max: float,
        sigma_min: float,
        nfe: int | float = 21,  # validated by check_nfe: an integer >= 3
        *,
        schedule: str = "rho",
        rho: float = 7.0,
        churn: float = 0.0,
        s_tmin: float = 0.0,
        s_tmax: float | None = math.inf,
        s_noise: float = 1.0,
    ):
        s_tmax = math.inf if s_tmax is None else s_tmax
        own = f"sampler '{self.name}'"
        self.nfe, self.sigmas, self.schedule, self.rho = few_step_grid(self, sigma_max, sigma_min, nfe, schedule, rho,
                                                                       points=lambda n: (n + 1) // 2)
        self.churn = check_float(churn, "churn", low=0.0, owner=own)
        self.s_tmin = check_float(s_tmin, "s_tmin", low=0.0, owner=own)
        self.s_tmax = check_float(s_tmax, "s_tmax", low=0.0, allow_inf=True, owner=own)
        if self.s_tmax < self.s_tmin:
            raise OptionError(own, "s_tmax", s_tmax, f"must be at least s_tmin={s_tmin:g}")
        self.s_noise = check_float(s_noise, "s_noise", low=0.0, owner=own)

    def _churn(self, x, sigma, key):
        if self.churn == 0.0:
            return x, sigma
        n = self.sigmas.shape[0]
        on = (sigma >= self.s_tmin) & (sigma <= self.s_tmax)
        gamma = jnp.where(on, min(self.churn / n, math.sqrt(2.0) - 1.0), 0.0)
        return churn(x, sigma, gamma, self.s_noise, jax.random.normal(key, x.shape, x.dtype))

    def step(self, fn, state, level, key):
        x, i = state
        x, sigma = self._churn(x, self.sigmas[i], key)
        return (heun_step(fn, x, sigma, self.sigmas[i + 1]), i + 1), info(2)

    def finalize(self, fn, state, key):
        x, sigma = self._churn(self.position(state), self.sigmas[-1], key)
        return denoise(fn, x, sigma), count(1)
