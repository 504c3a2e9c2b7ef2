"""The seven steps of the reference walkthrough (SPEC section 2), with our fixes, and an
eighth of ours: the learned density beside the exact one (issue 17).

Each step takes the shared `Context`, writes its files into the demo directory, records
what it wrote (an `Artifact` with a caption for index.html) and its numbers (into
`ctx.metrics`), and returns what later steps need."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import plot
from .._fs import atomic_path, write_atomic
from .. import samplers as S
from ._settings import DemoSettings

RUN_DIR = "run"
# the new run is trained here and replaces run/ only when the whole demo has succeeded
NEW_RUN_DIR = ".run-new"
SAMPLES = "samples.npy"

# SPEC section 2, item 1.
MIXTURE_MEANS = ((0.5, 0.5), (-0.5, -0.5))
MIXTURE_STD = 0.4
MIXTURE_WEIGHTS = (0.5, 0.5)
# SPEC section 2, item 2.
LANGEVIN_STEP = 0.01
LANGEVIN_INIT_STD = 0.5


@dataclass(frozen=True)
class Artifact:
    """One file the demo wrote, as index.html shows it.

    Attributes:
        step: walkthrough step (1-7) it belongs to.
        file: path relative to the demo directory, forward slashes.
        kind: "figure" (PNG), "animation" (GIF) or "data" (a link).
        title: a few words.
        caption: what it shows, and what was fixed relative to the reference.
    """

    step: int
    file: str
    kind: str
    title: str
    caption: str


@dataclass
class Context:
    out: Path
    settings: DemoSettings
    key: Any
    progress: bool
    artifacts: list[Artifact] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def step_key(self, step: int):
        return jax.random.fold_in(self.key, step)

    def figure(self, step: int, name: str, fig, title: str, caption: str) -> None:
        path = self.out / name
        with atomic_path(path, keep_suffix=True) as tmp:
            plot.save_figure(fig, tmp, dpi=self.settings.dpi)
        self.artifacts.append(Artifact(step, name, "figure", title, caption))

    def animation(self, step: int, name: str, traj, heading: str, caption: str, **kw) -> None:
        path = self.out / name
        with atomic_path(path, keep_suffix=True) as tmp:
            plot.animate_particles(traj, tmp, **kw)
        self.artifacts.append(Artifact(step, name, "animation", heading, caption))

    def data(self, step: int, name: str, title: str, caption: str) -> None:
        self.artifacts.append(Artifact(step, name, "data", title, caption))


def mixture():
    """The closed-form target of steps 1-2: 0.5 N((0.5, 0.5), 0.4^2 I) + 0.5 N((-0.5, -0.5), 0.4^2 I)."""
    from ..targets import GaussianMixture

    var = np.full((2, 2), MIXTURE_STD**2, np.float32)
    return GaussianMixture(np.asarray(MIXTURE_MEANS, np.float32), var, np.asarray(MIXTURE_WEIGHTS, np.float32))


def _floor_dict(floor) -> dict:
    """A `Floor` for metrics.json: mean, its s.e., and one draw's std and 95% range."""
    return {k: float(getattr(floor, k)) for k in ("mean", "stderr", "std", "low", "high")}


def _tv_line(tv: float, floor) -> str:
    """hist_tv beside its exact-sample floor, for figure titles."""
    return f"hist_tv {tv:.3f} (floor of exact samples at this N: {floor.range_text()})"


def step1_mixture(ctx: Context):
    target = mixture()
    fig = plot.density_and_score(
        target.log_prob, target.score, lims=(-1.0, 1.0), grid=100, arrows=10,
        title="two-component Gaussian mixture: log p and its score ∇ log p",
    )
    ctx.figure(1, "01_mixture_score.png", fig, "Density and score",
               "The closed-form mixture 0.5 N((0.5, 0.5), 0.4² I) + 0.5 N((−0.5, −0.5), 0.4² I): "
               "level sets of log p on [−1, 1]² (100×100 grid) and the exact score ∇ log p as a "
               "10×10 field of arrows. Every arrow points uphill, toward the nearer mode.")
    return target


def step2_langevin(ctx: Context, target):
    s = ctx.settings
    sampler = S.Langevin(0.0, LANGEVIN_STEP, s.langevin_steps)
    res = S.sample(
        sampler, lambda x, sigma: target.score(x), ctx.step_key(2), n=s.mixture_particles, dim=2,
        init=S.GaussianInit(LANGEVIN_INIT_STD, jnp.zeros(2, jnp.float32)), trajectory_every=1,
    )
    # Frames: the start, one per step, then the returned samples (the same positions as the
    # last step for plain Langevin): drop that duplicate.
    traj = res.trajectory[:-1] if res.trajectory_index[-1, 0] == sampler.n_levels else res.trajectory
    T = traj.shape[0] - 1
    lims = (-1.5, 1.5)
    fig = plot.paths(traj[:, 0], background=target.log_prob, lims=lims,
                     title=f"one particle, {T} Langevin steps of size {LANGEVIN_STEP} (o start, x end)")
    ctx.figure(2, "02_langevin_path.png", fig, "One Langevin path",
               f"Langevin dynamics x ← x + (η/2) ∇ log p(x) + √η z with the exact score, η = {LANGEVIN_STEP}, "
               f"{T} steps, started from N(0, 0.5² I): the path of one particle over the density's level "
               "sets on [−1.5, 1.5]².")
    labels = [f"step {t} / {T}" for t in range(T + 1)]
    ctx.animation(2, "02_langevin_path.gif", traj[:, 0], "One particle, animated",
                  f"The same particle, one frame per step (up to {s.path_frames} frames), with a trail of its "
                  "last 20 positions.",
                  background=target.log_prob, lims=lims, trail=20, max_frames=s.path_frames, fps=25,
                  labels=labels, title="Langevin with the exact score: one particle")
    N = traj.shape[1]
    ctx.animation(2, "02_langevin_many.gif", traj, f"{N} particles, animated",
                  f"Our addition: {N} particles run the same chain side by side (vmapped, one compiled "
                  "loop). One particle shows a path; a cloud shows the distribution, which after a few "
                  "dozen steps already splits between the two modes.",
                  background=target.log_prob, lims=lims, trail=0, max_frames=(s.path_frames + 1) // 2,
                  fps=12, labels=labels, title=f"Langevin with the exact score: {N} particles")

    from ..metrics import mode_weights

    final = traj[-1]
    w = np.asarray(mode_weights(target, final), np.float64)
    snaps = sorted({0, *(t for t in (10, 25, 50, 100) if t < T), T})
    fig = plot.annealing_strip(
        traj[snaps], None, labels=[f"step {t}" for t in snaps], lims=lims, background=target.log_prob, ncols=3,
        title=f"{N} particles under Langevin with the exact score; after {T} steps the mode weights are "
        f"{w[0]:.2f} / {w[1]:.2f} (exact 0.50 / 0.50)",
    )
    ctx.figure(2, "02_langevin_many.png", fig, f"{N} particles, step by step",
               f"Snapshots of the {N} particles over the level sets: from the start N(0, 0.5² I) they "
               "spread into both modes. The mode weights (mean posterior responsibility of each "
               "component) should be near the exact 0.5 / 0.5, up to the sampling error of "
               f"{N} particles (a few hundredths).")
    ctx.metrics["langevin"] = {
        "particles": int(N), "steps": int(T), "step_size": LANGEVIN_STEP,
        "mode_weights": [float(v) for v in w], "exact_mode_weights": list(MIXTURE_WEIGHTS),
    }


def step3_image(ctx: Context):
    from ..data import load
    from ..metrics import hist_tv, hist_tv_floor

    dataset = load("mnist")
    target = dataset.target
    probs = np.asarray(target.probs, np.float64)
    n = ctx.settings.exact_samples
    k_draw, k_floor = jax.random.split(ctx.step_key(3))
    exact = np.asarray(eqx.filter_jit(type(target).sample)(target, k_draw, n))
    tv = float(hist_tv(target, exact))
    floor = hist_tv_floor(target, n, key=k_floor, repeats=ctx.settings.floor_repeats)
    H, W = probs.shape
    fig = plot.image_vs_samples(
        probs, exact,
        title=f'the MNIST "5" as a density, and {n:,} exact samples from it\n'
        + _tv_line(tv, floor),
    )
    ctx.figure(3, "03_image_density.png", fig, "An image as a distribution",
               f'MNIST training image 0 (a "5", {H}×{W}, bundled: nothing is downloaded) read as a density '
               "over the plane: a pixel's probability is its intensity over the total, spread uniformly "
               f"over its cell. Right: a histogram of {n:,} exact samples on the image's own pixel grid. "
               "Fixed relative to the reference: the histogram is upright (points are (x, y), x right, "
               "y up; the reference plotted (row, column) as (x, y), rotating the picture), the sampler "
               "runs inside jit instead of a Python loop per sample, and pixel cells are [c/28, (c+1)/28] "
               "as the text says.")
    ctx.metrics["exact_image_samples"] = {
        "n": int(n), "hist_tv": tv,
        "hist_tv_floor": _floor_dict(floor),
    }
    return dataset


def step45_train(ctx: Context, dataset, *, log=None):
    from ..train import preset, train

    s = ctx.settings
    config = preset(s.preset, data="mnist", **s.train_overrides)
    if "seed" not in s.train_overrides:
        config = config.replace(seed=int(ctx.metrics.get("seed", 0)))
    if log is not None:
        log(f"preset {s.preset!r}, {config.steps:,} steps of batch {config.batch_size}")
    new = ctx.out / NEW_RUN_DIR
    if new.is_dir() and not new.is_symlink():  # the demo's own leftover from an interrupted rerun
        shutil.rmtree(new)
    run = train(config, new, dataset=dataset, progress=ctx.progress)
    records = run.metrics()
    wall = max((float(r.get("wall", 0.0)) for r in records), default=float("nan"))
    fig = plot.loss_curve(new / "metrics.jsonl",
                          title=f"denoising score matching loss, preset {s.preset!r} ({run.step:,} steps)")
    ctx.figure(5, "05_loss.png", fig, "Training loss",
               f"The denoising score-matching loss (λ(σ) = σ², so every level weighs alike) over "
               f"{run.step:,} steps of the {s.preset!r} preset, with wall-clock seconds on the top axis. "
               "Our recipe instead of the reference's: a network of continuous σ (defined between "
               "levels, not an integer index), one log-uniform σ per sample, Adam with warm-up, cosine "
               "decay and gradient clipping, EMA weights; the perturbation has covariance σ² I (the "
               "reference's text says σ I); the optimiser state covers the trainable arrays only; the "
               "feature layer and the MLP get separate keys.")
    ctx.data(5, f"{RUN_DIR}/config.json", "The trained run",
             "The run directory: config.json (every setting, resolved), metrics.jsonl (step, loss, "
             "wall seconds) and the checkpoint (plain arrays, no pickle). "
             f"Use it with scorefield sample --run {ctx.out}/{RUN_DIR} or scorefield plot.")
    ctx.metrics["train"] = {
        "preset": s.preset, "steps": int(run.step), "batch_size": int(config.batch_size),
        "wall_s": wall, "final_loss": float(records[-1]["loss"]) if records else None,
    }
    return run


def _image_view(dataset):
    probs = np.asarray(dataset.target.probs, np.float64)
    x0, x1, y0, y1 = plot.image_extent(*probs.shape)
    return probs, ((x0, x1), (y0, y1))


def step6_field(ctx: Context, run, dataset):
    probs, lims = _image_view(dataset)
    sigmas = np.asarray(run.sigmas)
    levels = plot.default_levels(sigmas.size)
    fig = plot.vector_field_grid(
        run.score_fn(), sigmas, levels, lims=lims, arrows=15, background=probs,
        title=f"learned score s(x, σ) at {len(levels)} noise levels (EMA weights, step {run.step:,})",
    )
    ctx.figure(6, "06_field.png", fig, "The learned vector field",
               f"The learned score at levels {', '.join(map(str, levels))} of the run's {sigmas.size}-level "
               "grid (15×15 arrows on [0, 1]², colour = |s|, scaled per panel since the score grows like "
               "1/σ), over the faint image. At large σ every arrow points to the digit's centre of mass; "
               "at small σ they point to the nearest stroke.")


def _schedule(sampler) -> str:
    """'predictor-corrector, 100 levels', 'Langevin at σ = 0.0221, 2000 steps', ... for any sampler."""
    label = type(sampler).label
    L, T = sampler.n_levels, sampler.steps_per_level
    if L == 1:
        sigma = sampler.level_sigma(0)
        return f"{label}" + ("" if sigma is None else f" at σ = {sigma:.3g}") + f", {T} steps"
    return f"{label} over {L} noise levels" + (f" × {T} steps" if T > 1 else "")


def _trajectory_every(sampler) -> int:
    # About 150 frames over the whole run, never more than one level apart.
    total = sampler.n_levels * sampler.steps_per_level
    return int(min(sampler.steps_per_level, max(1, total // 150)))


def step7_sample(ctx: Context, run, dataset):
    from ..metrics import hist_tv, hist_tv_floor

    s = ctx.settings
    probs, lims = _image_view(dataset)
    sampler, init = run.sampler()
    k_sample, k_floor = jax.random.split(ctx.step_key(7))
    res = S.sample(sampler, run.score_fn(), k_sample, n=s.samples, dim=2, init=init,
                   trajectory_every=_trajectory_every(sampler), progress=ctx.progress)
    x = res.samples.astype(np.float32)
    path = ctx.out / SAMPLES
    write_atomic(path, lambda f: np.save(f, x))

    n = x.shape[0]
    tv = float(hist_tv(dataset.target, x))
    floor = hist_tv_floor(dataset.target, n, key=k_floor, repeats=s.floor_repeats)
    name = sampler.name
    # any registered sampler: its label, then its schedule
    what = _schedule(sampler)
    fig = plot.image_vs_samples(
        probs, x,
        title=f"{n:,} samples from the learned score ({what})\n"
        + _tv_line(tv, floor),
    )
    ctx.figure(7, "07_samples.png", fig, "Samples from the learned score",
               f"The image beside a histogram of {n:,} samples drawn with the run's own sampler ({what}, "
               f"{res.n_score_evals_per_sample:.0f} score evaluations per sample, {res.wall_time:.1f} s). "
               "hist_tv is the total-variation distance between the histogram on the pixel cells and the "
               "image; exact samples do not reach 0 at finite N, so it is shown next to its floor, the "
               "mean hist_tv of N exact samples. Fixed relative to the reference: many particles "
               "annealed from large to small σ (the method the model was trained for) instead of one "
               "chain of 400,000 steps at a single level, which mixes slowly and samples the smoothed "
               "density; the histogram is upright.")
    ctx.data(7, SAMPLES, "The samples",
             f"The {n:,} samples as a float32 array of shape ({n}, 2), points (x, y) with y up. "
             f"Judge them with scorefield eval --data mnist --samples {ctx.out}/{SAMPLES}.")

    traj, index = res.trajectory, res.trajectory_index
    L = sampler.n_levels

    def label(level, t):
        if level < 0:
            return "start: the sampler's prior"
        return plot.frame_label(sampler, level, t)

    m = min(s.animation_particles, n)
    ctx.animation(7, "07_anneal.gif", traj[:, :m], "The cloud across the annealing",
                  f"{m:,} of the particles from the sampler's prior at σ_max down the noise levels to the "
                  "samples, over the faint image: the cloud contracts onto the digit as σ shrinks.",
                  background=probs, lims=lims, trail=0, fps=15, max_frames=s.anneal_frames,
                  labels=[label(int(lv), int(t)) for lv, t in index],
                  title=f"{what}: {m:,} particles")

    # The strip: the cloud at the end of each level; with one level (a few-step sampler
    # crosses every sigma in one), the frames recorded along it and the samples.
    ends = [np.flatnonzero(index[:, 0] == lv)[-1] for lv in range(L) if np.any(index[:, 0] == lv)]
    if len(ends) >= 2:
        labels = [f"after level {int(index[e, 0])}" + ("" if sampler.level_sigma(int(index[e, 0])) is None
                  else f": σ = {sampler.level_sigma(int(index[e, 0])):.3g}") for e in ends]
    else:
        ends = list(np.flatnonzero(index[:, 0] >= 0))
        labels = [label(int(index[e, 0]), int(index[e, 1])) for e in ends]
    frames = traj[ends]
    along = "at the end of noise levels" if L > 1 else "along the sampler's steps"
    fig = plot.annealing_strip(frames, None, labels=labels, lims=lims, background=probs, max_points=5000, ncols=3,
                               title=f"particles {along} ({what})")
    ctx.figure(7, "07_anneal_strip.png", fig, "Annealing, level by level" if L > 1 else "Annealing, step by step",
               f"Snapshots of the particle cloud {along}, six spread over the schedule, from the broad "
               "prior to the sharp digit.")
    ctx.metrics["samples"] = {
        "n": int(n), "sampler": name, "levels": int(L), "steps_per_level": int(sampler.steps_per_level),
        "score_evals_per_sample": float(res.n_score_evals_per_sample), "wall_s": float(res.wall_time),
    }
    ctx.metrics["hist_tv"] = tv
    ctx.metrics["hist_tv_floor"] = {**_floor_dict(floor), "n": int(n)}
    return x


def step8_density(ctx: Context, run, dataset):
    """The learned density (probability-flow ODE, one solve per cell) beside the image's exact
    density smoothed at the same sigma, and their difference (`scorefield plot density`)."""
    from ..likelihood import data_box, density_map

    s = ctx.settings
    sampler, _ = run.sampler()
    smin, smax = float(sampler.sigmas[-1]), float(run.config.sigma_max)
    target = dataset.target
    dm = density_map(run.score_fn(), data_box(dataset), resolution=s.density_resolution, sigma_min=smin,
                     sigma_max=smax, exact_log_prob=lambda z: target.smoothed_log_prob(z, smin),
                     prior_centre=[float(c) for c in run.config.centre], progress=ctx.progress)
    H, W = np.asarray(target.probs).shape
    fig = plot.density_map_figure(
        dm, title=f"learned density at σ = {smin:.3g} (probability-flow ODE), {len(dm.xs)}×{len(dm.ys)} cells, "
        "beside the exact one")
    ctx.figure(8, "08_density.png", fig, "The learned density beside the target",
               f"log p of the trained model at σ = {smin:.3g} on a {len(dm.xs)}×{len(dm.ys)} grid ({len(dm.xs) / W:.1f} "
               f"cells per image pixel), each cell centre one probability-flow ODE solve from σ_max = {smax:.3g} "
               "down to σ; beside it the exact density of the image smoothed at the same σ, and their "
               "difference. The model is defined between the pixels: this is what it puts there. The titles "
               "give each density's integral over the box (close to 1: the ODE likelihood is consistent). "
               + (f"{dm.unresolved} of {dm.log_prob.size} cells far from the digit are blank: their solves ran "
                  "out of steps (the flow from so small a σ is stiff where the model has next to no mass), and "
                  "they are left out of the integral. " if dm.unresolved else "") +
               f"scorefield eval --run {ctx.out}/{RUN_DIR} --likelihood reports the same model's KL in nats.")
    ctx.metrics["density"] = {
        "resolution": [len(dm.xs), len(dm.ys)], "sigma_min": smin, "integral": float(dm.integral),
        "unresolved_cells": int(dm.unresolved),
        "exact_integral": None if dm.exact_integral is None else float(dm.exact_integral),
        "wall_s": float(dm.seconds),
    }


IMAGE_RUN_DIR = "images_run"

# Step 9's quick recipe (the "images" preset made small): a U-Net of 8 channels and one
# halving on 7x7 digits, 400 steps of batch 64: the step took 97 CPU s (BENCHMARKS.md section 8).
# With the preset's EDM preconditioning its guided digits are read as their label 87% of
# the time against 24% without (500 samples, guidance 2, Heun 10; BENCHMARKS.md section 8).
IMAGE_RECIPE = dict(net_options={"channels": 8, "downsamples": 1, "precondition": True, "data_std": "auto"},
                    steps=400, batch_size=64, steps_per_call=100, log_every=100, checkpoint_every=400,
                    warmup_steps=20, lr=3e-3,
                    sampler={"name": "heun", "nfe": 10})
IMAGE_GUIDANCE = 2.0


def step9_images(ctx: Context, *, log=None):
    """Optional (`--images`): a quick class-conditional U-Net on downsampled MNIST digits in
    pixel space; its guided samples as a grid (one row per label) read by the shipped
    classifier, and the denoising of one batch as an animation."""
    from ..data import load, to_image_units
    from ..metrics import image_report
    from ..train import load_run, preset, sample_by_label, train

    s = ctx.settings
    spec = "mnist-digits" if s.image_size == 28 else f"mnist-digits:size={s.image_size}"
    dataset = load(spec)
    config = preset("images", data=spec, **{**IMAGE_RECIPE, **s.image_overrides})
    run_dir = ctx.out / IMAGE_RUN_DIR
    if run_dir.is_dir() and (run_dir / "config.json").is_file() and not run_dir.is_symlink():
        shutil.rmtree(run_dir)  # the previous demo's (prepare_out checked the directory is the demo's)
    if log is not None:
        log(f"{spec}: preset 'images' made small, {config.steps:,} steps of batch {config.batch_size}")
    import time

    t0 = time.perf_counter()
    train(config, run_dir, dataset=dataset, progress=ctx.progress)
    train_s = time.perf_counter() - t0
    run = load_run(run_dir)
    sampler, init = run.sampler()
    per = s.image_per_label
    labels = list(range(run.n_classes)) or [None]
    k = ctx.step_key(9)
    results = sample_by_label(run, sampler, [jax.random.fold_in(k, i) for i in range(len(labels))], labels=labels,
                              n=per, init=init, guidance=IMAGE_GUIDANCE, trajectory_every=1)
    x = to_image_units(np.concatenate([r.samples for r in results]))
    shape = tuple(dataset.image_shape)
    acc = None
    if run.n_classes:
        acc = [float(image_report(x[i * per:(i + 1) * per], dataset, label=lab).get("label_accuracy", np.nan))
               for i, lab in enumerate(labels)]
    what = (f"read as their label by the shipped classifier: {np.mean(acc):.0%} (chance 10%)" if acc else
            "unconditional")
    fig = plot.image_grid(x, shape, columns=per, row_labels=labels if run.n_classes else None,
                          title=f"{spec}: {per} samples per label, guidance {IMAGE_GUIDANCE:g}, "
                                f"{config.steps} training steps;\n{what}")
    ctx.figure(9, "09_digits.png", fig, "Digits generated pixel by pixel",
               f"Each digit is one point in R^{dataset.dim} ({shape[1]}x{shape[2]} pixels): a class-conditional "
               f"U-Net trained for {config.steps} steps ({train_s:.0f} s) with labels dropped 10% of the time, "
               f"sampled with {type(sampler).label} and classifier-free guidance w = {IMAGE_GUIDANCE:g} "
               f"(s_u + w (s_label - s_u)), one row per label. A quick model: blurry digits; "
               "'scorefield train --preset images' trains the full recipe.")
    traj = to_image_units(np.concatenate([r.trajectory for r in results], axis=1))
    if run.n_classes:  # one column per label
        traj = traj[:, plot.label_columns(run.n_classes, per, rows=3)]
    path = ctx.out / "09_denoising.gif"
    with atomic_path(path, keep_suffix=True) as tmp:
        plot.write_denoising(traj, shape, tmp, columns=max(1, run.n_classes) if run.n_classes else min(per, 10),
                             fps=6)
    ctx.artifacts.append(Artifact(9, "09_denoising.gif", "animation", "Denoising, animated",
                                  "The same sampler on a batch, from noise (top) to digits: one frame per "
                                  "step; the bar along the bottom is the progress."))
    ctx.metrics["images"] = {"data": spec, "steps": int(run.step), "train_wall_s": round(train_s, 3),
                             "guidance": IMAGE_GUIDANCE, "per_label": per,
                             "label_accuracy": None if acc is None else [round(a, 4) for a in acc],
                             "mean_label_accuracy": None if acc is None else round(float(np.mean(acc)), 4)}
    return run
