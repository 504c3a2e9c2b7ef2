"""KL(p || p_model) of the default recipe against training seconds, on the reference "5"
and other images, beside kl_floor (the KL of the best model stopped at the same sigma_min)
and the exact smoothed score through the same probability-flow ODE.

Each row trains the default preset (optionally with --set overrides) for the given number
of steps, then measures the likelihood on --n held-out exact draws: kl with its standard
error, the paired kl - kl_floor ("excess") and the floor; and samples --samples points with
the recipe's own sampler for hist_tv beside its iid floor (the issue's guard: hist_tv at
10,000 <= 0.055 and train + sample <= 60 s), with --big N a second, larger draw (the second
goal: within 1.3x the floor at 100,000), averaged over --big-draws sampling keys. Training
and sampling seconds are wall time, compile included, with the process's CPU seconds and
the load average beside them (on a shared machine the wall seconds are not idle figures).

    .venv/bin/python benchmarks/bench_likelihood.py                       # 3 images, the preset's steps
    .venv/bin/python benchmarks/bench_likelihood.py --steps 3000,12000 --n 2000
    .venv/bin/python benchmarks/bench_likelihood.py --images mnist --steps 300 --n 200   # a smoke run
    .venv/bin/python benchmarks/bench_likelihood.py --images mnist --no-exact --big 100000 --big-draws 3

Prints one JSON line per row and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import jax

from _util import machine
from scorefield import samplers as S
from scorefield.data import load
from scorefield.likelihood import evaluate_likelihood, kl_floor
from scorefield.metrics import hist_tv, hist_tv_floor
from scorefield.train import build_sampler, load_run, preset, resolve, train

IMAGES = "mnist,mnist:label=3,index=0,mnist:label=8,index=0"


def _specs(text: str) -> list[str]:
    """Split a comma list of specs, keeping 'label=3,index=0' options with their spec."""
    out: list[str] = []
    for part in text.split(","):
        if "=" in part and ":" not in part and out and ":" in out[-1]:
            out[-1] += "," + part
        elif part:
            out.append(part)
    return out


def _cpu() -> float:
    """CPU seconds of this process (user + system, all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _hist(run, dataset, n: int, key) -> dict:
    """hist_tv of n samples of the run's own sampler, its iid floor, wall and CPU seconds."""
    sampler, init = run.sampler()
    c = _cpu()
    res = S.sample(sampler, run.score_fn(), key, n=n, dim=run.config.dim, init=init)
    cpu = _cpu() - c
    tv = float(hist_tv(dataset.target, res.samples))
    floor = float(hist_tv_floor(dataset.target, n, key=jax.random.key(12345), repeats=32).mean)
    return dict(hist_tv=round(tv, 4), hist_floor=round(floor, 4), hist_ratio=round(tv / floor, 3),
                sample_s=round(res.wall_time, 1), sample_cpu=round(cpu, 1))


def _range(config) -> tuple[float, float, list[float]]:
    sampler, _ = build_sampler(config)
    return float(sampler.sigmas[-1]), float(config.sigma_max), [float(c) for c in config.centre]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=IMAGES, help=f"comma-separated data specs (default {IMAGES})")
    ap.add_argument("--steps", default="preset",
                    help="comma-separated training steps, one run each (default: the preset's own)")
    ap.add_argument("--n", type=int, default=2000, help="held-out exact draws per likelihood (default 2000)")
    ap.add_argument("--set", default="{}", help="JSON of config overrides of the default preset")
    ap.add_argument("--no-exact", action="store_true", help="skip the exact-score row of each image")
    ap.add_argument("--samples", type=int, default=10_000, help="samples for hist_tv (default 10000; 0 skips)")
    ap.add_argument("--big", type=int, default=0, help="also hist_tv of this many samples (e.g. 100000)")
    ap.add_argument("--big-draws", type=int, default=1,
                    help="independent sampling keys of the --big draw, averaged (one draw of one model scatters "
                         "about 0.13x of the floor: PC's step size couples its chains)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    overrides = json.loads(args.set)
    steps = ([int(preset("default", **overrides).steps)] if args.steps == "preset"
             else [int(s) for s in args.steps.split(",")])
    print(f"machine: {machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in _specs(args.images):
            dataset = load(spec)
            base = resolve(preset("default", data=spec, **overrides), dataset)
            smin, smax, centre = _range(base)
            t = time.perf_counter()
            floor = kl_floor(dataset.target, smin)
            print(f"{spec}: sigma {smin:.4g}..{smax:.4g}, kl_floor {floor.value:.4f} ({time.perf_counter() - t:.1f} s)")
            key = jax.random.key(args.seed)
            if not args.no_exact:
                r = evaluate_likelihood(dataset.target.smoothed_score, dataset, n=args.n, sigma_min=smin,
                                        sigma_max=smax, key=key, prior_centre=centre)
                rows.append(dict(data=spec, model="exact score", steps=0, train_s=0.0, **_pick(r)))
                print(json.dumps(rows[-1]), flush=True)
            for n_steps in steps:
                cfg = preset("default", data=spec, steps=n_steps, checkpoint_every=n_steps, **overrides)
                out = Path(tmp) / f"{spec.replace(':', '_').replace(',', '_')}-{n_steps}"
                load_avg = os.getloadavg()[0]
                t, c = time.perf_counter(), _cpu()
                train(cfg, out, dataset=dataset, progress=False)
                train_s, train_cpu = time.perf_counter() - t, _cpu() - c
                run = load_run(out)
                smin_r, smax_r, centre_r = _range(run.config)
                r = evaluate_likelihood(run.score_fn(), dataset, n=args.n, sigma_min=smin_r, sigma_max=smax_r,
                                        key=key, prior_centre=centre_r)
                row = dict(data=spec, model="default", steps=n_steps, train_s=round(train_s, 1),
                           train_cpu=round(train_cpu, 1), load=round(load_avg, 1), **_pick(r))
                if args.samples:
                    row.update(_hist(run, dataset, args.samples, jax.random.key(args.seed + 1)))
                if args.big:
                    draws = [_hist(run, dataset, args.big, jax.random.key(args.seed + 2 + 1000 * i))
                             for i in range(args.big_draws)]
                    big = {k: round(sum(d[k] for d in draws) / len(draws), 4) for k in draws[0]}
                    row.update({f"{k}_big": v for k, v in big.items()}, n_big=args.big)
                    if len(draws) > 1:
                        row["hist_ratio_big_draws"] = [d["hist_ratio"] for d in draws]
                rows.append(row)
                print(json.dumps(rows[-1]), flush=True)
    print()
    print("| data | model | steps | train s (CPU s, load) | kl | kl_floor | kl - floor | hist_tv (ratio) | sample s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        tr = f"{r['train_s']:.1f} ({r['train_cpu']:.0f}, {r['load']:.1f})" if "train_cpu" in r else "-"
        hist = f"{r['hist_tv']:.4f} ({r['hist_ratio']:.2f}x)" if "hist_tv" in r else "-"
        if "hist_tv_big" in r:
            hist += f"; {r['n_big']:,}: {r['hist_tv_big']:.4f} ({r['hist_ratio_big']:.2f}x)"
        print(f"| `{r['data']}` | {r['model']} | {r['steps'] or '-'} | {tr} | {r['kl']:.4f} ± {r['kl_se']:.4f} | "
              f"{r['kl_floor']:.4f} | {r['kl_excess']:.4f} ± {r['kl_excess_se']:.4f} | {hist} | "
              f"{r.get('sample_s', '-')} |")


def _pick(r: dict) -> dict:
    keys = ("sigma_min", "sigma_max", "n", "nll", "nll_se", "kl", "kl_se", "kl_floor", "kl_excess", "kl_excess_se",
            "prior_mismatch", "seconds")
    return {k: (round(r[k], 6) if isinstance(r[k], float) else r[k]) for k in keys if k in r}


if __name__ == "__main__":
    main()
