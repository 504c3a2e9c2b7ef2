"""DPM-Solver++(3M) (Lu et al. 2022, the third-order multistep variant) for the VE process
in data prediction."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._base import SAMPLERS, count, info
from ._schedules import AbstractFewStepSampler, denoise, few_step_grid, few_step_options


def multistep_weights(sigmas: np.ndarray, order: int = 3) -> np.ndarray:
    """The weights of the multistep exponential integrator over a descending grid, float64.

    For the VE process in lambda = -log sigma the probability-flow ODE is dx/dlambda = D - x,
    so with h = log(sigma_i / sigma_{i+1}) and v = lambda - lambda_i, exactly
        x_{i+1} = e^-h x_i + e^-h int_0^h e^v D(lambda_i + v) dv.
    D is replaced by the polynomial through the last k = min(i + 1, order) denoised values
    (Newton form in lambda); with c0 = 1 - e^-h, c1 = h - c0, c2 = h^2/2 - c1 (the integrals
    of e^(v-h) v^j / j!), the step is x_{i+1} = a_i x_i + sum_j b_ij D_{i-j}, j = 0..2.

    Arguments:
        sigmas: (n,) descending positive grid.
        order: 1, 2 or 3 (the highest order used once enough history exists).
    Returns:
        (n - 1, 4) array: a_i, b_i0, b_i1, b_i2 for step i (sigma_i -> sigma_{i+1}).
    """
    s = np.asarray(sigmas, np.float64)
    lam = -np.log(s)
    out = np.zeros((len(s) - 1, 4))
    for i in range(len(s) - 1):
        h = lam[i + 1] - lam[i]
        c0 = -np.expm1(-h)
        c1 = h - c0
        c2 = 0.5 * h * h - c1
        b = np.array([c0, 0.0, 0.0])
        k = min(i + 1, order)
        if k >= 2:
            h1 = lam[i] - lam[i - 1]
            f01 = np.array([1.0, -1.0, 0.0]) / h1  # first divided difference at lambda_i
            if k == 2:
                b += c1 * f01
            else:
                h2 = lam[i - 1] - lam[i - 2]
                f12 = np.array([0.0, 1.0, -1.0]) / h2
                f012 = (f01 - f12) / (h1 + h2)
                # P(v) = D_i + f01 v + f012 v (v + h1): P'(0) = f01 + h1 f012, P''/2 = f012
                b += c1 * (f01 + h1 * f012) + 2.0 * c2 * f012
        out[i] = (np.exp(-h), *b)
    return out


@SAMPLERS.register
class DPMSolver3M(AbstractFewStepSampler):
    """DPM-Solver++(3M): multistep third-order exponential integrator in log sigma over
    `nfe` sigmas from sigma_max to sigma_min (the first step first-order, the second
    second-order), then the denoising step at sigma_min: exactly `nfe` score evaluations
    per sample. Global order 3 on a smooth flow.

    The step weights depend on the grid only, so they are computed once on the host in
    float64 (`multistep_weights`); a step is one denoiser evaluation and a linear
    combination of it, the last two denoised values and the position.

    Arguments:
        sigma_max, sigma_min: the grid's end points (data units); the default start is the
            prior N(0, sigma_max^2 I).
        nfe: score evaluations per sample, at least 2.
        schedule: "rho" (EDM's spacing, the default) or "log-uniform" (uniform in log-SNR).
        rho: the rho of the "rho" schedule (> 0; EDM's 7).
    """

    sigmas: Float[Array, " n"]
    weights: Float[Array, "n1 4"]
    nfe: int = eqx.field(static=True)
    schedule: str = eqx.field(static=True)
    rho: float = eqx.field(static=True)
    name = "dpm3m"
    label = "DPM-Solver++(3M)"
    min_nfe = 2
    options = few_step_options(2, 20)

    def __init__(self, sigma_max: float, sigma_min: float, nfe: int = 20, *, schedule: str = "rho", rho: float = 7.0):
        self.nfe, self.sigmas, self.schedule, self.rho = few_step_grid(self, sigma_max, sigma_min, nfe, schedule, rho)
        self.weights = jnp.asarray(multistep_weights(np.asarray(self.sigmas, np.float64)), jnp.float32)

    def init(self, fn, x, key):
        zero = jnp.zeros_like(x)
        return (x, jnp.asarray(0, jnp.int32), zero, zero), count(0)

    def step(self, fn, state, level, key):
        x, i, d1, d2 = state
        d0 = denoise(fn, x, self.sigmas[i])
        a, b0, b1, b2 = self.weights[i]
        return (a * x + b0 * d0 + b1 * d1 + b2 * d2, i + 1, d0, d1), info(1)
