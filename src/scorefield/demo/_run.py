"""`run_demo`: the whole walkthrough into one directory, with index.html and metrics.json."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .._fs import ensure_writable_dir, write_atomic
from .._errors import InputError, ScorefieldError
from .._seed import seed_key
from ._settings import DemoSettings

MARKER = ".scorefield-demo"
OLD_RUN = ".run-old"
METRICS = "metrics.json"
INDEX = "index.html"
FORMAT_VERSION = 1

STEPS = (
    (1, "closed-form mixture: log-density level sets and exact score"),
    (2, "Langevin with the exact score: one particle, then many"),
    (3, 'the MNIST "5" as a distribution, with exact samples'),
    (4, "train a score model on it"),
    (5, "the loss curve"),
    (6, "the learned vector field at nine noise levels"),
    (7, "sample the learned score with many particles"),
    (8, "the learned density beside the target (probability-flow ODE)"),
)
IMAGE_STEP = (9, "optional (--images): MNIST digits generated in pixel space by a quick class-conditional U-Net")


@dataclass(frozen=True)
class DemoResult:
    """What `run_demo` wrote.

    Attributes:
        out: the demo directory.
        index: path of index.html.
        files: every file written, relative to `out` (the run directory's files excluded).
        metrics: the content of metrics.json.
    """

    out: Path
    index: Path
    files: tuple[str, ...]
    metrics: dict[str, Any]


def prepare_out(out: str | Path) -> Path:
    """Make `out` ready for a demo: created if missing, writable, and not holding a run that
    a demo did not write. Files of a previous demo are replaced as the new ones are written;
    its run/ is kept until the new demo has finished (then replaced, see _install_run), so
    an interrupted rerun loses nothing. Other files are left alone.

    Raises:
        InputError when `out` is a file, cannot be written, or its run/ is someone else's.
    """
    out = Path(out)
    ensure_writable_dir(out)
    run = out / "run"
    if run.exists():
        if not (out / MARKER).is_file():
            raise InputError(
                f"out={out} already has a run/ that the demo did not write; "
                "give another out directory (the demo never overwrites other work)"
            )
    old = out / OLD_RUN
    if (out / MARKER).is_file() and old.is_dir() and not old.is_symlink():
        if not run.exists():  # a swap was interrupted between its two renames: put the old run back
            os.replace(old, run)
        else:
            shutil.rmtree(old)
    (out / MARKER).write_text("This directory was written by 'scorefield demo'; it may replace its own files here.\n")
    return out


def run_demo(
    out: str | Path = "demo-out",
    settings: DemoSettings | None = None,
    *,
    seed: int = 0,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the reference walkthrough (SPEC section 2, seven steps, our fixes applied; an eighth draws the learned density) and write
    every figure, animation, the trained run, the samples, metrics.json and index.html.

    Arguments:
        out: demo directory; created if needed. A previous demo's files there are replaced
            (its run/ included); other files are left alone; a run/ the demo did not write
            is refused.
        settings: sizes; `DemoSettings.full()` (default) or `DemoSettings.fast()`.
        seed: seeds every random draw (training, Langevin, exact and learned samples).
        progress: progress bars of training and sampling on stderr; default when stderr is
            a terminal.
        log: called with one line at the start of every step (e.g. print to stderr); None:
            silent.
    Returns:
        a `DemoResult`.
    Raises:
        InputError for an unusable `out`; ScorefieldError subclasses from the steps
        (e.g. DivergenceError).
    """
    import jax

    from . import _html, _steps

    settings = DemoSettings.full() if settings is None else settings
    progress = sys.stderr.isatty() if progress is None else bool(progress)
    say = log or (lambda _line: None)
    out = prepare_out(out)
    ctx = _steps.Context(out, settings, seed_key(seed), progress)
    ctx.metrics["seed"] = int(seed)
    wall: dict[str, float] = {}
    t_start = time.perf_counter()

    steps = STEPS + ((IMAGE_STEP,) if settings.images else ())

    def timed(number: int, fn, *args, **kw):
        title = dict(steps)[number]
        say(f"[{number}/{len(steps)}] {title}")
        t0 = time.perf_counter()
        result = fn(*args, **kw)
        wall[f"step{number}"] = round(time.perf_counter() - t0, 3)
        say(f"      step {number} took {wall[f'step{number}']:.1f} s ({time.perf_counter() - t_start:.1f} s so far)")
        return result

    target = timed(1, _steps.step1_mixture, ctx)
    timed(2, _steps.step2_langevin, ctx, target)
    dataset = timed(3, _steps.step3_image, ctx)
    run = timed(4, _steps.step45_train, ctx, dataset, log=lambda line: say(f"      {line}"))
    # step 5 (the loss figure) is drawn by the training step: record it under 4-5
    wall["step4_5"] = wall.pop("step4")
    say(f"[5/{len(steps)}] {dict(steps)[5]} (drawn)")
    timed(6, _steps.step6_field, ctx, run, dataset)
    timed(7, _steps.step7_sample, ctx, run, dataset)
    timed(8, _steps.step8_density, ctx, run, dataset)
    if settings.images:
        timed(9, _steps.step9_images, ctx, log=lambda line: say(f"      {line}"))
    wall["total"] = round(time.perf_counter() - t_start, 3)

    import scorefield

    metrics = {
        "scorefield_demo": FORMAT_VERSION,
        "scorefield_version": scorefield.__version__,
        "fast": settings.preset == "fast",
        "hist_tv": ctx.metrics.pop("hist_tv"),
        "hist_tv_floor": ctx.metrics.pop("hist_tv_floor"),
        **ctx.metrics,
        "wall_s": wall,
        "devices": [str(d) for d in jax.local_devices()],
    }
    _write_atomic(out / METRICS, json.dumps(metrics, indent=2) + "\n")
    ctx.data(0, METRICS, "Metrics", "hist_tv and its floor, the mode weights of step 2, training steps and "
             "time, the sampler's cost, and the wall time of every step, as JSON.")
    _write_atomic(out / INDEX, _html.render(ctx.artifacts, metrics, settings))
    _install_run(out)
    files = tuple(a.file for a in ctx.artifacts if not a.file.startswith(("run/", "images_run/"))) + (INDEX,)
    return DemoResult(out, out / INDEX, files, metrics)


def _install_run(out: Path) -> None:
    """The new run (trained in .run-new) replaces run/: the old one is renamed aside, the new
    one renamed in, then the old one removed. A kill between the renames leaves .run-old,
    which prepare_out puts back."""
    from ._steps import NEW_RUN_DIR, RUN_DIR

    new, run, old = out / NEW_RUN_DIR, out / RUN_DIR, out / OLD_RUN
    if old.exists():
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    try:
        if run.is_symlink() or run.is_file():
            run.unlink()
        elif run.exists():
            os.replace(run, old)
        os.replace(new, run)
    except OSError as e:
        raise ScorefieldError(f"could not move the new run into {run} ({e.strerror or type(e).__name__}); it is in "
                              f"{new}") from None
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    try:
        write_atomic(path, text)
    except OSError as e:
        raise ScorefieldError(f"could not write {path} ({e.strerror or type(e).__name__}); check the disk") from None
