"""Sweep the few-step samplers' grid on the exact smoothed score of an image: sigma_min (as a
fraction of sigma_max), the schedule/rho and heun's churn, at a fixed sample count.

    .venv/bin/python benchmarks/sweep_fewstep.py --n 10000 --configs \
        'heun:nfe=21,smin=0.01;heun:nfe=21,smin=0.003;dpm2m:nfe=20,smin=0.003,schedule=log-uniform'

Each config is `sampler:key=value,...` (smin: sigma_min / sigma_max; other keys are the
sampler's options). Prints one JSON line per config: evaluations per sample, seconds,
hist_tv and its ratio to the iid floor at N (`hist_tv_floor`, 32 repeats). All configs
start from the same prior draws (same key).
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import jax.numpy as jnp

from bench_nfe import exact_setup
from scorefield import samplers as S
from scorefield.metrics import hist_tv, hist_tv_floor

CLASSES = {"euler": S.Euler, "heun": S.Heun, "dpm2m": S.DPMSolver2M}


def parse(spec: str):
    name, _, rest = spec.partition(":")
    opts = {}
    for kv in filter(None, rest.split(",")):
        k, v = kv.split("=")
        try:
            opts[k] = float(v) if "." in v or "e" in v else int(v)
        except ValueError:
            opts[k] = v
    return name.strip(), opts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="mnist")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--configs", required=True, help="';'-separated sampler:key=value,... specs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="append rows to this JSONL file")
    args = ap.parse_args()
    data, score_fn, smax, smin_ctx, centre = exact_setup(args.data, args.seed)
    key = jax.random.key(args.seed)
    floor = float(hist_tv_floor(data.target, args.n, key=jax.random.fold_in(key, 7), repeats=32).mean)
    for spec in filter(None, (s.strip() for s in args.configs.split(";"))):
        name, opts = parse(spec)
        frac = float(opts.pop("smin", 0.01))
        sampler = CLASSES[name](smax, frac * smax, **opts)
        init = S.GaussianInit(float(smax), jnp.asarray(centre, jnp.float32))
        res = S.sample(sampler, score_fn, key, n=args.n, dim=data.dim, init=init)
        tv = float(hist_tv(data.target, res.samples))
        row = dict(data=args.data, config=spec, evals_per_sample=res.n_score_evals_per_sample, n=args.n,
                   sigma_max=round(smax, 4), sigma_min=round(frac * smax, 6), hist_tv=round(tv, 5),
                   floor=round(floor, 5), ratio=round(tv / floor, 3), seconds=round(res.wall_time, 1),
                   load=round(os.getloadavg()[0], 1))
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
