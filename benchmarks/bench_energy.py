"""Energy-parameterised models (net = "energy") against score networks, on the reference "5"
and the NCSN mixture.

On `mnist` (the reference "5"): the default recipe with net = "energy" and with its score
network (net = "auto", the feature grid in 2-D), each trained for the same wall-clock budget
(steps from each network's measured rate); then on the energy model MALA at the smallest
level, annealed MALA over the levels, and PC (the recipe's sampler), on the score network PC;
hist_tv of N samples against the exact-sample floor, with acceptance, evaluations per sample
and seconds. On `toy:ncsn-mixture`: annealed MALA on a trained energy model from uniform
[-8, 8]^2, and the weight of the (5, 5) mode (exact 0.8).

    .venv/bin/python benchmarks/bench_energy.py --budget 60 --n 10000
    .venv/bin/python benchmarks/bench_energy.py --budget 60 --n 10000 --mala-steps 500 --mixture-steps 0   # BENCHMARKS.md 7
    .venv/bin/python benchmarks/bench_energy.py --budget 20 --n 4000 --mixture-steps 1500   # modest
    .venv/bin/python benchmarks/bench_energy.py --budget 60 --n 10000 --mala-steps 500 --mixture-steps 0 --seeds 3
    .venv/bin/python benchmarks/bench_energy.py --budget 60 --n 10000 --mala-steps 500 --mixture-steps 0 \
        --set '{"pixel_table": 4, "pixel_table_nll": 1.0}'

Prints one JSON line per row, then a table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from _util import machine
from scorefield import samplers as S
from scorefield.data import load
from scorefield.metrics import hist_tv, hist_tv_floor
from scorefield.train import preset, sampler_context, train


def rate(dataset, spec: str, workdir: Path, overrides: dict, steps: int = 1000) -> float:
    """Steps per second of the default recipe after compilation: between the ends of the
    first and last of its compiled calls, in the recipe's own calls (`steps_per_call`, with
    their host round trips: a probe in longer calls read the score network 1.4x faster than
    its training then ran)."""
    marks = []
    cfg = preset("default", data=spec, steps=steps, checkpoint_every=steps, **overrides)
    train(cfg, workdir / "rate", dataset=dataset, progress=False, on_chunk=lambda s, l: marks.append((s, time.perf_counter())))
    shutil.rmtree(workdir / "rate")
    (s0, t0), (s1, t1) = marks[0], marks[-1]
    return (s1 - s0) / (t1 - t0)


def energy_context(run):
    context = sampler_context(run.config, recipe=True)
    model = run.ema_model
    import dataclasses

    return dataclasses.replace(context, log_density=lambda s: (lambda x: model.log_prob(x, s)))


def draw(run, sampler, key, n, *, init=None):
    """(samples, SampleResult) of `sampler` on a run: the energy's log-density for Metropolis
    samplers, the score otherwise."""
    model = run.ema_model
    log_prob = None
    if isinstance(sampler, S.AbstractLogDensitySampler):
        log_prob = model.log_prob if sampler.smoothed else (lambda x: model.log_prob(x, sampler.level_sigma(0)))
    ctx = sampler_context(run.config, recipe=True)
    init = init if init is not None else S.default_start(sampler, ctx)
    res = S.sample(sampler, run.score_fn(), key, n=n, dim=run.config.dim, init=init, log_prob=log_prob)
    return res.samples, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0, help="training seconds per network on the '5'")
    ap.add_argument("--n", type=int, default=10_000, help="samples per row")
    ap.add_argument("--mala-steps", type=int, default=2000, help="MALA steps at the smallest level")
    ap.add_argument("--amala-levels", type=int, default=100, help="annealed MALA: levels")
    ap.add_argument("--amala-steps", type=int, default=10, help="annealed MALA: steps per level")
    ap.add_argument("--mixture-steps", type=int, default=3000, help="training steps on toy:ncsn-mixture (0: skip)")
    ap.add_argument("--seeds", type=int, default=1, help="training seeds of the PC comparison (seed 0 also gets "
                    "the Metropolis rows; each further seed trains both networks for seed 0's steps)")
    ap.add_argument("--set", default="{}", help="JSON config overrides for both networks, e.g. "
                    "'{\"pixel_table\": 4, \"pixel_table_nll\": 1.0}'")
    args = ap.parse_args()
    extra = json.loads(args.set)
    print(f"machine: {machine()}")
    rows = []

    def emit(**row):
        rows.append(row)
        print(json.dumps(row), flush=True)

    key = jax.random.PRNGKey(1)
    data = load("mnist")
    floor = hist_tv_floor(data.target, args.n, key=jax.random.PRNGKey(0))
    print(f"mnist: exact-sample floor of hist_tv at N={args.n}: {float(floor.mean):.4f} +- {float(floor.stderr):.4f}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runs = {}
        for net in ("auto", "energy"):
            r = rate(data, "mnist", work, dict(net=net, **extra))
            steps = max(100, int(round(args.budget * r / 100.0)) * 100)
            cfg = preset("default", data="mnist", net=net, steps=steps, checkpoint_every=steps, **extra)
            t = time.perf_counter()
            runs[net] = train(cfg, work / net, dataset=data, progress=False)
            train_s = time.perf_counter() - t
            emit(what="train", net=net, steps_per_s=round(r, 1), steps=steps, train_s=round(train_s, 1))
        rates = {row["net"]: row["steps_per_s"] for row in rows if row["what"] == "train"}
        emit(what="training speed", ratio_score_over_energy=round(rates["auto"] / rates["energy"], 2))

        def quality(net, label, sampler, init=None):
            x, res = draw(runs[net], sampler, key, args.n, init=init)
            acc = res.acceptance
            emit(what="sample", net=net, sampler=label, hist_tv=round(float(hist_tv(data.target, x)), 4),
                 floor=round(float(floor.mean), 4), ratio=round(float(hist_tv(data.target, x)) / float(floor.mean), 2),
                 evals_per_sample=round(res.n_score_evals_per_sample, 1), sample_s=round(res.wall_time, 1),
                 acceptance=None if acc is None else [round(float(a), 3) for a in
                                                      (acc if len(acc) <= 10 else acc[[0, len(acc) // 2, -1]])],
                 acceptance_min=None if acc is None else round(float(np.min(acc)), 3))
            return x

        e = runs["energy"]
        ctx = energy_context(e)
        x_pc = {}
        for net in ("auto", "energy"):
            sampler, init = runs[net].sampler()
            x_pc[net] = quality(net, "pc (recipe)", sampler, init)
        amala = S.SAMPLERS.build("amala", ctx, dict(levels=args.amala_levels, steps_per_level=args.amala_steps))
        x_amala = quality("energy", f"amala {args.amala_levels}x{args.amala_steps}", amala)
        # MALA at the smallest level (its step adapted per chain in the first half of the
        # steps, the CLI's default), started (a) from the prior N(centre, sigma_max^2 I), (b)
        # from annealed MALA's samples, (c) from PC's: MALA alone at sigma_min against MALA as a
        # Metropolis-corrected finish. (BENCHMARKS.md section 7's rows used the fixed step
        # 0.5 sigma_min^2.)
        sigma_min = float(ctx.sigma_min)
        mala = S.SAMPLERS.build("mala", ctx, dict(sigma=sigma_min, steps=args.mala_steps))
        quality("energy", f"mala sigma_min={sigma_min:.3g} x{args.mala_steps} from the prior", mala,
                init=ctx.prior(ctx.sigma_max))
        quality("energy", f"mala sigma_min={sigma_min:.3g} x{args.mala_steps} from the amala samples", mala,
                init=np.asarray(x_amala))
        quality("energy", f"mala sigma_min={sigma_min:.3g} x{args.mala_steps} from the pc samples", mala,
                init=np.asarray(x_pc["energy"]))

        if args.seeds > 1:
            steps_of = {row["net"]: row["steps"] for row in rows if row["what"] == "train"}
            pcs = {net: [float(hist_tv(data.target, x_pc[net]))] for net in ("auto", "energy")}
            for seed in range(1, args.seeds):
                for net in ("auto", "energy"):
                    cfg = preset("default", data="mnist", net=net, steps=steps_of[net], checkpoint_every=steps_of[net],
                                 seed=seed, **extra)
                    run = train(cfg, work / f"{net}-{seed}", dataset=data, progress=False)
                    sampler, init = run.sampler()
                    x, _ = draw(run, sampler, key, args.n, init=init)
                    pcs[net].append(float(hist_tv(data.target, x)))
                    emit(what="seed", net=net, seed=seed, steps=steps_of[net], hist_tv=round(pcs[net][-1], 4))
                    shutil.rmtree(work / f"{net}-{seed}")
            paired = [e / s for s, e in zip(pcs["auto"], pcs["energy"])]
            emit(what="pc over seeds", seeds=args.seeds, score_mean=round(float(np.mean(pcs["auto"])), 4),
                 energy_mean=round(float(np.mean(pcs["energy"])), 4),
                 energy_over_score=round(float(np.mean(pcs["energy"]) / np.mean(pcs["auto"])), 3),
                 paired_ratios=[round(r, 3) for r in paired])

        if args.mixture_steps:
            mix = load("toy:ncsn-mixture")
            cfg = preset("default", data="toy:ncsn-mixture", net="energy", steps=args.mixture_steps,
                         checkpoint_every=args.mixture_steps)
            t = time.perf_counter()
            run = train(cfg, work / "mixture", dataset=mix, progress=False)
            train_s = time.perf_counter() - t
            mctx = energy_context(run)
            for levels, steps in ((10, 10), (10, 100)):
                sam = S.SAMPLERS.build("amala", mctx, dict(levels=levels, steps_per_level=steps))
                x, res = draw(run, sam, key, args.n, init=S.UniformInit(-8.0, 8.0))
                w = float(np.mean(np.asarray(x).sum(1) > 0))
                emit(what="ncsn mixture", train_steps=args.mixture_steps, train_s=round(train_s, 1),
                     sampler=f"amala {levels}x{steps} from uniform[-8,8]", weight_55=round(w, 4), exact=0.8,
                     stderr=round(float(np.sqrt(0.16 / args.n)), 4), acceptance_min=round(float(np.min(res.acceptance)), 3),
                     evals_per_sample=round(res.n_score_evals_per_sample, 1), sample_s=round(res.wall_time, 1))
    print()
    print("| net | sampler | hist_tv | floor | ratio | evals/sample | acceptance (first, mid, last level) | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["what"] == "sample":
            print(f"| {r['net']} | {r['sampler']} | {r['hist_tv']} | {r['floor']} | {r['ratio']}x | "
                  f"{r['evals_per_sample']} | {r['acceptance']} | {r['sample_s']} |")


if __name__ == "__main__":
    main()
