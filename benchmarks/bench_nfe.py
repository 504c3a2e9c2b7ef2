"""Sample quality against score evaluations per sample: the few-step samplers (euler, heun,
dpm2m, dpm3m) and the predictor-corrector (pc, 2 evaluations per level) at several NFE.

Image data: hist_tv at each N (default 10,000 and 100,000) and its ratio to the iid floor
(`hist_tv_floor`, same N), with the exact smoothed score of the reference "5" and, unless
--exact-only, with the default trained model of the "5" and of two other images. Toy sets:
energy distance to exact iid draws of the same size, beside the same statistic between two
iid draws (its floor). Every row reports the evaluations per sample the runner counted.

    .venv/bin/python benchmarks/bench_nfe.py --quick                 # a reduced run that shows it works
    .venv/bin/python benchmarks/bench_nfe.py --exact-only --data mnist --n 10000,100000
    .venv/bin/python benchmarks/bench_nfe.py --plot docs/images/nfe.png --json nfe.jsonl

Prints one JSON line per row and a table of ratios to the floor.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from _util import machine
from scorefield import samplers as S
from scorefield.data import load
from scorefield.metrics import energy_distance, hist_tv, hist_tv_floor
from scorefield.noise import geometric

SAMPLERS = ("euler", "heun", "dpm2m", "dpm3m", "pc")
IMAGES = ("mnist", "mnist:label=7,index=3", "mnist:label=0,index=1")
TOYS = ("toy:8gaussians", "toy:ncsn-mixture")


def make_sampler(name: str, nfe: int, sigma_max: float, sigma_min: float, opts: dict):
    """The sampler `name` spending at most `nfe` evaluations per sample (pc: nfe // 2 levels
    of one corrector and one predictor step)."""
    if name == "pc":
        return S.PredictorCorrector(geometric(sigma_max, sigma_min, max(1, nfe // 2)), 1, 0.16)
    cls = S.SAMPLERS.get(name)
    return cls(sigma_max, sigma_min, max(nfe, cls.min_nfe), **opts.get(name, {}))


def run_rows(label, data, score_fn, ctx, args, opts, floors, key):
    """One row per sampler and NFE; every sampler starts where `default_start` puts it for
    the context `ctx` (the few-step samplers from the moment-matched prior where `ctx`
    knows the data's spread, pc from N(centre, sigma_max^2 I))."""
    rows = []
    n_max = max(args.n)
    sigma_max, sigma_min = ctx.sigma_max, ctx.sigma_min
    for name in args.samplers:
        for nfe in args.nfes:
            sampler = make_sampler(name, nfe, sigma_max, sigma_min, opts)
            init = S.default_start(sampler, ctx)
            t, c = time.perf_counter(), os.times()
            res = S.sample(sampler, score_fn, key, n=n_max, dim=data.dim, init=init)
            c1 = os.times()
            row = dict(source=label, data=data.spec, sampler=name, nfe_asked=nfe,
                       evals_per_sample=res.n_score_evals_per_sample, seconds=round(time.perf_counter() - t, 2),
                       cpu_seconds=round(c1.user + c1.system - c.user - c.system, 2),
                       load=round(os.getloadavg()[0], 1), sigma_max=sigma_max, sigma_min=sigma_min,
                       init=type(init).__name__)
            for n in args.n:
                x = res.samples[:n]
                if hasattr(data.target, "probs"):
                    tv = float(hist_tv(data.target, x))
                    row[f"hist_tv@{n}"] = tv
                    row[f"ratio@{n}"] = tv / floors[(data.spec, n)]
                else:
                    ref = np.asarray(data.sample(jax.random.fold_in(key, 99), n))
                    ed = float(energy_distance(jnp.asarray(x), jnp.asarray(ref)))
                    row[f"energy@{n}"] = ed
                    row[f"ratio@{n}"] = ed / floors[(data.spec, n)]
            print(json.dumps(row), flush=True)
            if args.json:  # appended row by row, so an interrupted run keeps what it measured
                with open(args.json, "a") as f:
                    f.write(json.dumps(row) + "\n")
            rows.append(row)
    return rows


def floors_of(data, ns, key):
    out = {}
    for n in ns:
        if hasattr(data.target, "probs"):
            out[(data.spec, n)] = float(hist_tv_floor(data.target, n, key=key, repeats=32).mean)
        else:  # energy distance between two independent iid draws of size n, mean of 4
            vals = [float(energy_distance(data.sample(jax.random.fold_in(key, 2 * i), n),
                                          data.sample(jax.random.fold_in(key, 2 * i + 1), n))) for i in range(4)]
            out[(data.spec, n)] = float(np.mean(vals))
    return out


def exact_setup(spec: str, seed: int, sigma_min_ratio: float = 0.01):
    """The CLI's --exact defaults (`SamplerContext.from_points`): sigma_max by NCSNv2's rule,
    sigma_min `sigma_min_ratio` of it (default 1%), centre the data mean, spread their
    covariance."""
    data = load(spec)
    x = np.asarray(data.sample(jax.random.key(seed ^ 0x5EED), 4096), np.float64)
    ctx = S.SamplerContext.from_points(x)
    ctx = dataclasses.replace(ctx, sigma_min=sigma_min_ratio * ctx.sigma_max)
    return data, data.target.smoothed_score, ctx


def trained_setup(spec: str, steps: int | None, workdir: Path):
    from scorefield.train import load_run, preset, sampler_context, train

    overrides = {} if steps is None else dict(steps=steps, checkpoint_every=steps, steps_per_call=min(500, steps))
    out = workdir / spec.replace(":", "_").replace(",", "_").replace("=", "")
    t = time.perf_counter()
    train(preset("default", data=spec, **overrides), out, progress=False)
    print(json.dumps(dict(trained=spec, steps=steps or "preset", seconds=round(time.perf_counter() - t, 1))), flush=True)
    run = load_run(out)
    ctx = sampler_context(run.config, recipe=True)  # the recipe's grid and spread
    return run.dataset(), run.score_fn(ema=True), ctx


def run_setup(run_dir: str):
    """An existing run directory (e.g. a default-preset run of the "5"), read as trained_setup
    reads the one it trains."""
    from scorefield.train import load_run, sampler_context

    run = load_run(run_dir)
    return run.dataset(), run.score_fn(ema=True), sampler_context(run.config, recipe=True)


def table(rows, ns):
    keys = sorted({(r["source"], r["data"]) for r in rows})
    lines = []
    for src, spec in keys:
        sub = [r for r in rows if (r["source"], r["data"]) == (src, spec)]
        nfes = sorted({r["nfe_asked"] for r in sub})
        for n in ns:
            lines.append(f"\n{src} {spec}, ratio to the floor at N={n} (evaluations per sample in brackets)")
            lines.append("| sampler | " + " | ".join(f"NFE {k}" for k in nfes) + " |")
            lines.append("| --- |" + " --- |" * len(nfes))
            for name in dict.fromkeys(r["sampler"] for r in sub):
                cells = []
                for k in nfes:
                    r = next((r for r in sub if r["sampler"] == name and r["nfe_asked"] == k), None)
                    cells.append("" if r is None or f"ratio@{n}" not in r else f"{r[f'ratio@{n}']:.3f}x ({r['evals_per_sample']:g})")
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows, ns, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["source"], r["data"]) for r in rows})
    fig, axes = plt.subplots(len(ns), len(groups), figsize=(4 * len(groups), 3.3 * len(ns)), squeeze=False)
    for j, (src, spec) in enumerate(groups):
        for i, n in enumerate(ns):
            ax = axes[i, j]
            for name in SAMPLERS:
                sub = sorted((r for r in rows if (r["source"], r["data"], r["sampler"]) == (src, spec, name)),
                             key=lambda r: r["evals_per_sample"])
                if sub:
                    ax.plot([r["evals_per_sample"] for r in sub], [r[f"ratio@{n}"] for r in sub], "o-", label=name)
            ax.axhline(1.0, color="k", lw=0.8, ls=":")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{src} {spec}, N={n}", fontsize=9)
            ax.set_xlabel("score evaluations per sample")
            ax.set_ylabel("metric / iid floor")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="reduced size: N=2000,10000, NFE 10,20,40, trained models of 300 steps, toys at N=1000")
    ap.add_argument("--n", default="10000,100000", help="sample counts, comma-separated")
    ap.add_argument("--nfes", default="10,20,40,80,200")
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--data", default=",".join(IMAGES), help="image data specs (exact and trained rows)")
    ap.add_argument("--toys", default=",".join(TOYS), help="toy data specs (exact score, energy distance)")
    ap.add_argument("--toy-n", default="2000", help="sample counts for the toys (energy distance is O(N^2))")
    ap.add_argument("--exact-only", action="store_true", help="no trained models")
    ap.add_argument("--run", help="trained rows from this run directory only (no exact, toy or training rows)")
    ap.add_argument("--train-steps", type=int, help="training steps of the default preset (default: the preset's)")
    ap.add_argument("--heun", default="{}", help="JSON of heun options (e.g. '{\"churn\": 10}')")
    ap.add_argument("--dpm2m", default="{}", help="JSON of dpm2m options (e.g. '{\"schedule\": \"log-uniform\"}')")
    ap.add_argument("--euler", default="{}")
    ap.add_argument("--dpm3m", default="{}")
    ap.add_argument("--exact-sigma-min-ratio", type=float, default=0.01,
                    help="exact rows: sigma_min as a fraction of sigma_max (default 1%%, the --exact default)")
    ap.add_argument("--json", help="append rows to this JSONL file")
    ap.add_argument("--plot", help="write the quality-vs-evaluations figure (PNG)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.quick:
        args.n, args.nfes, args.train_steps, args.toy_n = "2000,10000", "10,20,40", args.train_steps or 300, "1000"
    args.n = [int(v) for v in args.n.split(",")]
    args.nfes = [int(v) for v in args.nfes.split(",")]
    args.samplers = args.samplers.split(",")
    toy_n = [int(v) for v in args.toy_n.split(",")]
    opts = {k: json.loads(getattr(args, k)) for k in ("heun", "dpm2m", "dpm3m", "euler")}
    print(f"# {machine()}; samplers {args.samplers}, NFE {args.nfes}, N {args.n}; options {opts}")
    key = jax.random.key(args.seed)
    rows = []
    if args.run:
        data, score_fn, ctx = run_setup(args.run)
        floors = floors_of(data, args.n, jax.random.fold_in(key, 1))
        rows += run_rows("trained", data, score_fn, ctx, args, opts, floors, key)
        args.data, args.toys, args.exact_only = "", "", True
    for spec in [s for s in args.data.split(",") if s]:
        data, score_fn, ctx = exact_setup(spec, args.seed, args.exact_sigma_min_ratio)
        floors = floors_of(data, args.n, jax.random.fold_in(key, 1))
        rows += run_rows("exact", data, score_fn, ctx, args, opts, floors, key)
    toy_args = argparse.Namespace(**{**vars(args), "n": toy_n})
    for spec in [s for s in args.toys.split(",") if s]:
        data, score_fn, ctx = exact_setup(spec, args.seed, args.exact_sigma_min_ratio)
        floors = floors_of(data, toy_n, jax.random.fold_in(key, 1))
        rows += run_rows("exact", data, score_fn, ctx, toy_args, opts, floors, key)
    if not args.exact_only:
        with tempfile.TemporaryDirectory() as tmp:
            for spec in [s for s in args.data.split(",") if s]:
                data, score_fn, ctx = trained_setup(spec, args.train_steps, Path(tmp))
                floors = floors_of(data, args.n, jax.random.fold_in(key, 1))
                rows += run_rows("trained", data, score_fn, ctx, args, opts, floors, key)
    print(table([r for r in rows if any(k.startswith("hist_tv") for k in r)], args.n))
    toys = [r for r in rows if any(k.startswith("energy") for k in r)]
    if toys:  # a --run on a toy set measured at --n, the exact toys at --toy-n
        print(table(toys, sorted({int(k.split("@")[1]) for r in toys for k in r if k.startswith("energy@")})))
    if args.plot:
        plot([r for r in rows if any(k.startswith("hist_tv") for k in r)], args.n, args.plot)


if __name__ == "__main__":
    main()
