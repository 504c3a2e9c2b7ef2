"""Predictor-corrector sampling of the variance-exploding SDE (Song et al. 2021)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._errors import ConfigError
from ._base import (
    OPT_SIGMA_MAX,
    OPT_SIGMA_MIN,
    POSITIVE,
    SAMPLERS,
    AbstractGridSampler,
    Option,
    as_sigmas,
    count,
    grid_from_options,
    info,
    positive,
)


@SAMPLERS.register
class PredictorCorrector(AbstractGridSampler):
    """Reverse-diffusion predictor with a Langevin corrector, for the VE SDE.

    Level i (sigma_i, next sigma_{i+1}, and 0 after the last): `n_corrector` Langevin
    steps x <- x + e s(x, sigma_i) + sqrt(2 e) z, then the predictor
    x <- x + (sigma_i^2 - sigma_{i+1}^2) s(x, sigma_i) + sqrt(sigma_i^2 - sigma_{i+1}^2) z,
    without noise at the last level (its drift is then the denoising step).
    The corrector step follows the signal-to-noise ratio r: e = 2 (r |z| / |s|)^2 with
    |z|^2 and |s|^2 replaced by their expectations D and D / sigma_i^2, so e = 2 r^2 sigma_i^2.
    (Song et al. use norms averaged over a batch; per-particle norms of 2-D vectors are so
    noisy that e explodes where |s| is near 0: measured on a 2-D mixture, a covariance 10x
    too large. The expectation keeps each particle independent of the others.)

    Arguments:
        sigmas: descending grid sigma_1 > ... > sigma_L (data units); many levels (hundreds).
        n_corrector: corrector steps per level (0 gives the reverse-diffusion sampler).
        snr: r.
    """

    sigmas: Float[Array, " L"]
    snr: float
    n_corrector: int = eqx.field(static=True)
    name = "pc"
    label = "predictor-corrector"
    options = (
        OPT_SIGMA_MAX,
        OPT_SIGMA_MIN,
        Option("levels", int, 100, "noise levels, geometric from sigma_max to sigma_min", low=1),
        Option("corrector_steps", int, 1, "Langevin corrector steps per level (0: reverse diffusion alone)", low=0),
        Option("snr", float, 0.16, "corrector signal-to-noise ratio r (step 2 r^2 sigma_i^2)", **POSITIVE),
    )

    @classmethod
    def from_options(cls, context, *, sigma_max, sigma_min, levels, corrector_steps, snr):
        grid = grid_from_options(context, sigma_max, sigma_min, levels, "sampler 'pc'")
        from .._limits import MAX_COUNT
        from .._registry import OptionError

        if (corrector_steps + 1) * levels > MAX_COUNT:
            raise OptionError("sampler 'pc'", "corrector_steps", corrector_steps,
                              f"must be at most {MAX_COUNT // levels - 1} over {levels} levels (the score "
                              f"evaluations per particle, counted in int32, stay below {MAX_COUNT})")
        return cls(grid, n_corrector=corrector_steps, snr=snr)

    def __init__(self, sigmas, n_corrector: int = 1, snr: float = 0.16):
        self.sigmas = as_sigmas(sigmas)
        if int(n_corrector) < 0:
            raise ConfigError(f"n_corrector={n_corrector} must be 0 or more")
        self.n_corrector = int(n_corrector)
        from .._limits import MAX_COUNT

        evals = (self.n_corrector + 1) * int(self.sigmas.shape[0])
        if evals > MAX_COUNT:  # evaluations are counted in int32, per step and per particle
            raise ConfigError(f"n_corrector={n_corrector} over {self.sigmas.shape[0]} levels would take {evals} score "
                              f"evaluations per particle, more than {MAX_COUNT}; give fewer corrector steps or levels")
        self.snr = positive(snr, "snr")

    @property
    def steps_per_level(self):
        return 1

    def step(self, fn, state, level, key):
        x = state
        sigma = self.sigmas[level]
        last = level + 1 >= self.sigmas.shape[0]
        sigma_next = jnp.where(last, 0.0, self.sigmas[jnp.minimum(level + 1, self.sigmas.shape[0] - 1)])
        ckey, pkey = jax.random.split(key)

        def corrector(x, k):
            z = jax.random.normal(k, x.shape, x.dtype)
            s = fn(x, sigma)
            e = 2.0 * (self.snr * sigma) ** 2
            return x + e * s + jnp.sqrt(2.0 * e) * z, None

        if self.n_corrector:
            x, _ = jax.lax.scan(corrector, x, jax.random.split(ckey, self.n_corrector))
        var = sigma**2 - sigma_next**2
        z = jax.random.normal(pkey, x.shape, x.dtype)
        x = x + var * fn(x, sigma) + jnp.where(last, 0.0, jnp.sqrt(var)) * z
        return x, info(self.n_corrector + 1)

    def position(self, state):
        return state

    def finalize(self, fn, state, key):
        return state, count(0)
