"""The sampler a training recipe is meant for: part of the recipe, chosen by measurement
(BENCHMARKS.md), stored in config.json and used by `scorefield sample --run` by default."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ..noise import geometric
from ._config import TrainConfig


def build_sampler(config: TrainConfig, **overrides: Any):
    """The configured sampler of a resolved config, and its prior N(centre, sigma_max^2 I).

    Arguments:
        config: a resolved TrainConfig (its `sampler` table names the sampler and options).
        overrides: sampler options replacing the config's (same keys, e.g. levels=200).
    Returns:
        (sampler, init) for :func:`scorefield.samplers.sample`.
    """
    from .. import samplers as S

    opts = {**config.sampler, **{k: v for k, v in overrides.items() if v is not None}}
    name = opts["name"]
    sigma_max = float(config.sigma_max)
    smin = opts.get("sigma_min", "auto")
    if smin == "auto":
        # below ~1% of sigma_max a short run's score is unreliable and the grid of an image
        # is resolved anyway (BENCHMARKS.md, sampler sweep)
        smin = max(float(config.sigma_min), 0.01 * sigma_max)
    init = S.GaussianInit(sigma_max, jnp.asarray(config.centre, jnp.float32))
    if name == "pc":
        grid = geometric(sigma_max, float(smin), int(opts.get("levels", 100)))
        return S.PredictorCorrector(grid, n_corrector=int(opts.get("corrector_steps", 1)), snr=float(opts.get("snr", 0.16))), init
    if name == "annealed":
        grid = geometric(sigma_max, float(smin), int(opts.get("levels", 30)))
        eps = opts.get("eps", "auto")
        return S.AnnealedLangevin(grid, steps_per_level=int(opts.get("steps_per_level", 100)),
                                  eps=None if eps == "auto" else float(eps)), init
    sigma = float(opts.get("sigma", smin))
    sampler = S.Langevin(sigma, float(opts.get("step_size", 1e-3)), int(opts.get("steps", 1000)))
    # the reference started its chain at the data centre; at one small sigma the score far
    # from the data is untrained, so particles start near the centre
    return sampler, S.GaussianInit(sigma, jnp.asarray(config.centre, jnp.float32))
