"""scorefield plot: figures of a trained run (score field, loss, samples, target density)."""

from __future__ import annotations

import argparse

from .._limits import SEED_LIMIT
from .._seed import seed_key

KINDS = {
    "field": "the learned score field at a 3x3 grid of noise levels",
    "loss": "the training loss curve from metrics.jsonl",
    "samples": "the target (image or density) beside a histogram of samples (fresh, or --samples FILE.npy); a pair plot for D >= 3",
    "density": "the model's density (probability-flow ODE; exp(-E) normalised numerically for an energy run) on a grid beside the exact density and their difference",
    "target": "the data target's log-density level sets with its score as arrows",
    "anneal": "how the particle cloud sharpens across the annealing levels (principal axes for D >= 3)",
    "animate": "an animation of particles under the run's own sampler (.gif, or .mp4 with ffmpeg); for image data the denoising of a batch of images",
    "nearest": "for image data: samples (fresh, or --samples FILE.npy) each beside its nearest training image, with the distance",
}
IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
ANIMATION_SUFFIXES = (".gif", ".mp4")


def register(sub) -> None:
    from ._plot_density import add_arguments as add_density_arguments
    from ._common import formatter, positive_float, positive_int
    from ._common import seed as seed_type

    p = sub.add_parser(
        "plot",
        help="draw a figure of a run: field, loss, samples, density, target, anneal or animate",
        description="Draw a figure of a trained run and save it (PNG, PDF, SVG or JPG by the suffix of --out).\n\n"
        + "\n".join(f"  {k:<8} {v}" for k, v in KINDS.items()),
        epilog="examples:\n  scorefield plot field --run runs/five --out field.png\n"
        "  scorefield plot samples --run runs/five --out samples.png --n 5000\n"
        "  scorefield plot samples --run runs/five --samples five.npy --out five.png\n"
        "  scorefield plot loss --run runs/five --out loss.pdf\n"
        "  scorefield plot density --run runs/five --out density.png --resolution 224\n"
        "  scorefield plot animate --run runs/five --out particles.gif --n 300\n"
        "  scorefield plot animate --run runs/digits --out denoising.gif\n"
        "  scorefield plot nearest --run runs/digits --out nearest.png --n 20",
        formatter_class=formatter,
    )
    p.add_argument("kind", metavar="KIND", choices=sorted(KINDS), help="one of: " + ", ".join(KINDS))
    p.add_argument("--run", metavar="RUN", required=True, help="run directory written by 'scorefield train'")
    p.add_argument("--out", metavar="FILE", required=True,
                   help="file to write: .png, .pdf, .svg, .jpg (animate: .gif, or .mp4 with ffmpeg)")
    p.add_argument("--n", type=positive_int, default=None, metavar="N",
                   help="particles to sample for samples/anneal/animate (default 2000, 400 for animate)")
    p.add_argument("--samples", metavar="FILE.npy", default=None,
                   help="for 'samples': draw these (N, D) samples (e.g. from 'scorefield sample') instead of fresh ones")
    p.add_argument("--steps-per-level", type=positive_int, default=None, metavar="T",
                   help="steps per noise level of an annealed-Langevin recipe (default: the run's own sampler, as 'scorefield sample --run')")
    p.add_argument("--seed", type=seed_type, default=0, help="random seed for sampling (default 0)")
    p.add_argument("--bins", type=positive_int, default=None, metavar="B",
                   help="histogram bins along the longer side for 'samples' (default: the image's own pixels, else 50)")
    p.add_argument("--levels", type=_levels, default=None, metavar="L,L,...",
                   help="noise-level indices for 'field' (default 0,3,...,24, or nine spread levels)")
    p.add_argument("--sigma", type=positive_float, default=None,
                   help="smooth the target by this sigma for 'target' (default: exact; one pixel for images)")
    p.add_argument("--no-ema", dest="ema", action="store_false", help="use the raw weights instead of the EMA weights")
    p.add_argument("--dpi", type=positive_int, default=120, help="dots per inch of raster output (default 120)")
    add_density_arguments(p)
    p.set_defaults(func=run)


def _levels(text: str) -> list[int]:
    try:
        out = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        out = []
    if not out or min(out) < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of level indices; give e.g. 0,3,6")
    return out


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .._errors import InputError

    out = Path(args.out)
    allowed = ANIMATION_SUFFIXES if args.kind == "animate" else IMAGE_SUFFIXES
    if out.suffix.lower() not in allowed:
        raise InputError(f"--out {out} must end in one of {', '.join(allowed)} for 'plot {args.kind}'")
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir() or (parent.exists() and not parent.is_dir()) or any(
        p.exists() and not p.is_dir() for p in parent.parents
    ):
        # checked before the figure is drawn, so a bad path costs no work
        raise InputError(f"--out {out} cannot be written: a directory or a file stands in its path; give a new file name")
    # Check the run before JAX starts, so a typo fails in a blink.
    run_dir = Path(args.run)
    if not (run_dir / "config.json").is_file():
        raise InputError(
            f"--run {run_dir} is not a scorefield run directory (no config.json); train one with 'scorefield train'"
        )

    if args.samples is not None and args.kind not in ("samples", "nearest"):
        raise InputError(f"--samples applies to 'plot samples' only (and to 'plot nearest' on image data), "
                         f"not to 'plot {args.kind}'")
    _check_before_jax(args, run_dir, out)

    from .. import plot

    from .._errors import ScorefieldError

    try:
        if args.kind == "loss":
            fig = plot.loss_curve(run_dir / "metrics.jsonl")
        elif args.kind == "animate" and _config_image_shape(run_dir) is not None:
            _animate_images(args, run_dir, out)
            print(f"wrote {out}")
            return 0
        elif args.kind == "animate":
            _animate(args, run_dir, out)
            print(f"wrote {out}")
            return 0
        else:
            fig = _DRAW[args.kind](args, run_dir)
        plot.save_figure(fig, out, dpi=args.dpi)
    except OSError as e:  # disk full, read-only, removed folder: one line, exit 1
        raise ScorefieldError(f"could not write {out} ({e.strerror or type(e).__name__}); "
                              "free disk space or choose another path") from None
    print(f"wrote {out}")
    return 0


# the largest figure drawn (inches; the annealing strip and pair plots are the widest)
MAX_FIGURE_INCHES = (18.0, 14.0)
MAX_PIXELS_PER_SIDE = 2**16 - 1  # Agg's limit
MAX_BINS = 4096  # a histogram finer than this has more bins than the figure has pixels


def _check_sizes(args) -> None:
    """--dpi and --bins against what a raster (and a histogram) of that size needs in
    memory, and Agg's pixel limit; exit 2 naming the largest value that fits."""
    import math

    from .._errors import InputError
    from .._limits import available_memory, fmt_bytes

    free = available_memory()
    w, h = MAX_FIGURE_INCHES
    # RGBA bytes, twice (the canvas and the encoder's copy)
    dpi_mem = int(math.sqrt(free / (8 * w * h)))
    dpi_max = max(1, min(dpi_mem, int(MAX_PIXELS_PER_SIDE / w)))
    if args.dpi > dpi_max:
        need = 8 * w * h * args.dpi**2
        raise InputError(f"--dpi {args.dpi} makes figures of up to {int(w * args.dpi)} x {int(h * args.dpi)} pixels "
                         f"(about {fmt_bytes(need)} of memory); the largest --dpi that fits is {dpi_max}")
    if args.bins is not None:
        bins_mem = int(math.sqrt(free / (8 * 8)))  # float64 counts and the image drawn from them, several copies
        bins_max = max(1, min(MAX_BINS, bins_mem))
        if args.bins > bins_max:
            raise InputError(f"--bins {args.bins} is too many: a {args.bins} x {args.bins} histogram needs about "
                             f"{fmt_bytes(64 * args.bins**2)} of memory and has more bins than the figure has pixels; "
                             f"the largest --bins allowed is {bins_max}")


def _check_before_jax(args, run_dir, out) -> None:
    """What can be refused from the files alone, before JAX starts and anything compiles."""
    import json

    from .._errors import InputError

    from ._common import check_output, run_inputs

    inputs = {**run_inputs(run_dir), "--samples": getattr(args, "samples", None)}
    check_output(out, "--out", inputs)
    _check_sizes(args)
    if args.kind == "animate" and out.suffix.lower() == ".mp4":
        from .._ffmpeg import find_ffmpeg

        if find_ffmpeg() is None:
            raise InputError(f"cannot write {out}: no ffmpeg found (PATH or the imageio-ffmpeg wheel); "
                             "write a .gif instead")
    try:
        config = json.loads((run_dir / "config.json").read_text())
        data, dim, image = str(config.get("data", "")), config.get("dim"), config.get("image_shape")
    except (OSError, ValueError, AttributeError):
        return  # load_run names what is wrong with the file
    if args.kind == "nearest" and image is None:
        raise InputError(f"'plot nearest' draws runs on image data in pixel space (mnist-digits, image-folder:...); "
                         f"the data of --run {run_dir} are {data}")
    if image is not None and args.kind in IMAGE_KINDS:
        return
    if args.kind == "target" and data.startswith("points:"):
        raise InputError(f"the data of --run {run_dir} ({data}) has no closed-form density; "
                         "'target' needs an image or toy target")
    if isinstance(dim, int) and dim != 2 and args.kind not in ANY_DIM:
        raise InputError(f"--run {run_dir} holds {dim}-D data; 'scorefield plot {args.kind}' draws 2-D data only "
                         f"(for {dim}-D: {', '.join(ANY_DIM)})")


# --- helpers over a loaded run ---------------------------------------------------------------


ANY_DIM = ("samples", "anneal", "loss")  # kinds that draw point clouds of any D
IMAGE_KINDS = ("samples", "loss", "animate", "nearest")  # kinds that draw runs on images in pixel space


def _config_value(run_dir, key: str, default):
    """`key` of the run's config.json, read before JAX starts; `default` when the file cannot
    be read (load_run then names what is wrong with it)."""
    import json

    try:
        return json.loads((run_dir / "config.json").read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return default


def _config_image_shape(run_dir):
    return _config_value(run_dir, "image_shape", None)


def _config_dim(run_dir):
    return _config_value(run_dir, "dim", 2)


def _load(args, run_dir):
    from .._errors import InputError
    from ..train import load_run

    # The dimension first: a clear message beats a model rebuilt for nothing.
    dim = _config_dim(run_dir)
    image = _config_image_shape(run_dir) is not None and args.kind in IMAGE_KINDS
    if dim != 2 and args.kind not in ANY_DIM and not image:
        raise InputError(f"--run {run_dir} holds {dim}-D data; 'scorefield plot {args.kind}' draws 2-D data only "
                         f"(for {dim}-D: {', '.join(ANY_DIM)})")
    return load_run(run_dir)


def _image(target):
    """(probs (H, W), extent) when the target is an image density, else None."""
    import numpy as np

    from ..plot import image_extent
    from ..targets import ImageDensity

    if not isinstance(target, ImageDensity):
        return None
    p = np.asarray(target.probs)
    return p, image_extent(*p.shape)


def _view(dataset, *, seed: int = 0):
    """Plot limits and a backdrop for a dataset (scorefield.plot.data_view, from `seed`'s draws)."""
    from ..plot import data_view

    return data_view(dataset, key=seed_key(seed, raw=True))


def _box(pts):
    """A square box around 2-D points (scorefield.plot.square_box), no backdrop."""
    from ..plot import square_box

    return square_box(pts), None


def _field(args, run_dir):
    import numpy as np

    from .. import plot

    r = _load(args, run_dir)
    dataset = r.dataset()
    lims, background = _view(dataset)
    points = None
    if background is None:  # no image: the data themselves under the arrows
        import jax

        points = np.asarray(dataset.sample(jax.random.PRNGKey(args.seed + 1), 2000))
    sigmas = np.asarray(r.sigmas)
    return plot.vector_field_grid(
        r.score_fn(ema=args.ema), sigmas, args.levels, lims=lims, background=background, points=points,
        title=f"learned score field of {run_dir.name} ({'EMA' if args.ema else 'raw'} weights, step {r.step})",
    )


def _samples(args, run_dir):
    from pathlib import Path

    import numpy as np

    from .. import plot

    given, path = None, getattr(args, "samples", None)
    if path is not None:
        from ._eval import load_samples

        dim = _config_dim(run_dir)
        given = load_samples(path, dim if isinstance(dim, int) else None)  # before JAX starts
    r = _load(args, run_dir)
    dataset = r.dataset()
    if getattr(dataset, "image_shape", None) is not None:
        return _image_samples(args, r, dataset, given, path)
    if given is not None:
        x, n = given, len(given)
        title = f"{dataset.spec}: target vs {n:,} samples from {Path(path).name}"
    else:
        n = args.n or 2000
        x = _draw(r, n, args, trajectory_every=None).samples
        title = (f"{dataset.spec}: target vs {n:,} fresh samples of {run_dir.name} "
                 f"(step {r.step}, {_sampler_name(_sampler(r, args)[0])})")
    if int(dataset.dim) != 2:

        data = np.asarray(dataset.sample(seed_key((args.seed + 1) % SEED_LIMIT, raw=True), max(n, 2000)))
        return plot.pair_plot(data, np.asarray(x), title=title)
    target = dataset.target
    img = _image(target)
    if img is not None:

        from ..metrics import hist_tv, hist_tv_floor

        tv = float(hist_tv(img[0], x))
        floor = hist_tv_floor(img[0], n, key=seed_key((args.seed + 2) % SEED_LIMIT))
        title += f"\nhist_tv {tv:.3f} (floor of exact samples: {floor.range_text()})"
        return plot.image_vs_samples(img[0], x, bins=args.bins, title=title)
    lims, _ = _view(dataset, seed=args.seed)
    bins = args.bins or 50
    if target is not None and _has_density(target):
        return plot.density_vs_samples(target.log_prob, x, lims=lims, bins=bins, title=title)

    data = np.asarray(dataset.sample(seed_key((args.seed + 1) % SEED_LIMIT, raw=True), max(n, 2000)))
    return plot.data_vs_samples(data, x, lims=lims, bins=bins, title=title)


def _fresh_images(args, r, dataset, n: int, *, per_label_max: int = 10, trajectory_every: int | None = None):
    """Fresh image samples of the run's own sampler: for a class-conditional run
    max(1, min(per_label_max, n // n_classes)) of every label (the run's guidance; one compilation
    for all labels), label-major; else n. Returns (samples in image units (N, D),
    per-label count or None, sampler, trajectory (F, N, D) in image units or None)."""
    import numpy as np

    from ..data import to_image_units
    from ..train import sample_by_label

    sampler, init = _sampler(r, args)
    if r.n_classes:
        per, labels = max(1, min(per_label_max, n // r.n_classes)), list(range(r.n_classes))
        keys = [seed_key((args.seed + label) % SEED_LIMIT) for label in labels]
    else:
        per, labels, keys = None, [None], [seed_key(args.seed)]
    res = sample_by_label(r, sampler, keys, labels=labels, n=n if per is None else per, init=init, ema=args.ema,
                          trajectory_every=trajectory_every, guidance=r.config.guidance)
    x = to_image_units(np.concatenate([q.samples for q in res]))
    traj = None
    if trajectory_every is not None:
        traj = to_image_units(np.concatenate([q.trajectory for q in res], axis=1))
    return x, per, sampler, traj


def _image_samples(args, r, dataset, given, path):
    """A grid of image samples: the file's (10 a row), or fresh ones of the run's sampler,
    one row per label for a class-conditional run (at the run's guidance weight)."""
    from pathlib import Path

    from .. import plot
    from ..data import to_image_units

    shape = tuple(dataset.image_shape)
    if given is not None:
        x = to_image_units(given[:100])
        return plot.image_grid(x, shape, title=f"{dataset.spec}: {len(x)} samples from {Path(path).name}")
    x, per, sampler, _ = _fresh_images(args, r, dataset, args.n or 100)
    if per is not None:
        return plot.image_grid(x, shape, columns=per, row_labels=list(range(r.n_classes)),
                               title=f"{dataset.spec}: {per} fresh samples per label of {r.path.name} "
                                     f"(step {r.step}, {_sampler_name(sampler)}); one row per label")
    return plot.image_grid(x, shape,
                           title=f"{dataset.spec}: {len(x)} fresh samples of {r.path.name} (step {r.step}, {_sampler_name(sampler)})")


def _nearest(args, run_dir):
    """Samples (the file's, or fresh ones) each beside its nearest training image."""
    from pathlib import Path

    import numpy as np

    from .. import plot
    from ..data import to_image_units
    from ..metrics import nearest_neighbours
    from ..metrics._images import NEAR_COPY, data_spacing

    given, path = None, args.samples
    if path is not None:
        from ._eval import load_samples

        dim = _config_dim(run_dir)
        given = load_samples(path, dim if isinstance(dim, int) else None)  # before JAX starts
    r = _load(args, run_dir)
    dataset = r.dataset()
    shape = tuple(dataset.image_shape)
    n = min(args.n or 20, 100)
    if given is not None:
        x, what = to_image_units(given[:n]), f"{min(n, len(given))} samples from {Path(path).name}"
    else:
        x, per, sampler, _ = _fresh_images(args, r, dataset, n, per_label_max=100)
        what = f"{len(x)} fresh samples of {r.path.name} (step {r.step}, {_sampler_name(sampler)})"
    real = dataset.points
    index, dist = nearest_neighbours(x, real)
    # the near-copy threshold of `scorefield eval`: NEAR_COPY x the data's own median spacing
    spacing = data_spacing(real, np.random.default_rng(0))
    return plot.nearest_pairs(x, real[index], dist, shape, threshold=NEAR_COPY * spacing,
                              title=f"{dataset.spec}: {what}\nbeside the nearest training image; distance in "
                                    f"pixel units (red: a near-copy, below {NEAR_COPY * spacing:.2f})")


def _animate_images(args, run_dir, out):
    """The denoising of a batch of images under the run's own sampler, as an animation."""
    from .. import plot
    from .._limits import check_sample_memory, sample_frames

    r = _load(args, run_dir)
    dataset = r.dataset()
    shape = tuple(dataset.image_shape)
    n = min(args.n or 2 * max(1, r.n_classes) or 16, 100)
    sampler, _ = _sampler(r, args)
    total = sampler.n_levels * sampler.steps_per_level
    every = max(1, total // 60)
    check_sample_memory(n, int(dataset.dim), sample_frames(sampler, every), n_name="--n ")
    _, per, _, traj = _fresh_images(args, r, dataset, n, per_label_max=100, trajectory_every=every)
    if per is not None:  # one column per label: row j holds every label's j-th sample
        traj = traj[:, plot.label_columns(r.n_classes, per)]
    plot.write_denoising(traj, shape, out, columns=r.n_classes or min(10, n))


def _density(args, run_dir):
    import jax.numpy as jnp

    from .._errors import InputError
    from .. import plot

    r = _load(args, run_dir)
    dataset = r.dataset()
    target = dataset.target
    if target is None:
        raise InputError(
            f"the data of --run {run_dir} ({dataset.spec}) has no closed-form density; "
            "'target' needs an image or toy target"
        )
    lims, _ = _view(dataset)
    sigma = args.sigma
    img = _image(target)
    if sigma is None and (img is not None or not _has_density(target)):
        # A piecewise-constant image has a zero score inside each pixel: one pixel of
        # smoothing shows the field that sampling actually follows.
        sigma = 1.0 / max(img[0].shape) if img is not None else float(jnp.min(jnp.asarray(r.sigmas)))
    if sigma is None:
        logp, score, what = target.log_prob, target.score, "exact"
    else:
        s = float(sigma)
        logp = lambda x: target.smoothed_log_prob(x, s)  # noqa: E731
        score = lambda x: target.smoothed_score(x, s)  # noqa: E731
        what = f"smoothed by σ = {s:.3g}"
    fig = plot.density_and_score(logp, score, lims=lims, grid=120, arrows=15,
                                 title=f"log-density and score, {what}", cap=0.9 if img is not None else None)
    fig.suptitle(f"target of {dataset.spec}")
    return fig


def _has_density(target) -> bool:
    """Whether the target has a pointwise density (a grid of point masses has none)."""
    from ..targets import GridDensity

    return not (isinstance(target, GridDensity) and target.centres)


def _draw(r, n: int, args, *, trajectory_every: int | None):
    """n particles from the run's learned score with the run's own sampler (as
    `scorefield sample --run`), started from its prior N(data centre, sigma_max^2 I)."""

    from .. import samplers as S

    sampler, init = _sampler(r, args)
    from .._limits import check_sample_memory, sample_frames

    dim = int(r.dataset().dim)
    frames = sample_frames(sampler, trajectory_every)
    check_sample_memory(n, dim, frames, n_name="--n ")  # the frames are the figure's, not an option
    return S.sample(sampler, r.score_fn(ema=args.ema), seed_key(args.seed), n=n, dim=int(r.dataset().dim), init=init,
                    trajectory_every=trajectory_every)


def _sampler(r, args):
    """The run's own sampler; --steps-per-level applies where the recipe's sampler takes it."""
    from ..samplers import SAMPLERS

    takes = {o.name for o in SAMPLERS.options(r.config.sampler["name"])}
    overrides = {"steps_per_level": args.steps_per_level} if "steps_per_level" in takes else {}
    return r.sampler(**overrides)


def _sampler_name(sampler) -> str:
    return type(sampler).label


def _anneal(args, run_dir):
    import numpy as np

    from .. import plot

    r = _load(args, run_dir)
    dataset = r.dataset()
    n = args.n or 2000
    what = ""
    if int(dataset.dim) != 2:
        # D >= 3: every level's cloud on the data's first two principal axes, the data behind.

        data = np.asarray(dataset.sample(seed_key((args.seed + 1) % SEED_LIMIT, raw=True), 4000))
        mean, axes = plot.principal_axes(data, 2)
        project = lambda a: (np.asarray(a) - mean) @ axes  # noqa: E731
        lims, _ = _box(project(data))
        background, what = None, f", {int(dataset.dim)}-D on the data's principal axes PC1, PC2"
    else:
        project = np.asarray
        lims, background = _view(dataset)
    sampler, _ = _sampler(r, args)
    if sampler.n_levels > 1:  # one frame at the end of every level
        res = _draw(r, n, args, trajectory_every=sampler.steps_per_level)
        level = res.trajectory_index[:, 0]
        sig = np.asarray([sampler.level_sigma(lv) for lv in range(sampler.n_levels)])
        # The last frame stamped with each level is the cloud at the end of that level.
        frames = [res.trajectory[np.flatnonzero(level == lv)[-1]] for lv in range(sampler.n_levels)]
        labels, after = None, "after each noise level"
    else:  # one level across many sigmas (a few-step sampler) or one sigma: six points of it
        steps = sampler.steps_per_level
        res = _draw(r, n, args, trajectory_every=max(1, steps // 6))
        keep = [i for i, (lv, _) in enumerate(res.trajectory_index) if lv == 0]
        frames = [res.trajectory[i] for i in keep] + [res.samples]
        sig = np.asarray([sampler.frame_sigma(0, int(res.trajectory_index[i, 1])) or 0.0 for i in keep]
                         + [sampler.frame_sigma(0, steps - 1) or 0.0])
        labels = [f"step {int(res.trajectory_index[i, 1]) + 1} of {steps}: σ = {sg:.3g}" for i, sg in zip(keep, sig)]
        labels.append(f"samples: σ = {sig[-1]:.3g}")
        after = "along the sampler's steps"
    return plot.annealing_strip(
        np.stack([project(f) for f in frames]), sig, lims=lims, background=background, labels=labels,
        title=f"{run_dir.name}: {n:,} particles {after} ({_sampler_name(sampler)}{what})",
    )


def _animate(args, run_dir, out):

    from .. import plot

    r = _load(args, run_dir)
    lims, background = _view(r.dataset())
    n = args.n or 400
    sampler, _ = _sampler(r, args)
    total = sampler.n_levels * sampler.steps_per_level
    res = _draw(r, n, args, trajectory_every=max(1, total // 200))
    labels = [plot.frame_label(sampler, int(lv), int(t)) for lv, t in res.trajectory_index]
    plot.animate_particles(
        res.trajectory, out, background=background, lims=lims, fps=20, trail=0, labels=labels,
        title=f"{run_dir.name}: {_sampler_name(sampler)}, {n} particles",
    )


def _density_map(args, run_dir):
    from ._plot_density import draw

    return draw(args, run_dir, _load(args, run_dir))


_DRAW = {"field": _field, "samples": _samples, "target": _density, "density": _density_map, "anneal": _anneal,
         "nearest": _nearest}
