"""KL(p || p_model) of the default recipe against training seconds, on the reference "5"
and other images, beside kl_floor (the KL of the best model stopped at the same sigma_min)
and the exact smoothed score through the same probability-flow ODE.

Each row trains the default preset (optionally with --set overrides) for the given number
of steps, then measures the likelihood on --n held-out exact draws: kl with its standard
error, the paired kl - kl_floor ("excess") and the floor. Training seconds are measured,
compile included.

    .venv/bin/python benchmarks/bench_likelihood.py                       # 3 images, 12,000 steps
    .venv/bin/python benchmarks/bench_likelihood.py --steps 3000,12000 --n 2000
    .venv/bin/python benchmarks/bench_likelihood.py --images mnist --steps 300 --n 200   # a smoke run

Prints one JSON line per row and a table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import jax

from _util import machine
from scorefield.data import load
from scorefield.likelihood import evaluate_likelihood, kl_floor
from scorefield.train import build_sampler, load_run, preset, resolve, train

IMAGES = "mnist,mnist:label=3,index=0,mnist:label=8,index=0"


def _specs(text: str) -> list[str]:
    """Split a comma list of specs, keeping 'label=3,index=0' options with their spec."""
    out: list[str] = []
    for part in text.split(","):
        if "=" in part and out and ":" in out[-1]:
            out[-1] += "," + part
        elif part:
            out.append(part)
    return out


def _range(config) -> tuple[float, float, list[float]]:
    sampler, _ = build_sampler(config)
    return float(sampler.sigmas[-1]), float(config.sigma_max), [float(c) for c in config.centre]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=IMAGES, help=f"comma-separated data specs (default {IMAGES})")
    ap.add_argument("--steps", default="12000", help="comma-separated training steps, one run each (default 12000)")
    ap.add_argument("--n", type=int, default=2000, help="held-out exact draws per likelihood (default 2000)")
    ap.add_argument("--set", default="{}", help="JSON of config overrides of the default preset")
    ap.add_argument("--no-exact", action="store_true", help="skip the exact-score row of each image")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    overrides = json.loads(args.set)
    steps = [int(s) for s in args.steps.split(",")]
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
                t = time.perf_counter()
                train(cfg, out, dataset=dataset, progress=False)
                train_s = time.perf_counter() - t
                run = load_run(out)
                smin_r, smax_r, centre_r = _range(run.config)
                r = evaluate_likelihood(run.score_fn(), dataset, n=args.n, sigma_min=smin_r, sigma_max=smax_r,
                                        key=key, prior_centre=centre_r)
                rows.append(dict(data=spec, model="default", steps=n_steps, train_s=round(train_s, 1), **_pick(r)))
                print(json.dumps(rows[-1]), flush=True)
    print()
    print(f"{'data':<24} {'model':<12} {'steps':>6} {'train s':>8} {'kl':>16} {'kl_floor':>9} "
          f"{'kl - floor':>17} {'nll':>8} {'eval s':>7}")
    for r in rows:
        print(f"{r['data']:<24} {r['model']:<12} {r['steps']:>6} {r['train_s']:>8.1f} "
              f"{r['kl']:>8.4f} ± {r['kl_se']:.4f} {r['kl_floor']:>9.4f} {r['kl_excess']:>8.4f} ± {r['kl_excess_se']:.4f} "
              f"{r['nll']:>8.3f} {r['seconds']:>7.1f}")


def _pick(r: dict) -> dict:
    keys = ("sigma_min", "sigma_max", "n", "nll", "nll_se", "kl", "kl_se", "kl_floor", "kl_excess", "kl_excess_se",
            "prior_mismatch", "seconds")
    return {k: (round(r[k], 6) if isinstance(r[k], float) else r[k]) for k in keys if k in r}


if __name__ == "__main__":
    main()
