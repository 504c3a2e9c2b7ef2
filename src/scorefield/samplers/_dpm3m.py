"""DPM-Solver++(3M) (Lu et al. 2022, the third-order multistep variant) for the VE process
in data prediction."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._registry import Option
from ._base import SAMPLERS, count, info
from ._schedules import AbstractFewStepSampler, check_float, denoise, few_step_grid, few_step_options


def multistep_weights(sigmas: np.ndarray, order: int = 3, eta: float = 0.0) -> np.ndarray:
    """The weights of the multistep exponential integrator over a descending grid, float64.

    For the VE process in lambda = -log sigma, with h = log(sigma_i / sigma_{i+1}),
    v = lambda - lambda_i and k = 1 + eta, the family of samplers between the
    probability-flow ODE (eta = 0) and the reverse SDE (eta = 1) steps exactly as
        x_{i+1} = e^(-k h) x_i + int_0^h k e^(-k (h - v)) D(lambda_i + v) dv + sigma_{i+1} sqrt(1 - e^(-2 eta h)) z
    (the Gaussian term keeps the marginals for any eta; DPM-Solver++'s SDE variant is eta = 1).
    D is replaced by the polynomial through the last min(i + 1, order) denoised values
    (Newton form in lambda); the integrals of the kernel times v^j / j! are
    I_0 = 1 - e^(-k h), I_j = h^j / j! - I_{j-1} / k, so the step is
    x_{i+1} = a_i x_i + sum_j b_ij D_{i-j} (j = 0..2) + n_i z.

    Arguments:
        sigmas: (n,) descending positive grid.
        order: 1, 2 or 3 (the highest order used once enough history exists).
        eta: >= 0, the share of the step taken as noise (0: deterministic).
    Returns:
        (n - 1, 5) array: a_i, b_i0, b_i1, b_i2, n_i for step i (sigma_i -> sigma_{i+1}).
    """
    s = np.asarray(sigmas, np.float64)
    lam = -np.log(s)
    k = 1.0 + float(eta)
    out = np.zeros((len(s) - 1, 5))
    for i in range(len(s) - 1):
        h = lam[i + 1] - lam[i]
        i0 = -np.expm1(-k * h)
        i1 = h - i0 / k
        i2 = 0.5 * h * h - i1 / k
        b = np.array([i0, 0.0, 0.0])
        m = min(i + 1, order)
        if m >= 2:
            h1 = lam[i] - lam[i - 1]
            f01 = np.array([1.0, -1.0, 0.0]) / h1  # first divided difference at lambda_i
            if m == 2:
                b += i1 * f01
            else:
                h2 = lam[i - 1] - lam[i - 2]
                f12 = np.array([0.0, 1.0, -1.0]) / h2
                f012 = (f01 - f12) / (h1 + h2)
                # P(v) = D_i + f01 v + f012 v (v + h1): P'(0) = f01 + h1 f012, P''/2 = f012
                b += i1 * (f01 + h1 * f012) + 2.0 * i2 * f012
        out[i] = (np.exp(-k * h), *b, s[i + 1] * np.sqrt(-np.expm1(-2.0 * float(eta) * h)))
    return out


@SAMPLERS.register
class DPMSolver3M(AbstractFewStepSampler):
    """DPM-Solver++(3M): multistep third-order exponential integrator in log sigma over
    `nfe` sigmas from sigma_max to sigma_min (the first step first-order, the second
    second-order), then the denoising step at sigma_min: exactly `nfe` score evaluations
    per sample. Third-order steps on a smooth flow (the first-order first step makes the
    asymptotic order 2; tests/test_fewstep.py measures the slope).

    With `eta > 0` each step also takes part of its way as fresh Gaussian noise (eta = 1:
    the reverse SDE, DPM-Solver++'s SDE variant of the same multistep rule): the
    marginals are the same in theory, and the noise damps what a learned score's errors
    do to a deterministic flow (BENCHMARKS.md section 6); the strong order is lower.

    The step weights depend on the grid only, so they are computed once on the host in
    float64 (`multistep_weights`); a step is one denoiser evaluation and a linear
    combination of it, the last two denoised values and the position. The denoising step
    is the last row of `weights` (x = D(x, sigma_min)), taken inside the same scan.

    Arguments:
        sigma_max, sigma_min: the grid's end points (data units); the default start is the
            moment-matched prior N(centre, sigma_max^2 I + the data's covariance)
            (`default_start`), N(centre, sigma_max^2 I) where the spread is unknown.
        nfe: score evaluations per sample, at least 2.
        schedule: "rho" (EDM's spacing, the default) or "log-uniform" (uniform in log-SNR).
        rho: the rho of the "rho" schedule (> 0; EDM's 7).
        eta: >= 0, the noise share of each step (0: deterministic, the default).
    """

    sigmas: Float[Array, " n"]
    weights: Float[Array, "n 5"]
    nfe: int = eqx.field(static=True)
    schedule: str = eqx.field(static=True)
    rho: float = eqx.field(static=True)
    eta: float = eqx.field(static=True)
    name = "dpm3m"
    label = "DPM-Solver++(3M)"
    min_nfe = 2
    denoise_in_scan = True  # the last row of weights is the denoiser
    options = few_step_options(2, 20) + (
        Option("eta", float, 0.0, "noise share of each step: 0 the probability-flow ODE, 1 the reverse SDE "
               "(DPM-Solver++'s SDE variant; corrects a learned score's errors)", low=0.0),
    )

    def __init__(self, sigma_max: float, sigma_min: float, nfe: int = 20, *, schedule: str = "rho", rho: float = 7.0,
                 eta: float = 0.0):
        self.nfe, self.sigmas, self.schedule, self.rho = few_step_grid(self, sigma_max, sigma_min, nfe, schedule, rho)
        self.eta = check_float(eta, "eta", low=0.0, owner=f"sampler '{self.name}'")
        steps = multistep_weights(np.asarray(self.sigmas, np.float64), 3, self.eta)
        self.weights = jnp.asarray(np.concatenate([steps, [[0.0, 1.0, 0.0, 0.0, 0.0]]]), jnp.float32)

    def init(self, fn, x, key):
        zero = jnp.zeros_like(x)
        return (x, jnp.asarray(0, jnp.int32), zero, zero), count(0)

    def step(self, fn, state, level, key):
        x, i, d1, d2 = state
        d0 = denoise(fn, x, self.sigmas[i])
        a, b0, b1, b2, noise = self.weights[i]
        x = a * x + b0 * d0 + b1 * d1 + b2 * d2
        if self.eta > 0:
            x = x + noise * jax.random.normal(key, x.shape, x.dtype)
        return (x, i + 1, d0, d1), info(1)
