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

    info = _from_json(args.run)  # config.json, checkpoint.json and metrics.jsonl: no JAX
    if info is None:  # something is off: the library names it (and loads what it can)
        info = _from_run(args.run)
    if args.json:
        # strict JSON: a NaN or inf (say a diverged loss) is null
        print(json.dumps({k: _finite_or_none(v) for k, v in info.items()}, allow_nan=False))
        return 0
    width = max(len(k) for k in info)
    for k, v in info.items():
        if isinstance(v, float):
            v = f"{v:.6g}"
        print(f"{k:<{width}}  {v}")
    return 0


_FIELDS = ("data", "dim", "net", "objective", "levels", "sigma_max", "sigma_min", "n_levels", "steps",
           "batch_size", "lr", "ema_decay")


def _summary(path, c: dict, n_params: int, step: int, last_loss, ckpt: dict, model: str = "score") -> dict:
    return {
        "run": str(path),
        **{k: c[k] for k in _FIELDS[:2]},
        "net": c["net"],
        # an energy network has a log-density (Metropolis samplers apply); others give a score
        # only (net = "energy" builds the one energy network).
        "model": model,
        "parameters": n_params,
        **{k: c[k] for k in _FIELDS[3:7]},
        "sigma_rule": c.get("sigma_rule") or None,
        "dim_rule": c.get("dim_rule") or None,
        **{k: c[k] for k in _FIELDS[7:8]},
        "steps_done": step,
        "steps_total": c["steps"],
        "batch_size": c["batch_size"],
        "lr": c["lr"],
        "ema_decay": c["ema_decay"],
        "last_loss": last_loss,
        "wall_seconds": ckpt.get("wall"),
        "checkpoint": ckpt.get("file"),
    }


def _from_json(run_dir):
    """The summary from the run's JSON files alone (no JAX, nothing compiled), or None when
    a file is missing or not as written by this version (the caller then loads the run)."""
    import json
    import math
    from pathlib import Path

    d = Path(run_dir)
    try:
        c = json.loads((d / "config.json").read_text())
        ckpt = json.loads((d / "checkpoint.json").read_text())
        arrays = ckpt["arrays"]
        step = ckpt["step"]
        n_params = sum(math.prod(a["shape"]) for k, a in arrays.items() if k.startswith("model/"))
        if not (isinstance(c, dict) and all(k in c for k in _FIELDS) and isinstance(step, int) and n_params > 0):
            return None
        if not _plausible(c):  # the library's validation names what is wrong
            return None
        if not (d / ckpt["file"]).is_file() or not _arrays_match(d / ckpt["file"], arrays):
            return None
        last = _last_loss(d / "metrics.jsonl")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return _summary(d, c, n_params, step, last, ckpt, "energy" if c["net"] == "energy" else "score")


def _arrays_match(path, expected: dict) -> bool:
    """Whether the array file holds exactly the numeric arrays checkpoint.json lists, with
    their checksums (numpy only, never unpickling): anything else goes to the library's
    loader, which says what is wrong with the file."""
    import hashlib
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            if sorted(z.files) != sorted(expected):
                return False
            for k, info in expected.items():
                a = z[k]
                if hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() != info["sha256"]:
                    return False
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError):
        return False
    return True


def _plausible(c: dict) -> bool:
    """The few values every reader of a run relies on, checked without importing the
    library: a config.json edited by hand is then refused by the library with its reason."""
    import math

    def num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    return (num(c["sigma_min"]) and num(c["sigma_max"]) and 0 < c["sigma_min"] < c["sigma_max"]
            and isinstance(c["dim"], int) and c["dim"] >= 1 and isinstance(c["steps"], int) and c["steps"] >= 1)


def _last_loss(path):
    """The loss of the last record of metrics.jsonl (None if there is none)."""
    import json

    last = None
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                last = line
    return None if last is None else float(json.loads(last)["loss"])


def _from_run(run_dir) -> dict:
    from ..train import load_run

    r = load_run(run_dir)
    m = r.metrics()
    n_params = sum(int(a.size) for a in _arrays(r.model))
    return _summary(r.path, r.config.to_dict(), n_params, r.step, m[-1]["loss"] if m else None, r.checkpoint,
                    "energy" if hasattr(r.model, "log_prob") else "score")


def _finite_or_none(v):
    import math

    return None if isinstance(v, float) and not math.isfinite(v) else v


def _arrays(model):
    import equinox as eqx
    import jax

    return jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))
