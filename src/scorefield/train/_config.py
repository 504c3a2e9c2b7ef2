"""Training configuration: one flat, JSON-serialisable dataclass, presets, TOML files."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ConfigError

FORMAT_VERSION = 1

_CHOICES = {
    "levels": ("all", "random", "continuous"),
    "lr_schedule": ("constant", "cosine"),
    "grid_blend": ("linear", "quadratic"),
}


def _choices(key: str) -> tuple[str, ...]:
    """The valid values of `key`; those of net and objective are the registered names."""
    if key == "net":
        from ..nets import NETS

        return ("auto",) + NETS.names()
    if key == "objective":
        from ..losses import OBJECTIVES

        return OBJECTIVES.names()
    return _CHOICES[key]


def component_options(config: "TrainConfig", kind: str, name: str | None = None) -> dict[str, Any]:
    """The option values of the config's network (`kind` "net") or objective ("objective"),
    checked by its registry: each option a top-level key of the config where one exists
    (width, depth, ...), else from the `net_options` / `objective_options` table.

    Raises:
        ConfigError (an OptionError) naming an unknown or invalid option.
    """
    from ..losses import OBJECTIVES
    from ..nets import NETS

    registry = NETS if kind == "net" else OBJECTIVES
    name = getattr(config, kind) if name is None else name
    extra = config.net_options if kind == "net" else config.objective_options
    fields = {f.name for f in dataclasses.fields(config)}
    values = dict(extra)
    for opt in registry.options(name):
        if opt.name in fields:
            values[opt.name] = getattr(config, opt.name)
    return registry.resolve(name, values)


DEFAULT_SAMPLER = {"name": "pc", "levels": 100, "sigma_min": "auto", "snr": 0.16, "corrector_steps": 1}

@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Written to RUN/config.json with every
    "auto" value resolved, so that a model is rebuilt from config.json alone.

    Noise: sigma is the standard deviation of the Gaussian perturbation in data units.
    `sigma_max = "auto"` applies NCSNv2's rule (largest pairwise distance of a data sample);
    `sigma_min = "auto"` is 0.01 intensity units for image data in pixel space, sigma_max *
    sigma_min_ratio (default 5e-3) for image densities and, for other data, the data's finest
    scale / 4 within [1e-4, 5e-3] x sigma_max (`noise.sigma_min_from_data`; the recipe's
    sampler then stops there too); `sigma_rule` records which and why. Otherwise the recipe's
    sampler stops at max(sigma_min, sample_sigma_min_ratio * sigma_max) (default 1%;
    pixel-space image data keeps 1%). `net = "auto"` is "unet" for image data
    in pixel space, "grid" for data of dimension 1 or 2 and "resmlp" above. `centre =
    "auto"` is the mean of a data sample, `sigma_data = "auto"` its RMS deviation from it.
    `high_dim` (a preset's table of keys) replaces those keys' values on point data of
    dimension >= 3, and `energy` on runs whose network is "energy", except keys the user
    sets; `dim_rule` records what was applied.
    """

    data: str = "mnist"
    # network
    net: str = "sigma"
    n_features: int = 128
    feature_scale: float = 8.0
    width: int = 128
    depth: int = 3
    centre: Any = "auto"  # "auto" or a list of D floats
    sigma_data: Any = "auto"  # resmlp net: per-coordinate data std; "auto" from data
    half_width: Any = "auto"  # grid net: half side of the cube it covers; "auto" from data
    # grid net on an image density, centre and half_width "auto": the finest grid's points
    # on the pixel edges (its step a whole fraction of a pixel), see train.resolve
    grid_align: bool = False
    grid_resolutions: list = field(default_factory=lambda: [8, 16, 32, 64])
    grid_features: int = 4
    # grid and energy nets: how grid points blend, "linear" or "quadratic" (a C^1 B-spline)
    grid_blend: str = "linear"
    # grid net on a piecewise-constant image density: features of the distance to the
    # nearest pixel edge in units of sigma (nets.GridNet); pixel_cell, the side of a pixel in
    # data units, is filled by train.resolve for such data (None elsewhere: no features)
    pixel_edges: bool = False
    # grid net on such a density: F learned features per pixel cell blurred exactly by sigma,
    # the first a histogram whose exact blurred score the net adds below a pixel (0: none)
    pixel_table: int = 0
    # with it: the weight of the histogram's negative log-likelihood of the clean batch,
    # added to the loss (the histogram fitted by maximum likelihood; 0: by the objective alone)
    pixel_table_nll: float = 0.0
    # energy net with a table: its trunk's energy gated off far below a pixel (nets.EnergyNet)
    pixel_table_gate: bool = False
    pixel_cell: Any = None
    # noise and objective
    objective: str = "dsm"
    levels: str = "continuous"
    n_levels: int = 30
    second_order: float = 0.0  # dsm: weight of the second-order (score Jacobian) term; 0 leaves it out
    second_order_fraction: float = 1.0  # dsm: the part of each batch that term is computed on
    antithetic: bool = False  # dsm: each sample perturbed by +sigma z and -sigma z
    sigma_min: Any = "auto"
    sigma_max: Any = "auto"
    sigma_rule: str = ""  # filled by resolve: how sigma_max and sigma_min were chosen, and why
    sigma_min_ratio: float = 5e-3  # image densities: sigma_min "auto" = sigma_min_ratio * sigma_max
    sample_sigma_min_ratio: float = 0.01  # the recipe sampler's smallest sigma, as a fraction of sigma_max
    ssm_projections: int = 1
    # optimisation
    batch_size: int = 512
    steps: int = 3000
    lr: float = 2e-3
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    grad_clip: float = 1.0  # global norm; 0 disables
    ema_decay: float = 0.999  # 0: the EMA is the current weights
    seed: int = 0
    # the sampler this recipe is meant for (see scorefield.train.build_sampler): name, any
    # registered sampler (scorefield.samplers.SAMPLERS), and that sampler's options;
    # sigma_min "auto" is max(config sigma_min, sample_sigma_min_ratio * sigma_max)
    sampler: dict = field(default_factory=lambda: dict(DEFAULT_SAMPLER))
    # options of a registered network or objective that are not keys above (a plug-in's)
    net_options: dict = field(default_factory=dict)
    objective_options: dict = field(default_factory=dict)
    # components given to train() as instances, which load_run / resume need again
    # (e.g. ["model"]); empty when config.json alone rebuilds the run
    injected: list = field(default_factory=list)
    # bookkeeping
    steps_per_call: int = 100  # steps fused into one compiled call (lax.scan)
    log_every: int = 100
    checkpoint_every: int = 1000
    # class-conditional training (labelled image data, a network that takes labels): the
    # probability that a label is replaced by "no label" (classifier-free guidance)
    label_dropout: float = 0.1
    # the guidance weight W that `scorefield sample --label L` and `plot samples` use unless
    # told otherwise: s_u + W (s_L - s_u) (1: the conditional score)
    guidance: float = 1.0
    # keys replacing the values above on point data of dimension >= 3 (not image data in
    # pixel space), applied by train.resolve; a key the user sets (a preset override, a
    # flag, a config-file key, TrainConfig.replace) leaves the table. resolve empties the
    # table and records what it applied in dim_rule.
    high_dim: dict = field(default_factory=dict)
    # keys replacing the values above when the network is "energy" (the same rules as high_dim)
    energy: dict = field(default_factory=dict)
    dim_rule: str = ""  # filled by resolve: the high_dim and energy values applied, and why
    # resolved at the start of training; None until then
    dim: int | None = None
    image_shape: list | None = None  # [C, H, W] for image data in pixel space
    n_classes: int | None = None  # labels the model is conditioned on (0: unconditional)
    # the data file a run was trained on ({"path", "sha256", "bytes"}; None for data without a
    # file), recorded when a run starts so that a resumed run notices a changed file
    data_file: Any = None

    def replace(self, **changes) -> "TrainConfig":
        """A copy with `changes` (validated); a changed key leaves the `high_dim` and
        `energy` tables, so that a value set here is not replaced on data of dimension >= 3
        or for an energy network."""
        for name in RULE_TABLES:
            table = getattr(self, name)
            if table and name not in changes and set(changes) & set(table):
                changes[name] = without_keys(table, changes)
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "config") -> "TrainConfig":
        d = dict(d)
        version = d.pop("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ConfigError(f"{source}: format_version {version} is not supported (this scorefield reads {FORMAT_VERSION})")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; valid keys are {', '.join(sorted(names))}")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for k, v in d.items():
            d[k] = _coerce(k, v, types[k], source)
        return cls(**d).validate(source)

    def validate(self, source: str = "config") -> "TrainConfig":
        for k in ("net", "objective", *_CHOICES):
            options = _choices(k)
            if getattr(self, k) not in options:
                raise ConfigError(f"{source}: {k}={getattr(self, k)!r} is not one of {', '.join(options)}")
        for k in ("grid_features", "n_features", "width", "depth", "n_levels", "batch_size", "steps", "steps_per_call",
                  "log_every", "checkpoint_every", "ssm_projections"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{source}: {k}={v!r} must be a positive integer")
        for k in ("lr", "feature_scale"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{source}: {k}={v!r} must be a positive finite number")
        for k in ("sigma_min_ratio", "sample_sigma_min_ratio"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 < v < 1):
                raise ConfigError(f"{source}: {k}={v!r} must be a number between 0 and 1 (a fraction of sigma_max)")
        if not (isinstance(self.second_order, (int, float)) and not isinstance(self.second_order, bool)
                and math.isfinite(self.second_order) and self.second_order >= 0):
            raise ConfigError(f"{source}: second_order={self.second_order!r} must be a number >= 0 (0 leaves the term out)")
        if not (isinstance(self.second_order_fraction, (int, float)) and not isinstance(self.second_order_fraction, bool)
                and 0 < self.second_order_fraction <= 1):
            raise ConfigError(f"{source}: second_order_fraction={self.second_order_fraction!r} must be in (0, 1]")
        if self.pixel_cell is not None and not (isinstance(self.pixel_cell, (int, float))
                                                and not isinstance(self.pixel_cell, bool)
                                                and math.isfinite(self.pixel_cell) and self.pixel_cell > 0):
            raise ConfigError(f"{source}: pixel_cell={self.pixel_cell!r} must be a positive number (a pixel's side "
                              "in data units) or left out")
        if isinstance(self.pixel_table, bool) or not isinstance(self.pixel_table, int) or self.pixel_table < 0:
            raise ConfigError(f"{source}: pixel_table={self.pixel_table!r} must be a whole number >= 0 (0: no table)")
        if not (isinstance(self.pixel_table_nll, (int, float)) and not isinstance(self.pixel_table_nll, bool)
                and math.isfinite(self.pixel_table_nll) and self.pixel_table_nll >= 0):
            raise ConfigError(f"{source}: pixel_table_nll={self.pixel_table_nll!r} must be a finite number >= 0 "
                              "(0: the histogram is trained by the objective alone)")
        for k in ("grid_align", "antithetic", "pixel_edges", "pixel_table_gate"):
            if not isinstance(getattr(self, k), bool):
                raise ConfigError(f"{source}: {k}={getattr(self, k)!r} must be true or false")
        if not (0.0 <= self.ema_decay < 1.0):
            raise ConfigError(f"{source}: ema_decay={self.ema_decay!r} must be in [0, 1)")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise ConfigError(f"{source}: grad_clip={self.grad_clip!r} must be >= 0 (0 disables clipping)")
        if not (isinstance(self.label_dropout, (int, float)) and 0.0 <= self.label_dropout < 1.0):
            raise ConfigError(f"{source}: label_dropout={self.label_dropout!r} must be in [0, 1)")
        if not (isinstance(self.guidance, (int, float)) and not isinstance(self.guidance, bool)
                and math.isfinite(self.guidance) and self.guidance >= 0):
            raise ConfigError(f"{source}: guidance={self.guidance!r} must be a finite number >= 0 "
                              "(0 unconditional, 1 conditional)")
        if self.image_shape is not None and not (isinstance(self.image_shape, (list, tuple)) and len(self.image_shape) == 3
                                                 and all(isinstance(v, int) and v >= 1 for v in self.image_shape)):
            raise ConfigError(f"{source}: image_shape={self.image_shape!r} must be [C, H, W] (positive integers) or left out")
        if self.n_classes is not None and not (isinstance(self.n_classes, int) and 0 <= self.n_classes <= 100_000):
            raise ConfigError(f"{source}: n_classes={self.n_classes!r} must be a non-negative integer or left out")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ConfigError(f"{source}: warmup_steps={self.warmup_steps!r} must be a non-negative integer")
        for k in ("sigma_min", "sigma_max"):
            v = getattr(self, k)
            if v != "auto" and not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{source}: {k}={v!r} must be a positive number or \"auto\"")
        if isinstance(self.sigma_min, (int, float)) and isinstance(self.sigma_max, (int, float)):
            if not self.sigma_min < self.sigma_max:
                raise ConfigError(f"{source}: sigma_min={self.sigma_min} must be smaller than sigma_max={self.sigma_max}")
        if self.centre != "auto":
            if not (isinstance(self.centre, (list, tuple)) and all(isinstance(c, (int, float)) and math.isfinite(c) for c in self.centre)):
                raise ConfigError(f"{source}: centre={self.centre!r} must be \"auto\" or a list of numbers")
        if self.half_width != "auto" and not (isinstance(self.half_width, (int, float)) and math.isfinite(self.half_width) and self.half_width > 0):
            raise ConfigError(f"{source}: half_width={self.half_width!r} must be a positive number or \"auto\"")
        if self.sigma_data != "auto" and not (isinstance(self.sigma_data, (int, float)) and not isinstance(self.sigma_data, bool)
                                               and math.isfinite(self.sigma_data) and self.sigma_data > 0):
            raise ConfigError(f"{source}: sigma_data={self.sigma_data!r} must be a positive number or \"auto\"")
        if not (isinstance(self.grid_resolutions, (list, tuple)) and self.grid_resolutions
                and all(isinstance(r, int) and r >= 2 for r in self.grid_resolutions)):
            raise ConfigError(f"{source}: grid_resolutions={self.grid_resolutions!r} must be a list of integers >= 2")
        if self.net == "grid" and self.dim is not None and self.dim > 3:
            raise ConfigError(f"{source}: net=\"grid\" is for data of dimension 1 to 3 (here {self.dim}); use net=\"sigma\"")
        _validate_sampler(self.sampler, source)
        for name in RULE_TABLES:
            _validate_rule_table(self, name, source)
        for kind in ("net", "objective"):
            if getattr(self, kind) != "auto":
                try:
                    component_options(self, kind)
                except ConfigError as e:
                    raise ConfigError(f"{source}: {e}") from None
        if self.data_file is not None and not (isinstance(self.data_file, dict)
                                               and isinstance(self.data_file.get("sha256"), str)):
            raise ConfigError(f"{source}: data_file={self.data_file!r} must be null or a table with the sha256 of the data file")
        if not (isinstance(self.injected, list) and set(self.injected) <= {"model", "objective", "optimizer"}):
            raise ConfigError(f"{source}: injected={self.injected!r} must list some of model, objective, optimizer")
        _validate_ranges(self, source)
        if self.net == "reference" and self.levels == "continuous":
            raise ConfigError(f"{source}: the reference network is defined only at its levels; use levels=\"all\" or \"random\" with net=\"reference\"")
        return self


def _validate_ranges(c: "TrainConfig", source: str) -> None:
    """Reliability (issue 14): seeds by the one seed rule, counts within int32 (the step
    counter and JAX's indices), dim a positive integer when given."""
    from .._limits import MAX_COUNT
    from .._seed import check_seed

    check_seed(c.seed, f"{source}: seed", ConfigError)
    for k in ("grid_features", "n_features", "width", "depth", "n_levels", "batch_size", "steps", "steps_per_call",
              "log_every", "checkpoint_every", "ssm_projections", "warmup_steps"):
        if getattr(c, k) > MAX_COUNT:
            raise ConfigError(f"{source}: {k}={getattr(c, k)} is too large; the largest allowed is {MAX_COUNT}")
    if any(r > MAX_COUNT for r in c.grid_resolutions):
        raise ConfigError(f"{source}: grid_resolutions={c.grid_resolutions!r} has a value above {MAX_COUNT}")
    if c.dim is not None and (not isinstance(c.dim, int) or isinstance(c.dim, bool) or not 1 <= c.dim <= MAX_COUNT):
        raise ConfigError(f"{source}: dim={c.dim!r} must be a positive integer (or left out: it is set from the data)")
    if c.dim is not None and isinstance(c.centre, (list, tuple)) and len(c.centre) != c.dim:
        raise ConfigError(f"{source}: dim={c.dim} but centre has {len(c.centre)} entries; they must agree "
                          "(dim is the data's dimension)")


# tables of keys that resolve applies where their condition holds: high_dim on point data
# of dimension >= 3, energy when the network is "energy"
RULE_TABLES = ("high_dim", "energy")
# keys a rule table may not hold: what the data, the run or resolve itself set
_NOT_IN_RULES = ("data", "dim", "dim_rule", "sigma_rule", "image_shape", "n_classes", "data_file",
                 "injected", "seed", "net") + RULE_TABLES


def _validate_rule_table(c: "TrainConfig", name: str, source: str) -> None:
    """A rule table (high_dim, energy): known keys, each value valid where it would be applied."""
    table = getattr(c, name)
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: {name} must be a table of configuration keys")
    if not table:
        return
    names = {f.name for f in dataclasses.fields(c)} - set(_NOT_IN_RULES)
    bad = sorted(set(table) - names)
    if bad:
        raise ConfigError(f"{source}: {name} has key(s) {', '.join(bad)} that it cannot set; it takes "
                          "training keys such as steps, batch_size, second_order")
    TrainConfig.from_dict({**c.to_dict(), **table, name: {}}, source=f"{source} ({name})")


def _validate_sampler(s: Any, source: str) -> None:
    """The [sampler] table: a registered sampler's name and its options (scorefield.samplers.SAMPLERS)."""
    from ..samplers import SAMPLERS

    if not isinstance(s, dict) or not isinstance(s.get("name"), str):
        raise ConfigError(f"{source}: sampler must be a table with a name, one of {SAMPLERS.choices()}")
    try:
        SAMPLERS.resolve(s["name"], {k: v for k, v in s.items() if k != "name"}, fill=False)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def _coerce(key: str, value: Any, typ: Any, source: str) -> Any:
    t = str(typ)
    if t.endswith(" | None"):  # optional keys: None, or a value of the base type
        return None if value is None else _coerce(key, value, t[: -len(" | None")], source)
    if t == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if t == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if t == "bool" and not isinstance(value, bool):
        raise ConfigError(f"{source}: {key}={value!r} must be true or false")
    if t == "dict" and not isinstance(value, dict):
        raise ConfigError(f"{source}: {key} must be a table")
    if t == "dict" and key == "sampler":
        return {**DEFAULT_SAMPLER, **value} if value.get("name", "pc") == "pc" else dict(value)
    if t == "dict":
        return dict(value)
    if t == "list" and not isinstance(value, (list, tuple)):
        raise ConfigError(f"{source}: {key}={value!r} must be a list")
    if t in ("int", "float", "str") and not isinstance(value, {"int": int, "float": (int, float), "str": str}[t]) or (
        t in ("int", "float") and isinstance(value, bool)
    ):
        raise ConfigError(f"{source}: {key}={value!r} must be of type {t}")
    return value


PRESETS: dict[str, dict[str, Any]] = {
    # The reference walkthrough, exactly (SPEC section 2, items 4-5).
    "seed": dict(
        net="reference", n_features=256, width=128, depth=3, centre=[0.5, 0.5],
        objective="dsm", levels="all", n_levels=30, sigma_min=1e-4, sigma_max=1.0,
        batch_size=128, steps=50_000, lr=1e-3, lr_schedule="constant", warmup_steps=0,
        grad_clip=0.0, ema_decay=0.0,
        # the reference's sampler: Langevin at its level 17 (sigma ~ 0.0221), step 1e-3
        sampler={"name": "langevin", "sigma": 0.022122, "step_size": 1e-3, "steps": 2000},
    ),
    # Our recipe, chosen by measurement (BENCHMARKS.md sections 4 and 5): on 2-D data
    # multi-resolution feature grids (net "auto": grid for D <= 2, random Fourier features
    # above) up to 128 per side, one log-uniform sigma per sample from 0.1% of sigma_max, a
    # learning rate of 5e-3 with warm-up, cosine decay, clipping and EMA, and a sampler down to
    # 0.125% of sigma_max (at 1% the floor alone was 0.074; the sampler itself below); antithetic
    # noise pairs and a small second-order (score Jacobian) term on a quarter of each batch
    # (BENCHMARKS.md section 5: KL of the "5" 0.068 -> 0.048 nats, hist_tv within the guard);
    # on an image density, features of the distance to the nearest pixel edge in units of
    # sigma (BENCHMARKS.md section 5, 2026-12-02: KL of the "5" over three seeds 0.051 -> 0.037
    # nats, hist_tv at 10,000 0.056 -> 0.049; 8,000 steps were not enough on every seed);
    # and a table of 4 learned features per pixel blurred exactly by sigma, whose histogram's
    # score the grid net adds below a pixel (BENCHMARKS.md section 5, 2026-12-03: over three
    # seeds KL 0.033 -> 0.018-0.023 nats, hist_tv at 100,000 about 1.6x -> 1.37x its floor),
    # its histogram fitted by maximum likelihood on the clean batches besides DSM (BENCHMARKS.md
    # section 5, 2026-12-04: hist_tv at 100,000 over three seeds x three draws 1.37x -> 1.19x).
    "default": dict(
        net="auto", n_features=128, feature_scale=8.0, width=64, depth=2,
        grid_resolutions=[8, 16, 32, 64, 128], grid_features=4, pixel_edges=True, pixel_table=4,
        pixel_table_nll=1.0, objective="dsm", levels="continuous", sigma_min="auto", sigma_max="auto",
        sigma_min_ratio=1e-3, sample_sigma_min_ratio=1.25e-3,
        antithetic=True, second_order=0.05, second_order_fraction=0.25,
        batch_size=512, steps=12_000, lr=5e-3, lr_schedule="cosine", warmup_steps=200,
        grad_clip=1.0, ema_decay=0.999, steps_per_call=50, log_every=100, checkpoint_every=2000,
        # point data of dimension >= 3 (the resmlp net): 9,000 steps and no second-order term
        # (BENCHMARKS.md section 9, 2026-12-02: on 8-component mixtures in 8-32 D as good as
        # 12,000 steps with it, in about 2/3 of the CPU time; batch 256 was not: 0.8% outside
        # every 3-sigma shell at D = 32). Applied by train.resolve, recorded in dim_rule.
        # The learning rate 1e-2 there (measured so); in 2-D 5e-3 (BENCHMARKS.md section 5,
        # 2026-12-03: on the "5" over three seeds hist_tv at 100,000 1.78x -> 1.61x its floor,
        # KL 0.042 / 0.035 -> 0.033 / 0.034 nats; the eight toys and the fine set unchanged).
        high_dim={"steps": 9000, "second_order": 0.0, "lr": 1e-2, "sampler": dict(DEFAULT_SAMPLER)},
        # net = "energy": no second-order term (it differentiates through the energy's third
        # derivative: slower per step, and worse, hist_tv 0.140 -> 0.088 at 2,000 steps) and a
        # lower learning rate (hist_tv at 10,000 0.062 -> 0.057 at 14,000 steps) and grid
        # features blended by a quadratic B-spline, so the score -grad E is continuous (0.0625
        # -> 0.0575 at 6,000 steps, 1.23x the seconds; BENCHMARKS.md 7); and the pixel table's
        # gate: far below a pixel the trunk's energy and the prior term give way to the
        # table's histogram energy, so that a Metropolis chain at sigma_min samples the
        # histogram's cell masses, not the offsets DSM leaves between cells (BENCHMARKS.md 7,
        # 2026-12-04: MALA from the PC samples 2.42x -> 1.05x its floor, one seed)
        energy={"second_order": 0.0, "lr": 3e-3, "grid_blend": "quadratic", "pixel_table_gate": True,
                "sampler": dict(DEFAULT_SAMPLER)},
        # The sampler: DPM-Solver++(3M) with noise share 0.5 and 40 score evaluations per
        # sample, from the moment-matched prior (BENCHMARKS.md section 6, 2026-12-04): on the
        # "5" over three seeds 0.96-1.01x the hist_tv floor at 10,000 and 1.18-1.21x at
        # 100,000 (PC over 100 levels, 200 evaluations: 0.94x / 1.10x on seed 0); on three
        # trained toys the mode weights and the fraction outside the checkerboard as PC's
        # (8gaussians within 0.005 of 1/8, ncsn-mixture 0.797 of 0.8 against PC's 0.790);
        # 10,000 samples in 0.9 s compiled against PC's 3.1 s. Point data of dimension >= 3
        # and energy networks keep PC, measured there (sections 7 and 9): above, in the
        # high_dim and energy tables.
        sampler={"name": "dpm3m", "nfe": 40, "eta": 0.5, "sigma_min": "auto"},
    ),
    # Image data in pixel space (issue 13: mnist-digits, ...): the U-Net (net "auto"),
    # class-conditional where the data have labels (10% of labels dropped for guidance),
    # one log-uniform sigma per sample, and a few-step sampler (Heun, 30 evaluations).
    # Chosen by measurement on 2 CPU cores (BENCHMARKS.md section 8): on 28x28 digits the
    # U-Net folds 2x2 pixel blocks into channels (patch "auto") and runs at 14x14, about
    # 1 CPU s per step; 700 steps. EDM's preconditioning and loss weighting (the U-Net's
    # correction scaled by c_out / sigma, each sigma's error by 1 + sigma^2 / sigma_data^2):
    # Frechet 5.32x -> 4.49x its floor at guidance 2, 2.87x at guidance 1.5.
    "images": dict(
        net="auto", objective="dsm", levels="continuous", sigma_min="auto", sigma_max="auto",
        net_options={"channels": 32, "downsamples": 2, "patch": "auto", "precondition": True, "data_std": "auto"},
        objective_options={"weighting": "edm"},
        batch_size=64, steps=700, lr=2e-3, lr_schedule="cosine", warmup_steps=100,
        grad_clip=1.0, ema_decay=0.999, label_dropout=0.1, steps_per_call=50, log_every=50, checkpoint_every=500,
        sampler={"name": "heun", "nfe": 30}, guidance=1.5,
    ),
    # Seconds, for tests and `demo --fast`.
    "fast": dict(
        net="auto", n_features=64, feature_scale=8.0, width=32, depth=2,
        grid_resolutions=[8, 16, 32], grid_features=4,
        objective="dsm", levels="continuous", sigma_min="auto", sigma_max="auto",
        batch_size=256, steps=1000, lr=1e-2, lr_schedule="cosine", warmup_steps=50,
        grad_clip=1.0, ema_decay=0.99, steps_per_call=50, log_every=50, checkpoint_every=500,
        sampler={"name": "dpm3m", "nfe": 40, "eta": 0.5, "sigma_min": "auto"},  # the default preset's sampler
    ),
}


# DSM terms that need one sigma per sample: a preset's values give way to levels = "all"
# chosen over it, so that choosing the levels does not fail on keys the user never set
_PER_SAMPLE_SIGMA_KEYS = ("antithetic", "second_order", "second_order_fraction")


def without_keys(table: dict[str, Any], keys) -> dict[str, Any]:
    """`table` (a high_dim table) without `keys`: the keys a user sets leave it, so that
    their values win on data of every dimension."""
    return {k: v for k, v in table.items() if k not in keys}


def merge_preset(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` (a preset's keys) updated by `overrides` (the user's); the preset's per-sample
    sigma terms are left out where the result has levels = "all" and the user did not set them,
    and the keys the user sets leave the preset's rule tables (`high_dim`, `energy`)."""
    d = {**base, **overrides}
    for name in RULE_TABLES:
        if base.get(name) and name not in overrides:  # the user's keys win everywhere
            d[name] = without_keys(base[name], overrides)
    if d.get("levels") == "all":
        for k in _PER_SAMPLE_SIGMA_KEYS:
            if k in base and k not in overrides:
                del d[k]
        for name in RULE_TABLES:
            if d.get(name) and name not in overrides:
                d[name] = without_keys(d[name], _PER_SAMPLE_SIGMA_KEYS)
    return d


def preset(name: str, **overrides) -> TrainConfig:
    """The named preset (`seed`, `default`, `fast`, `images`) with `overrides` applied."""
    if name not in PRESETS:
        raise ConfigError(f"preset {name!r} is not one of {', '.join(PRESETS)}")
    return TrainConfig.from_dict(merge_preset(PRESETS[name], overrides), source=f"preset {name}")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file of TrainConfig keys (top level, or under a [train] table)."""
    p = Path(path)
    from ..data._files import check_regular_file  # a FIFO or device would block: regular files only

    check_regular_file(p, "config file", ConfigError)
    try:
        with open(p, "rb") as f:
            d = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {p} cannot be read: {e.__class__.__name__}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {p} is not valid TOML: {e}") from None
    if "train" in d and isinstance(d["train"], dict):
        d = {**{k: v for k, v in d.items() if k != "train"}, **d["train"]}
    # validate key names and types now, so a typo fails before any work
    TrainConfig.from_dict(merge_preset(PRESETS["fast"], d), source=f"config file {p}")
    return d


def read_config_json(path: str | Path) -> TrainConfig:
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p} does not exist: is this a scorefield run directory?") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{p} is not a readable JSON config ({e.__class__.__name__})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{p} must hold a JSON object")
    return TrainConfig.from_dict(d, source=str(p))
