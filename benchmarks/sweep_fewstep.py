"""Sweep the few-step samplers' grid on the exact smoothed score of an image: sigma_min and
sigma_max (as multiples of the NCSNv2 sigma_max), the schedule/rho, heun's churn and the
start (the moment-matched prior or the plain VE prior), at a fixed sample count.

    .venv/bin/python benchmarks/sweep_fewstep.py --n 10000 --configs \\
        'heun:nfe=21,smin=0.01;dpm3m:nfe=20,smin=0.003,prior=plain;dpm2m:nfe=20,smin=0.003,schedule=log-uniform'

Each config is `sampler:key=value,...` (smin: sigma_min / sigma_max, default 0.01; smax:
sigma_max / the NCSNv2 sigma_max, default 1; prior: matched (default: `default_start`,
N(centre, sigma_max^2 I + the data's covariance) for the few-step samplers) or plain
(N(centre, sigma_max^2 I)); other keys are the sampler's options; sampler pc takes nfe and
runs nfe // 2 levels). Prints one JSON line per config: evaluations per sample, seconds
(wall and CPU), hist_tv and its ratio to the iid floor at N (`hist_tv_floor`, 32 repeats),
and at N >= 20,000 also the mean ratio at 10,000 over the N / 10,000 disjoint subsets (with
its standard error: the 10,000-sample figure without one draw's luck). All configs start
from the same key.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time

import jax
import numpy as np

from bench_nfe import exact_setup, make_sampler
from scorefield import samplers as S
from scorefield.metrics import hist_tv, hist_tv_floor


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
    data, score_fn, ctx = exact_setup(args.data, args.seed)
    key = jax.random.key(args.seed)
    floors = {n: float(hist_tv_floor(data.target, n, key=jax.random.fold_in(key, 7), repeats=32).mean)
              for n in {args.n, 10_000}}
    for spec in filter(None, (s.strip() for s in args.configs.split(";"))):
        name, opts = parse(spec)
        smax = float(opts.pop("smax", 1.0)) * ctx.sigma_max
        smin = float(opts.pop("smin", 0.01)) * ctx.sigma_max
        prior = opts.pop("prior", "matched")
        nfe = opts.pop("nfe")
        sampler = make_sampler(name, nfe, smax, smin, {name: opts})
        init = ctx.prior(smax) if prior == "plain" else S.default_start(
            sampler, dataclasses.replace(ctx, sigma_max=smax, sigma_min=smin))
        t, c = time.perf_counter(), os.times()
        res = S.sample(sampler, score_fn, key, n=args.n, dim=data.dim, init=init)
        c1 = os.times()
        x = np.asarray(res.samples)
        tv = float(hist_tv(data.target, x))
        row = dict(data=args.data, config=spec, evals_per_sample=res.n_score_evals_per_sample, n=args.n,
                   sigma_max=round(smax, 4), sigma_min=round(smin, 6), init=type(init).__name__,
                   hist_tv=round(tv, 5), floor=round(floors[args.n], 5), ratio=round(tv / floors[args.n], 3),
                   seconds=round(time.perf_counter() - t, 1), cpu_seconds=round(c1.user + c1.system - c.user - c.system, 1),
                   load=round(os.getloadavg()[0], 1))
        if args.n >= 20_000:
            r10 = [float(hist_tv(data.target, x[i:i + 10_000])) / floors[10_000] for i in range(0, args.n - 9_999, 10_000)]
            row.update(ratio_10k_mean=round(float(np.mean(r10)), 3),
                       ratio_10k_se=round(float(np.std(r10, ddof=1) / math.sqrt(len(r10))), 3))
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
