"""scorefield train: fit a noise-conditional score model to data."""

from __future__ import annotations

import argparse
import sys

from ._common import formatter, non_negative_int, positive_int

EXAMPLES = """examples:
  scorefield train --data mnist --out runs/five
  scorefield train --data mnist --out runs/seed --preset seed --steps 5000
  scorefield train --data toy:two-moons --out runs/moons --config my.toml --quiet
  scorefield train --out runs/five --resume --steps 6000   # continue, or extend, a run
"""


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a score model on data",
        description="Train a noise-conditional score model by denoising score matching (or sliced/exact "
        "score matching) and write a run directory: config.json, metrics.jsonl, checkpoints.",
        epilog=EXAMPLES,
        formatter_class=formatter,
    )
    p.add_argument("--data", metavar="SPEC", help="data spec: mnist, mnist:label=L,index=K, image:PATH, toy:NAME, points:PATH, ...")
    p.add_argument("--out", metavar="RUN", required=True, help="run directory to create (or continue with --resume)")
    p.add_argument("--preset", choices=("default", "seed", "fast"), default="default",
                   help="hyperparameters: default (ours), seed (the reference walkthrough exactly), fast (seconds)")
    p.add_argument("--config", metavar="FILE.toml", help="TOML file of configuration keys, applied over the preset")
    p.add_argument("--steps", type=positive_int, help="number of training steps (total, also when resuming)")
    p.add_argument("--batch-size", type=positive_int, help="samples per step")
    p.add_argument("--seed", type=non_negative_int, help="random seed")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._errors import InputError
    from ..train import PRESETS, TrainConfig, load_toml, resume, train

    overrides = {}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.resume:
        if args.data or args.config or args.batch_size or args.seed is not None:
            raise InputError("--resume continues a run with its own config.json; only --steps may change (to extend it)")
    else:
        values = dict(PRESETS[args.preset])
        if args.config:
            values.update(load_toml(args.config))
        if args.data:
            values["data"] = args.data
        if "data" not in values:
            raise InputError("--data is required: give a data spec such as mnist, image:PATH or toy:two-moons")
        values.update(overrides)
        config = TrainConfig.from_dict(values, source="--config" if args.config else "options")
        from ..data import parse_spec

        parse_spec(config.data)
        if not args.quiet:
            print(f"scorefield train: {config.data} -> {args.out} (preset {args.preset}, {config.steps} steps)", file=sys.stderr)
    progress = False if args.quiet else None
    try:
        if args.resume:
            result = resume(args.out, steps=args.steps, progress=progress)
        else:
            result = train(config, args.out, progress=progress)
    except KeyboardInterrupt:
        from pathlib import Path

        if (Path(args.out) / "config.json").is_file():
            print(f"scorefield train: interrupted; the last completed steps are checkpointed in {args.out}; "
                  f"resume with: scorefield train --out {args.out} --resume", file=sys.stderr)
        else:  # stopped before the run directory was written: nothing to resume
            print(f"scorefield train: interrupted before training started; nothing was saved in {args.out}; "
                  "rerun the same command to start again", file=sys.stderr)
        return 130
    last = result.metrics()[-1]["loss"] if result.metrics() else float("nan")
    wall = result.checkpoint.get("wall", float("nan"))
    print(f"trained {result.step} steps in {wall:.1f} s; last logged loss {last:.4f}; run saved in {result.path}")
    return 0
