"""MNIST digits in pixel space (issue 13): Frechet distance (beside its floor), conditional
accuracy and memorisation fraction against training seconds.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_images.py [--size 28] [--preset images]
        [--steps N] [--evals 3] [--per-label 100] [--guidance 2] [--out DIR]

Trains one class-conditional run on `mnist-digits[:size=S]` with the given preset, and at
`--evals` points along training (the checkpoints it writes) draws `--per-label` samples of
every label with classifier-free guidance and the preset's image sampler, then prints one
line per point: training seconds (wall, and CPU: user + system of all threads), steps, Frechet distance and its floor, the fraction of
conditional samples the shipped classifier reads as the label asked for, and the fraction
of near-copies of training digits, and the load average then. The figures go to BENCHMARKS.md by hand, with the load
of the machine (timings under load are not idle figures).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import numpy as np

from scorefield.data import load, to_image_units
from scorefield.metrics import image_report
from scorefield.samplers import SAMPLERS
from scorefield.train import load_run, preset, sample_by_label, sampler_context, train


def conditional_samples(run, per_label: int, guidance: float, sampler_name: str, nfe: int, seed: int):
    """`per_label` samples of every label (N = 10 per_label, label-major) and their labels."""
    from scorefield.samplers import default_start

    context = sampler_context(run.config, model=run.ema_model)
    sampler = SAMPLERS.build(sampler_name, context, {"nfe": nfe})
    labels = list(range(run.n_classes))
    res = sample_by_label(run, sampler, [jax.random.PRNGKey(seed + label) for label in labels], labels=labels,
                          n=per_label, init=default_start(sampler, context), guidance=guidance)
    return (np.concatenate([to_image_units(r.samples) for r in res]),
            np.concatenate([np.full(per_label, label) for label in labels]))


def _cpu_s() -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    t = os.times()
    return t.user + t.system


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--preset", default="images")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--evals", type=int, default=3)
    p.add_argument("--per-label", type=int, default=100)
    p.add_argument("--guidance", type=float, default=1.5)
    p.add_argument("--sampler", default="heun")
    p.add_argument("--nfe", type=int, default=30)
    p.add_argument("--out", default="/tmp/bench_images")
    p.add_argument("--set", action="append", default=[], help="KEY=JSON config override")
    a = p.parse_args()
    spec = "mnist-digits" if a.size == 28 else f"mnist-digits:size={a.size}"
    over = {k: json.loads(v) for k, v in (s.split("=", 1) for s in a.set)}
    if a.steps:
        over["steps"] = a.steps
    cfg = preset(a.preset, data=spec, **over)
    cfg = cfg.replace(checkpoint_every=max(1, cfg.steps // a.evals))
    out = Path(a.out)
    data = load(spec)
    print(f"# {spec}, preset {a.preset}, {cfg.steps} steps, batch {cfg.batch_size}, net_options {cfg.net_options}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    print("train_s  train_cpu_s  step  frechet  floor  label_acc  memorised  sample_s  load", flush=True)
    points = [cfg.steps * (i + 1) // a.evals for i in range(a.evals)]
    t_train = c_train = 0.0
    for i, step in enumerate(points):
        t, c = time.perf_counter(), _cpu_s()
        train(cfg.replace(steps=step), out, resume=i > 0, dataset=data, progress=False)
        t_train += time.perf_counter() - t
        c_train += _cpu_s() - c
        run = load_run(out)
        t = time.perf_counter()
        x, y = conditional_samples(run, a.per_label, a.guidance, a.sampler, a.nfe, seed=i)
        t_s = time.perf_counter() - t
        acc = []
        r = image_report(x, data)
        for label in range(run.n_classes):
            acc.append(image_report(x[y == label], data, label=label)["label_accuracy"])
        np.save(out / f"samples_{step}.npy", x)
        print(f"{t_train:7.0f} {c_train:12.0f} {step:5d} {r['frechet']:8.3f} {r['frechet_floor']:6.3f} {np.mean(acc):9.3f} "
              f"{r['memorised_fraction']:9.3f} {t_s:9.0f} {os.getloadavg()[0]:5.1f}", flush=True)


if __name__ == "__main__":
    main()
