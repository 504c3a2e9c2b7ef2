"""scorefield info: summarise a run directory."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from ._common import formatter

    p = sub.add_parser(
        "info",
        help="summarise a run (config, steps, last loss, checkpoint, data)",
        description="Print what a run directory holds: its data, network, model kind (energy: with a log-density, or score), objective, noise levels, steps done, last loss and checkpoint.",
        epilog="example:\n  scorefield info --run runs/five",
        formatter_class=formatter,
    )
    p.add_argument("--run", metavar="RUN", required=True, help="run directory written by 'scorefield train'")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..train import load_run

    r = load_run(args.run)
    c = r.config
    m = r.metrics()
    n_params = sum(int(a.size) for a in _arrays(r.model))
    info = {
        "run": str(r.path),
        "data": c.data,
        "dim": c.dim,
        "net": c.net,
        # an energy network has a log-density (Metropolis samplers apply); others give a score only
        "model": "energy" if hasattr(r.model, "log_prob") else "score",
        "parameters": n_params,
        "objective": c.objective,
        "levels": c.levels,
        "sigma_max": c.sigma_max,
        "sigma_min": c.sigma_min,
        "n_levels": c.n_levels,
        "steps_done": r.step,
        "steps_total": c.steps,
        "batch_size": c.batch_size,
        "lr": c.lr,
        "ema_decay": c.ema_decay,
        "last_loss": m[-1]["loss"] if m else None,
        "wall_seconds": r.checkpoint.get("wall"),
        "checkpoint": r.checkpoint.get("file"),
    }
    if args.json:
        print(json.dumps(info))
        return 0
    width = max(len(k) for k in info)
    for k, v in info.items():
        if isinstance(v, float):
            v = f"{v:.6g}"
        print(f"{k:<{width}}  {v}")
    return 0


def _arrays(model):
    import equinox as eqx
    import jax

    return jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))
