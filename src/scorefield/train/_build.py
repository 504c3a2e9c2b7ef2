"""From a TrainConfig to the pieces of training: noise grid, network, objective, optimiser.
Networks and objectives are found by name in their registries (scorefield.nets.NETS,
scorefield.losses.OBJECTIVES); nothing here names one."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._errors import ConfigError
from ..losses import OBJECTIVES, Objective, ObjectiveContext
from ..nets import NETS, NetContext, ScoreNet
from ..noise import _data_scales, _sigma_min_rule, geometric, sigma_max_ncsnv2, sigma_min_from_data
from ._config import TrainConfig, component_options

_RESOLVE_SAMPLES = 4096


def keys(config: TrainConfig) -> dict[str, PRNGKeyArray]:
    """Independent keys for each use, so that no two parts share randomness."""
    from .._seed import seed_key

    k_model, k_train, k_resolve = jax.random.split(seed_key(config.seed, raw=True), 3)
    return {"model": k_model, "train": k_train, "resolve": k_resolve}


def resolve(config: TrainConfig, dataset) -> TrainConfig:
    """Fill every "auto" value from a sample of the data, and record the data dimension."""
    x = np.asarray(dataset.sample(keys(config)["resolve"], _RESOLVE_SAMPLES), np.float64)
    if x.ndim != 2 or not np.all(np.isfinite(x)):
        raise ConfigError(f"data {config.data} gave samples of shape {x.shape} with non-finite values; expected finite (n, D)")
    dim = int(x.shape[1])
    if config.dim is not None and config.dim != dim:
        raise ConfigError(f"dim={config.dim} does not fit the data {config.data}, which has dimension {dim}; "
                          "leave dim out (it is set from the data)")
    changes: dict = {"dim": dim}
    if config.high_dim:  # the recipe's values for point data of dimension >= 3, applied first
        config = _apply_high_dim(config, dim, getattr(dataset, "image_shape", None))
    if config.energy:
        config = _apply_energy(config)
    if config.centre == "auto":
        changes["centre"] = [float(c) for c in x.mean(axis=0)]
    elif len(config.centre) != dim:
        raise ConfigError(f"centre has {len(config.centre)} entries but the data {config.data} has dimension {dim}")
    if config.half_width == "auto":
        centre = np.asarray(changes.get("centre", config.centre))
        # the grids cover the data with a 10% margin; beyond it features are clamped
        changes["half_width"] = float(1.1 * np.max(np.abs(x - centre)))
    if config.grid_align and config.centre == "auto" and config.half_width == "auto":
        changes.update(_aligned_cube(changes["centre"], changes["half_width"], config, dataset))
    spread = float(np.max(np.abs(x - x[0]))) if x.size else 0.0
    auto = [k for k in ("sigma_max", "sigma_min", "half_width") if getattr(config, k) == "auto"
            and (k != "half_width" or config.net in ("grid", "auto"))]
    if spread == 0.0 and auto:
        raise ConfigError(f"the data {config.data} have no spread (every sample is the same point), so "
                          f"{'/'.join(auto)}=\"auto\" cannot be set from them; give at least two distinct points")
    if config.sigma_data == "auto":
        centre = np.asarray(changes.get("centre", config.centre))
        changes["sigma_data"] = float(np.sqrt(np.mean((x - centre) ** 2)))
    if (config.pixel_edges or config.pixel_table) and config.pixel_cell is None:
        changes["pixel_cell"] = _pixel_cell(dataset)
    image_shape = getattr(dataset, "image_shape", None)
    changes.update(_noise_range(config, dataset, x))
    if config.net == "auto":
        changes["net"] = auto_net(dim, image_shape)
    if config.image_shape is None and image_shape is not None:
        changes["image_shape"] = [int(v) for v in image_shape]
    if config.n_classes is None:
        import inspect

        net = NETS.get(changes.get("net", config.net))
        takes = "labels" in inspect.signature(OBJECTIVES.get(config.objective).__call__).parameters
        changes["n_classes"] = int(getattr(dataset, "n_classes", 0)) if getattr(net, "conditional", False) and takes else 0
    return config.replace(**changes)


def _apply_high_dim(config: TrainConfig, dim: int, image_shape) -> TrainConfig:
    """The config with its `high_dim` table applied where the data are points of dimension
    >= 3 (not image data in pixel space), the table emptied either way, and `dim_rule`
    saying what was applied. Data of dimension 1-2 keep every other value as it was."""
    table = dict(config.high_dim)
    if dim < 3 or image_shape is not None:
        return dataclasses.replace(config, high_dim={})
    what = ", ".join(f"{k} {v}" for k, v in table.items())
    rule = f"dimension {dim} >= 3: {what} (the preset's high_dim values for point data)"
    return TrainConfig.from_dict({**config.to_dict(), **table, "high_dim": {}, "dim_rule": rule},
                                 source="high_dim")


def _apply_energy(config: TrainConfig) -> TrainConfig:
    """The config with its `energy` table applied where the network is "energy", the table
    emptied either way, and `dim_rule` saying what was applied (after any high_dim rule)."""
    table = dict(config.energy)
    if config.net != "energy":
        return dataclasses.replace(config, energy={})
    what = ", ".join(f"{k} {v}" for k, v in table.items())
    rule = "; ".join(r for r in (config.dim_rule, f"net energy: {what} (the preset's values for energy networks)") if r)
    return TrainConfig.from_dict({**config.to_dict(), **table, "energy": {}, "dim_rule": rule}, source="energy")


def _aligned_cube(centre: list, half_width: float, config: TrainConfig, dataset) -> dict:
    """`grid_align`: for a grid network on a (cell-uniform) image density, the cube whose
    finest grid has its points on the pixel edges: the grid step is 1/(m k) for an m-pixel
    side and the largest whole k that still covers the automatic cube, and the centre moves
    (by less than one grid step) so that the points fall on the edges. The density is
    discontinuous exactly there, which the multilinear features can then follow (a kink at a
    grid line) instead of smearing it over a grid cell. Other data: no change."""
    from ..targets import ImageDensity

    target = getattr(dataset, "target", None)
    net = config.net if config.net != "auto" else auto_net(len(centre), getattr(dataset, "image_shape", None))
    if net != "grid" or not isinstance(target, ImageDensity) or target.centres or len(centre) != 2:
        return {}
    m = max(int(target.height), int(target.width))  # pixels per unit length
    steps = max(int(r) for r in config.grid_resolutions) - 1  # grid steps of the finest grid
    k = int(np.floor(steps / (m * 2.0 * half_width)))
    if k < 1:  # the finest grid is coarser than the pixels: nothing to align
        return {}
    h = 1.0 / (m * k)
    half = 0.5 * steps * h
    return {"centre": [float(np.round((c - half) / h) * h + half) for c in centre], "half_width": float(half)}


def _pixel_cell(dataset) -> float | None:
    """`pixel_edges` and `pixel_table`: the side of a pixel cell of a cell-uniform image density (its cell
    edges at whole multiples of it, `ImageDensity.origin` being 0); None for other data."""
    from ..targets import ImageDensity

    target = getattr(dataset, "target", None)
    if not isinstance(target, ImageDensity) or target.centres or tuple(target.origin) != (0.0, 0.0):
        return None
    return float(target.cell)


def auto_net(dim: int, image_shape=None) -> str:
    """The network `net = "auto"` stands for on data of dimension `dim`: the U-Net for image
    data in pixel space (`image_shape` given), feature grids for D <= 2, the residual MLP
    above."""
    if image_shape is not None:
        return "unet"
    # measured (BENCHMARKS.md, points): on 8-component mixtures in 16-32 D the Fourier-
    # feature "sigma" net lands at 3-20x the energy-distance floor, the ResMLP near 1x
    return "grid" if dim <= 2 else "resmlp"


def _noise_range(config: TrainConfig, dataset, x: np.ndarray) -> dict:
    """sigma_max, sigma_min (and the recipe sampler's last level) from the data where
    "auto", with a line saying how: sigma_max by NCSNv2's rule; sigma_min for point data by
    `noise.sigma_min_from_data` (the data's finest scale / 4), and the recipe's sampler then
    stops there too; image densities keep 5e-3 sigma_max (their pixel size sets the scale;
    the sampler's 1% of sigma_max resolves it)."""
    from ..targets import ImageDensity

    out: dict = {}
    scale = None  # the finest scale, where the same pass over the pairwise distances gives it
    point_rule = (config.sigma_min == "auto" and getattr(dataset, "image_shape", None) is None
                  and not isinstance(getattr(dataset, "target", None), ImageDensity))
    if config.sigma_max == "auto":
        if point_rule:  # both rules from one (n, n) distance matrix
            smax, scale = _data_scales(x)
        else:
            smax = sigma_max_ncsnv2(x)
        out["sigma_max"] = smax
        why_max = f"sigma_max {smax:.4g}: largest distance between {len(x)} data points (NCSNv2)"
    else:
        smax = float(config.sigma_max)
        why_max = f"sigma_max {smax:.4g}: given"
    if config.sigma_min != "auto":
        why_min = f"sigma_min {float(config.sigma_min):.4g}: given"
    elif getattr(dataset, "image_shape", None) is not None:
        # image data: intensities in [0, 1]; 0.01 is below what the eye tells from noise-free
        out["sigma_min"] = min(0.01, 0.5 * smax)
        why_min = f"sigma_min {out['sigma_min']:.4g}: image data in pixel space (0.01 intensity units)"
    elif isinstance(getattr(dataset, "target", None), ImageDensity):
        r = float(config.sigma_min_ratio)
        out["sigma_min"] = r * smax
        why_min = f"sigma_min {out['sigma_min']:.4g}: {r:g} sigma_max (image density: the pixel size sets the scale)"
    else:
        out["sigma_min"], why_min = sigma_min_from_data(x, smax) if scale is None else _sigma_min_rule(scale, smax)
        sampler = dict(config.sampler)
        if sampler.get("sigma_min") == "auto":  # the recipe's sampler stops at the data's scale too
            out["sampler"] = {**sampler, "sigma_min": out["sigma_min"]}
    out["sigma_rule"] = f"{why_max}; {why_min}"
    return out


def sigmas(config: TrainConfig) -> Float[Array, " L"]:
    """The training grid, descending (geometric from sigma_max to sigma_min)."""
    _require_resolved(config)
    return geometric(float(config.sigma_max), float(config.sigma_min), config.n_levels)


def build_model(config: TrainConfig, *, key: PRNGKeyArray) -> ScoreNet:
    """The registered network ``config.net`` with its options from the config."""
    _require_resolved(config)
    context = NetContext(dim=int(config.dim), centre=jnp.asarray(config.centre, jnp.float32),
                         half_width=None if config.half_width == "auto" else float(config.half_width),
                         sigmas=sigmas(config), key=key,
                         image_shape=None if config.image_shape is None else tuple(config.image_shape),
                         n_classes=int(config.n_classes or 0),
                         sigma_data=None if config.sigma_data == "auto" else float(config.sigma_data),
                         pixel_cell=None if config.pixel_cell is None else float(config.pixel_cell))
    return NETS.get(config.net).from_options(context, **component_options(config, "net"))


def build_objective(config: TrainConfig) -> Objective:
    """The registered objective ``config.objective`` with its options from the config."""
    context = ObjectiveContext(sigmas=sigmas(config), sigma_min=float(config.sigma_min),
                               sigma_data=None if config.sigma_data == "auto" else float(config.sigma_data))
    return OBJECTIVES.get(config.objective).from_options(context, **component_options(config, "objective"))


def build_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Adam with an optional linear warm-up, cosine decay and global-norm clipping."""
    if config.lr_schedule == "cosine":
        lr = optax.warmup_cosine_decay_schedule(
            0.0 if config.warmup_steps else config.lr, config.lr, max(config.warmup_steps, 1) if config.warmup_steps else 1,
            max(config.steps, config.warmup_steps + 1), end_value=0.05 * config.lr)
    elif config.warmup_steps:
        lr = optax.join_schedules(
            [optax.linear_schedule(0.0, config.lr, config.warmup_steps), optax.constant_schedule(config.lr)],
            [config.warmup_steps])
    else:
        lr = config.lr
    parts = [optax.clip_by_global_norm(config.grad_clip)] if config.grad_clip > 0 else []
    return optax.chain(*parts, optax.adam(lr))


def is_resolved(config: TrainConfig) -> bool:
    """True when no value that depends on the data is still "auto"."""
    return config.dim is not None and "auto" not in (config.sigma_max, config.sigma_min, config.centre, config.net) and (
        config.net != "grid" or config.half_width != "auto"
    ) and (config.net != "resmlp" or config.sigma_data != "auto")


def _require_resolved(config: TrainConfig) -> None:
    if not is_resolved(config):
        raise ConfigError("the configuration has unresolved \"auto\" values; call scorefield.train.resolve(config, dataset) first")
