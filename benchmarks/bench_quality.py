"""Time to quality on the reference image: hist_tv of 10,000 samples as a function of
training wall time, for our default preset and for the seed recipe with the reference's own
sampler. Each budget is a separate run (the learning-rate schedule spans the whole run);
steps are set from a measured rate, and the training time reported is the measured one,
compile included. Sampling time is reported apart.

    .venv/bin/python benchmarks/bench_quality.py --recipe default --budgets 15,30,60
    .venv/bin/python benchmarks/bench_quality.py --recipe seed --budgets 60,300

Prints one JSON line per run and a table; --plot FILE draws hist_tv against seconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from _util import machine
from scorefield import samplers as S
from scorefield.data import load
from scorefield.metrics import hist_tv, hist_tv_floor
from scorefield.train import preset, train

N = 10_000


def rate(recipe: str, dataset, spec: str, workdir: Path, overrides: dict) -> float:
    """Steps per second after compilation: the time between the ends of the first and the
    last of four compiled calls of 100 steps."""
    marks = []
    cfg = preset(recipe, data=spec, steps=400, steps_per_call=100, checkpoint_every=400, **overrides)
    train(cfg, workdir / "rate", dataset=dataset, progress=False, on_chunk=lambda s, l: marks.append(time.perf_counter()))
    shutil.rmtree(workdir / "rate")
    return 300 / (marks[-1] - marks[0])


def sample_seed_style(run, n: int, key) -> tuple[np.ndarray, float]:
    """The reference's sampler: one Langevin chain at its level 17 (sigma ~ 0.0221), step
    1e-3, 400,000 steps from (0.5, 0.5); the chain thinned to n points."""
    steps = 400_000
    sampler = S.Langevin(0.022122, 1e-3, steps)
    res = S.sample(sampler, run.score_fn(), key, n=1, init=jnp.asarray([[0.5, 0.5]]), trajectory_every=steps // n)
    traj = res.trajectory[1 : n + 1, 0, :]
    return np.asarray(traj), res.wall_time


def synthetic_image(folder: Path, shape: str) -> Path:
    """A non-square grey image with thin strokes and soft blobs, written as PNG: 'wide' is
    40 x 64 (H x W), 'tall' is 64 x 36."""
    from PIL import Image

    h, w = (40, 64) if shape == "wide" else (64, 36)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    cx, cy = w / max(h, w) / 2, h / max(h, w) / 2
    r = np.hypot(xx - cx, yy - cy)
    img = np.exp(-((r - 0.3 * min(cx, cy) * 2) ** 2) / 0.0008)  # a ring
    img += 0.8 * np.exp(-((xx - 0.25 * cx) ** 2 + (yy - 0.4 * cy) ** 2) / 0.002)  # a blob, off-centre
    img[int(0.75 * h) : int(0.75 * h) + 2, int(0.1 * w) : int(0.9 * w)] = 1.0  # a bar near the bottom
    path = folder / f"{shape}.png"
    Image.fromarray(np.uint8(255 * np.clip(img, 0, 1))).save(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", choices=("default", "seed"), default="default")
    ap.add_argument("--data", default="mnist",
                    help="a data spec, or 'wide' / 'tall' for synthetic non-square images made here")
    ap.add_argument("--budgets", default="15,30,60",
                    help="training seconds, comma-separated; 'preset' runs the preset's own step count once")
    ap.add_argument("--set", default="{}", help="JSON of config overrides (for sweeps)")
    ap.add_argument("--plot", help="write a PNG of hist_tv against training seconds")
    args = ap.parse_args()
    overrides = json.loads(args.set)
    tmpdir = tempfile.mkdtemp()
    if args.data in ("wide", "tall"):
        args.data = f"image:{synthetic_image(Path(tmpdir), args.data)}"
    dataset = load(args.data)
    key = jax.random.PRNGKey(1)
    floor = hist_tv_floor(dataset.target, N, key=jax.random.PRNGKey(0))
    print(f"machine: {machine()}")
    print(f"data {args.data}: exact-sample floor of hist_tv at N={N}: {float(floor.mean):.4f} +- {float(floor.stderr):.4f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.budgets == "preset":
            budgets = [None]
        else:
            r = rate(args.recipe, dataset, args.data, work, overrides)
            print(f"{args.recipe}: {r:.1f} steps/s after compilation")
            budgets = [float(b) for b in args.budgets.split(",")]
        for budget in budgets:
            if budget is None:
                cfg = preset(args.recipe, data=args.data, **overrides)
                steps = cfg.steps
            else:
                steps = max(100, int(round(budget * r / 100.0)) * 100)
                cfg = preset(args.recipe, data=args.data, steps=steps, checkpoint_every=steps, **overrides)
            out = work / f"b{steps}"
            t = time.perf_counter()
            run = train(cfg, out, dataset=dataset, progress=False)
            t_train = time.perf_counter() - t
            if args.recipe == "seed":
                samples, t_samp = sample_seed_style(run, N, key)
                how = "1 chain x 400,000 Langevin steps at sigma 0.0221, thinned"
            else:
                sampler, init = run.sampler()
                res = S.sample(sampler, run.score_fn(), key, n=N, dim=run.config.dim, init=init)
                samples, t_samp = res.samples, res.wall_time
                how = f"{type(sampler).__name__}, {res.n_score_evals_per_sample:.0f} score evals/sample"
            tv = float(hist_tv(dataset.target, samples))
            row = dict(recipe=args.recipe, data=args.data, budget_s=budget, steps=steps, train_s=round(t_train, 1),
                       sample_s=round(t_samp, 1), total_s=round(t_train + t_samp, 1), hist_tv=round(tv, 4),
                       floor=round(float(floor.mean), 4), sampler=how, overrides=overrides)
            rows.append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(out)
    print()
    print("| training s | steps | hist_tv | floor | ratio to floor | sampling s | total s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r_ in rows:
        print(f"| {r_['train_s']} | {r_['steps']} | {r_['hist_tv']:.4f} | {r_['floor']:.4f} | "
              f"{r_['hist_tv'] / r_['floor']:.2f}x | {r_['sample_s']} | {r_['total_s']} |")
    if args.plot:
        from scorefield.plot import new_figure, save_figure

        fig = new_figure(figsize=(5, 3.5))
        ax = fig.add_subplot()
        ax.plot([r_["train_s"] for r_ in rows], [r_["hist_tv"] for r_ in rows], "o-", label=args.recipe)
        ax.axhline(float(floor.mean), color="k", ls="--", lw=1, label="exact-sample floor")
        ax.set_xlabel("training wall time (s)")
        ax.set_ylabel("hist_tv (10,000 samples)")
        ax.legend()
        save_figure(fig, args.plot)


if __name__ == "__main__":
    main()
