"""scorefield eval: judge samples against their data, each metric next to its floor."""

from __future__ import annotations

import argparse
import json
import math

from ._common import formatter, positive_int, seed
from .._seed import seed_key
from ._eval_likelihood import add_arguments as add_likelihood_arguments

EXAMPLES = """examples:
  scorefield eval --data mnist --samples five.npy
  scorefield eval --data toy:8gaussians --samples g.npy --json
  scorefield eval --run runs/five --samples five.npy   # also the Fisher divergence per level
  scorefield eval --run runs/five --likelihood          # nll, bits/dim, KL to the exact density
  scorefield eval --exact mnist --likelihood --json     # the exact score through the same ODE

The floor of a metric is its value between exact samples of the data at the same sizes:
what a perfect sampler would score (the mean of --repeats draws). One value varies from draw
to draw; the range beside the floor is where one exact draw lands 95% of the time, so a value
inside it is as good as N samples allow, and one above it is distinguishable from exact.
"""


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="measure sample quality against the data",
        description="Compare samples (a float (N, D) .npy file) with their data: hist_tv on an image's "
        "pixel cells, mode weights of a mixture, energy distance, MMD and sliced Wasserstein "
        "distance, each with its finite-sample floor; with --run also the Fisher divergence of "
        "the model's score at each noise level where the exact smoothed score is known.",
        epilog=EXAMPLES,
        formatter_class=formatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", metavar="RUN",
                     help="run directory: its data, and its score model for the Fisher divergence")
    src.add_argument("--data", metavar="SPEC", help="data spec: mnist, image:PATH, toy:NAME, points:PATH, ...")
    src.add_argument("--exact", metavar="SPEC",
                     help="with --likelihood: the exact smoothed score of this data as the model (the "
                     "machinery's own error is then kl - kl_floor)")
    p.add_argument("--samples", metavar="FILE.npy",
                   help="samples to judge, an (N, D) float array (not needed with --likelihood)")
    p.add_argument("--label", type=int, metavar="L",
                   help="image data: the label the samples were drawn for (sample --label L); reports the fraction "
                        "the shipped MNIST classifier reads as L")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--seed", type=seed, default=0,
                   help="random seed for reference draws and floors (default 0)")
    p.add_argument("--repeats", type=positive_int, default=8,
                   help="exact draws behind each floor and its range (default 8)")
    p.add_argument("--max-points", type=positive_int, default=2000,
                   help="samples used by the pairwise metrics, whose cost is quadratic in it (default 2000)")
    add_likelihood_arguments(p)
    p.set_defaults(func=run)


def load_samples(path: str, dim: int | None = None):
    """The (N, D) float32 array in a .npy file, or InputError naming the file: a regular
    file (not a FIFO or device) holding a numeric array whose header fits the file and the
    free memory, finite in float32 and small enough for float32 distances."""
    from .._errors import InputError
    from ..data import check_rows, read_npy

    what = "--samples"
    a = read_npy(path, what, InputError, kinds="iuf")  # booleans are not coordinates
    if a.ndim != 2 or a.shape[0] < 2:
        raise InputError(f"--samples {path} has shape {a.shape}; give an (N, D) array with N >= 2")
    if dim is not None and a.shape[1] != dim:
        raise InputError(
            f"--samples {path} has {a.shape[1]} columns but the data is {dim}-D; give an (N, {dim}) array"
        )
    return check_rows(a, f"--samples {path}", InputError)


def run(args: argparse.Namespace) -> int:

    from .._errors import InputError

    if args.likelihood:
        from ._eval_likelihood import run as run_likelihood

        return run_likelihood(args)
    if args.exact is not None:
        raise InputError("--exact SPEC goes with --likelihood; to judge samples against data use --data SPEC")
    if args.samples is None:
        raise InputError("--samples FILE.npy is required to judge samples (or give --likelihood)")

    from ..metrics import evaluate

    score_fn = sigmas = None
    if args.run is not None:
        from ..train import load_run

        run_ = load_run(args.run)
        dataset = run_.dataset()
        score_fn, sigmas = run_.score_fn(ema=True), run_.sigmas
    else:
        from ..data import load

        dataset = load(args.data)
    samples = load_samples(args.samples, int(dataset.dim))
    result = evaluate(
        dataset, samples, key=seed_key(args.seed), repeats=args.repeats, max_points=args.max_points,
        score_fn=score_fn, sigmas=sigmas,
    )
    if getattr(dataset, "image_shape", None) is not None:
        from ..metrics import image_report

        if args.label is not None and not (0 <= args.label < 10):
            raise InputError(f"--label {args.label} is out of range; valid labels are 0..9")
        result.update(image_report(samples, dataset, label=args.label, seed=args.seed))
    elif args.label is not None:
        raise InputError(f"--label applies to image data in pixel space (mnist-digits, ...); the data here are {dataset.spec}")
    _check_finite_metrics(result, args.samples)
    if args.run is not None:
        result["run"] = str(args.run)
    if args.json:
        print(json.dumps(_finite_or_none(result), allow_nan=False))
    else:
        print(format_table(result))
    return 0


def _check_finite_metrics(result: dict, path: str) -> None:
    """ScorefieldError (exit 1) if a metric came out NaN or inf: the one line names it
    instead of printing nan as a result."""
    from .._errors import ScorefieldError

    for k, v in result.items():
        if f"{k}_floor" not in result or not isinstance(v, float):  # the metrics themselves
            continue
        if not math.isfinite(v):
            raise ScorefieldError(f"metric {k} of --samples {path} is {v} (an overflow in float32); "
                                  "check that the samples are in the data's units")


def _finite_or_none(v):
    """NaN/inf as null: strict JSON has no NaN (a floor's s.e. with --repeats 1 is NaN)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite_or_none(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite_or_none(x) for x in v]
    return v


def _fmt(v: float) -> str:
    return "nan" if v is None or not math.isfinite(v) else f"{v:.4g}"


def _floor_range(r: dict, key: str) -> str:
    """"[low, high]": where one value of exact samples lands 95% of the time."""
    lo, hi = r.get(key + "_floor_low"), r.get(key + "_floor_high")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "(needs --repeats >= 2)"
    return f"[{_fmt(lo)}, {_fmt(hi)}]"


def _image_lines(r: dict) -> str:
    out = ["image metrics:"]
    if "frechet" in r:
        out.append(f"  Frechet distance (classifier features)  {_fmt(r['frechet'])}  floor {_fmt(r['frechet_floor'])} "
                   f"(two disjoint halves of {r['frechet_n']} real images; classifier held-out accuracy "
                   f"{r['classifier_accuracy']:.3f})")
    if "label_accuracy" in r:
        real = f", real digits of that label {r['label_accuracy_real']:.3f}" if "label_accuracy_real" in r else ""
        out.append(f"  read as label {r['label']}: {r['label_accuracy']:.3f}{real}")
    if "label_histogram" in r:
        out.append("  labels read: " + " ".join(f"{i}:{v:.2f}" for i, v in enumerate(r["label_histogram"])))
    out.append(f"  nearest training image: median distance {_fmt(r['nn_distance_median'])} (real images to each other "
               f"{_fmt(r['nn_distance_floor'])}); near-copies (< {_fmt(r['near_copy_threshold'])}) "
               f"{r['memorised_fraction']:.3f}")
    return "\n".join(out)


def format_table(r: dict) -> str:
    """A readable report of `evaluate`'s dict: one metric a line, its floor beside it."""
    lines = [f"data {r['data']}: {r['n_samples']} samples in {r['dim']}-D"]
    rows = []
    names = {
        "hist_tv": "hist_tv (all samples)",
        "mode_weights_tv": "mode weights TV",
        "energy_distance": "energy distance",
        "mmd2": f"MMD^2 (h={_fmt(r.get('mmd_bandwidth', math.nan))})",
        "sliced_wasserstein": "sliced Wasserstein-2",
        "marginal_ks_max": "marginal KS, worst coordinate",
        "marginal_ks_mean": "marginal KS, mean of coordinates",
        "outside_shells": "outside every 3-sigma shell",
        "within_std_ratio": "within-component std / true",
        "mode_weights_max_error": "mode weights, max |error|",
    }
    for key, label in names.items():
        if key in r:
            rows.append((label, _fmt(r[key]), _fmt(r[key + "_floor"]), _floor_range(r, key)))
    width = max(len(row[0]) for row in rows)
    lines.append(f"  {'metric':<{width}}  {'value':>10}  {'floor':>10}  95% range of one exact draw")
    lines += [f"  {a:<{width}}  {b:>10}  {c:>10}  {d}" for a, b, c, d in rows]
    if "pair_n" in r:
        lines.append(f"  (pairwise metrics: {r['pair_n']} samples vs {r['reference_n']} {r['reference']}; "
                     "floors: exact draws in place of the samples)")
    if "mode_weights" in r:
        got = " ".join(f"{w:.3f}" for w in r["mode_weights"])
        want = " ".join(f"{w:.3f}" for w in r["mode_weights_target"])
        lines.append(f"mode weights  {got}\n       target  {want}")
    if "memorised_fraction" in r:
        lines.append(_image_lines(r))
    if r.get("fisher_divergence"):
        lines.append("Fisher divergence E|s_theta - s|^2 per level:")
        lines.append(f"  {'sigma':>10}  {'E|ds|^2':>10}  {'relative':>10}")
        for s, f, rel in zip(r["fisher_sigmas"], r["fisher_divergence"], r["fisher_relative"]):
            lines.append(f"  {s:>10.4g}  {f:>10.4g}  {rel:>10.4g}")
    elif "fisher_divergence" in r:
        lines.append("Fisher divergence: not available (this data has no exact smoothed score)")
    return "\n".join(lines)

