"""The training loss curve from a run's metrics.jsonl."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .._errors import InputError
from ._render import new_figure

# Accept the few spellings a metrics writer may use for wall-clock seconds.
_WALL_KEYS = ("wall", "wall_s", "wall_seconds", "time", "elapsed")


def read_metrics(path: str | Path) -> list[dict]:
    """Read a metrics.jsonl file: one JSON object per line, blank lines skipped.

    Raises:
        InputError: the file is missing, or a line is not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"metrics file {str(path)!r} does not exist; give a run's metrics.jsonl")
    records = []
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            if not isinstance(rec, dict):
                raise InputError(f"{str(path)!r} line {lineno} is not a JSON object; expected one per line")
            records.append(rec)
    return records


def _column(records: list[Mapping], keys: tuple[str, ...]) -> np.ndarray | None:
    for key in keys:
        if all(key in r for r in records):
            return np.asarray([float(r[key]) for r in records])
    return None


def _interp(v, xp, fp):
    """np.interp continued linearly past both ends (axis margins lie outside the log)."""
    v = np.asarray(v, dtype=float)
    out = np.interp(v, xp, fp)
    lo_slope = (fp[1] - fp[0]) / max(xp[1] - xp[0], 1e-12)
    hi_slope = (fp[-1] - fp[-2]) / max(xp[-1] - xp[-2], 1e-12)
    out = np.where(v < xp[0], fp[0] + (v - xp[0]) * lo_slope, out)
    return np.where(v > xp[-1], fp[-1] + (v - xp[-1]) * hi_slope, out)


def loss_curve(
    metrics: str | Path | Iterable[Mapping],
    *,
    smooth: float = 0.9,
    title: str | None = None,
) -> Figure:
    """Training loss against step, with wall-clock seconds on a second (top) axis.

    Arguments:
        metrics: a metrics.jsonl path (or a run directory holding one), or records, each a
            mapping with ``step`` and ``loss`` and optionally ``wall`` (seconds since start).
        smooth: weight of the exponential moving average drawn over the raw curve (0: none).
        title: axes title.

    Returns:
        The Figure; the loss axis is logarithmic when every loss is positive.
    """
    if isinstance(metrics, (str, Path)):
        p = Path(metrics)
        records = read_metrics(p / "metrics.jsonl" if p.is_dir() else p)
        name = str(p)
    else:
        records = [dict(r) for r in metrics]
        name = None
    if not 0.0 <= smooth < 1.0:
        raise InputError(f"smooth={smooth!r} must be in [0, 1)")
    records = [r for r in records if "loss" in r and "step" in r]
    if not records:
        raise InputError(
            f"no records with 'step' and 'loss' in {name or 'the metrics given'}; "
            "train for a few steps first"
        )
    step = np.asarray([float(r["step"]) for r in records])
    loss = np.asarray([float(r["loss"]) for r in records])
    order = np.argsort(step, kind="stable")
    step, loss = step[order], loss[order]
    wall = _column(records, _WALL_KEYS)
    wall = None if wall is None else wall[order]

    fig = new_figure((7.0, 4.2))
    ax = fig.add_subplot()
    ok = np.isfinite(loss)
    ax.plot(step[ok], loss[ok], lw=0.8, alpha=0.45 if smooth > 0 else 1.0, color="tab:blue", label="loss")
    if smooth > 0 and ok.sum() > 2:
        ema = np.empty(ok.sum())
        acc = loss[ok][0]
        for i, v in enumerate(loss[ok]):
            acc = smooth * acc + (1 - smooth) * v
            ema[i] = acc
        ax.plot(step[ok], ema, lw=1.8, color="tab:blue", label=f"moving average ({smooth:g})")
        ax.legend(loc="upper right")
    if ok.any() and np.all(loss[ok] > 0):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, which="both", alpha=0.3)
    last = f"final {loss[ok][-1]:.4g} at step {int(step[ok][-1])}" if ok.any() else "no finite loss"
    if wall is not None and len(step) > 1 and np.all(np.diff(step) > 0) and np.all(np.diff(wall) >= 0):
        # Step and wall time map one-to-one by interpolation along the log.
        top = ax.secondary_xaxis(
            "top", functions=(lambda s: _interp(s, step, wall), lambda w: _interp(w, wall, step))
        )
        top.set_xlabel("wall-clock seconds")
        last += f", {wall[-1]:.1f} s"
    ax.set_title(title if title is not None else f"training loss ({last})")
    return fig
