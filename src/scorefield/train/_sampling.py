"""The sampler a training recipe is meant for: part of the recipe, chosen by measurement
(BENCHMARKS.md), stored in config.json and used by `scorefield sample --run` by default;
and the context any registered sampler derives its defaults from for a run."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._config import TrainConfig


def sampler_context(config: TrainConfig, *, recipe: bool = False, model=None):
    """The `SamplerContext` of a resolved config: its sigma_max, sigma_min, number of levels
    and centre; the spread sigma_data^2 per coordinate; a log-density only where `model` has one.

    Arguments:
        config: a resolved TrainConfig (or a `Run`'s config).
        recipe: the context of the recipe's own sampler, whose smallest sigma is
            max(config sigma_min, sample_sigma_min_ratio * sigma_max) (default ratio 1%:
            below it a short run's score is unreliable; the default preset's model is
            accurate lower, BENCHMARKS.md section 5). Otherwise the run's training sigma_min
            (and a sampler's sigma_min "auto" there is at least 1% of sigma_max).
            Pixel-space image data (`image_shape` set) keeps the 1% floor: its recipe was
            measured there (issue 13).
        model: the run's network (e.g. `Run.ema_model`); an energy network
            (`scorefield.nets.EnergyNet`) gives the context its log-density at every sigma, so
            that Metropolis samplers can use it. A score network gives a score only.
    """
    from ..nets import EnergyNet
    from ..samplers import SamplerContext

    smax, smin = float(config.sigma_max), float(config.sigma_min)
    ratio = 0.01
    if recipe:
        ratio = float(config.sample_sigma_min_ratio) if config.image_shape is None else 0.01
        smin = max(smin, ratio * smax)
    log_density = None
    if isinstance(model, EnergyNet):
        log_density = lambda s: (lambda x: model.log_prob(x, s))  # noqa: E731
    sd = config.sigma_data
    spread = float(sd) ** 2 if isinstance(sd, (int, float)) and not isinstance(sd, bool) else None
    return SamplerContext(dim=int(config.dim), sigma_max=smax, sigma_min=smin, levels=int(config.n_levels),
                          centre=np.asarray(config.centre, np.float32), log_density=log_density, exact=False,
                          auto_min_ratio=ratio, spread=spread)


def build_sampler(config: TrainConfig, **overrides: Any):
    """The configured sampler of a resolved config, and where its particles start.

    Arguments:
        config: a resolved TrainConfig (its `sampler` table names the sampler and options).
        overrides: sampler options replacing the config's (the same snake_case names, e.g.
            levels=200); None values are ignored.
    Returns:
        (sampler, init) for :func:`scorefield.samplers.sample`: the prior N(centre,
        sigma_max^2 I) for samplers with a prior; one-level samplers start at
        N(centre, sigma^2 I) (the reference started its chain at the data centre; at one
        small sigma the score far from the data is untrained).
    Raises:
        OptionError (a ConfigError) naming an option the sampler does not take or a bad value.
    """
    from .. import samplers as S

    opts = {**config.sampler, **{k: v for k, v in overrides.items() if v is not None}}
    name = opts.pop("name")
    context = sampler_context(config, recipe=True)
    sampler = S.SAMPLERS.build(name, context, opts)
    if sampler.default_init() is None:
        return sampler, context.prior(sampler.level_sigma(0))
    return sampler, S.default_start(sampler, context)


# A run on image data samples at most IMAGE_CHUNK particles per compiled call and, on CPU,
# IMAGE_CPU_BLOCK stepped together: a U-Net holds tens of feature maps per particle (about
# 2 MB of activations each for a 28 x 28 U-Net of 32 channels), so memory stays bounded for
# 784-D particles. Results do not depend on the chunk or block size.
IMAGE_CHUNK, IMAGE_CPU_BLOCK = 1024, 64


def image_plan(chunk_size: int) -> tuple[int, int | None]:
    """(chunk size, block size) of the sampler runner for a run on image data: `chunk_size`
    capped at IMAGE_CHUNK, and IMAGE_CPU_BLOCK on CPU (None, one block per chunk, elsewhere)."""
    import jax

    return min(int(chunk_size), IMAGE_CHUNK), (IMAGE_CPU_BLOCK if jax.default_backend() == "cpu" else None)


def sample_by_label(run, sampler, keys, *, labels, n: int, init, guidance: float = 1.0, ema: bool = True,
                    trajectory_every: int | None = None) -> list:
    """`n` samples of an image run for each of `labels` (None: unconditional), one runner call
    per label with its own key, in the image plan's chunks and blocks; a guided score serves
    every label with one compilation (`Run.score_fn`).

    Arguments:
        run: a loaded image `Run`.
        sampler: a built sampler; init: its starting distribution.
        keys: one PRNG key per label.
        labels: labels to sample (ints, or None for the unconditional score).
        guidance: the guidance weight for a label (the unconditional score ignores it).
    Returns:
        one `SampleResult` per label, samples in the data's training units.
    """
    from .. import samplers as S

    chunk, block = image_plan(65536)
    return [S.sample(sampler, run.score_fn(ema=ema, label=label, guidance=guidance if label is not None else 1.0),
                     key, n=n, dim=int(run.config.dim), init=init, chunk_size=chunk, block_size=block,
                     trajectory_every=trajectory_every)
            for key, label in zip(keys, labels, strict=True)]
