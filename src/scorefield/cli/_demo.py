"""scorefield demo: the whole reference walkthrough into one directory, with index.html."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from ._common import formatter, seed

    p = sub.add_parser(
        "demo",
        help="run the whole walkthrough and write every figure, animation and index.html",
        description=(
            "Run the reference walkthrough end to end (SPEC section 2, seven steps, with our fixes):\n"
            "the closed-form mixture and its score, Langevin with the exact score (one particle and\n"
            "many), the MNIST \"5\" as a density, training a score model (preset 'default'), the loss\n"
            "curve, the learned field, and 10,000 particles sampled with the run's own sampler.\n"
            "Writes into DIR: PNG figures, GIF animations, run/ (the trained run), samples.npy,\n"
            "metrics.json (hist_tv and its floor, wall times) and index.html (open it in a browser;\n"
            "it works offline).\n\n"
            "DIR may exist: the demo replaces its own files (those of a previous demo, run/ included)\n"
            "and leaves every other file alone; it refuses a DIR whose run/ it did not write."
        ),
        epilog="examples:\n  scorefield demo                     # writes demo-out/, a few minutes on 2 cores\n"
        "  scorefield demo --out /tmp/d --fast # well under a minute: small sizes, short training",
        formatter_class=formatter,
    )
    p.add_argument("--out", metavar="DIR", default="demo-out", help="directory to write into (default demo-out)")
    p.add_argument("--fast", action="store_true",
                   help="small and quick: preset 'fast' and 2,000 samples (for tests and a first look)")
    p.add_argument("--images", action="store_true",
                   help="also step 9: a quick class-conditional U-Net on 7x7 MNIST digits, its samples (one row "
                        "per label) and the denoising as an animation (about 1.5 minutes more on 2 cores)")
    p.add_argument("--seed", type=seed, default=0, help="random seed of every step (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress lines or bars; only the final line")
    p.set_defaults(func=run)


# the library's argument wording (demo.prepare_out, run_demo) -> this command's flags
_FLAG_WORDING = ((r"(?<![\w.-])out=", "--out "), (r"\bout directory", "--out directory"))


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    from .._errors import ScorefieldError
    from ..demo import DemoSettings, prepare_out
    from ._common import worded

    # Check DIR before JAX starts: a bad --out fails in a blink.
    try:
        prepare_out(args.out)
    except ScorefieldError as e:
        raise worded(e, _FLAG_WORDING) from None
    from ..demo import run_demo

    t0 = time.perf_counter()
    log = None if args.quiet else (lambda line: print(f"scorefield demo: {line}", file=sys.stderr, flush=True))
    settings = DemoSettings.fast(images=args.images) if args.fast else DemoSettings.full(images=args.images)
    try:
        result = run_demo(args.out, settings, seed=args.seed, progress=None if not args.quiet else False, log=log)
    except ScorefieldError as e:
        raise worded(e, _FLAG_WORDING) from None
    m = result.metrics
    floor = m["hist_tv_floor"]
    print(
        f"scorefield demo: done in {time.perf_counter() - t0:.0f} s: hist_tv {m['hist_tv']:.3f} "
        f"(exact-sample floor {floor['mean']:.3f}) with {floor['n']:,} samples; open {result.index}"
    )
    return 0
