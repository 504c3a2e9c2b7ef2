"""The training loss curve from a run's metrics.jsonl."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

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


def centred_average(values: np.ndarray, window: int, *, log: bool = False) -> np.ndarray:
    """Centred moving average: entry i is the mean of values[i-h .. i+h], h = window // 2,
    the half-width shrunk symmetrically near both ends (so a straight line is returned
    unchanged and a decay is never shifted to later steps, as a trailing average shifts it).

    Arguments:
        values: (n,) finite values.
        window: the full window in records (>= 1).
        log: average log(values) and return exp of it (a geometric mean), for positive values
            on a log axis.
    """
    v = np.log(values) if log else np.asarray(values, float)
    n = v.size
    h = np.minimum(max(int(window), 1) // 2, np.minimum(np.arange(n), n - 1 - np.arange(n)))
    c = np.r_[0.0, np.cumsum(v)]
    i = np.arange(n)
    out = (c[i + h + 1] - c[i - h]) / (2 * h + 1)
    return np.exp(out) if log else out


def _wall_knots(step: np.ndarray, wall: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(step, wall) pairs with both strictly increasing: a writer that logs several steps
    per compiled call stamps them with one time, which belongs to the last of them."""
    ok = np.isfinite(wall)
    step, wall = step[ok], wall[ok]
    last = np.r_[wall[1:] != wall[:-1], True] if wall.size else np.zeros(0, bool)
    step, wall = step[last], wall[last]
    keep = np.r_[True, (np.diff(wall) > 0) & (np.diff(step) > 0)] if wall.size else last
    return step[keep], wall[keep]


def _trained_steps(path: Path) -> int | None:
    """The step of the run's checkpoint (the steps trained), where one lies beside the log."""
    run_dir = path if path.is_dir() else path.parent
    try:
        step = json.loads((run_dir / "checkpoint.json").read_text()).get("step")
    except (OSError, ValueError, AttributeError):
        return None
    return int(step) if isinstance(step, int) and not isinstance(step, bool) else None


def loss_curve(
    metrics: str | Path | Iterable[Mapping],
    *,
    smooth: float = 0.05,
    title: str | None = None,
    steps: int | None = None,
) -> Figure:
    """Training loss against step, with wall-clock seconds on a second (top) axis.

    Arguments:
        metrics: a metrics.jsonl path (or a run directory holding one), or records, each a
            mapping with ``step`` and ``loss`` and optionally ``wall`` (seconds since start).
        smooth: width of the centred moving average drawn over the raw curve, as a fraction
            of the records (0: none; default 0.05, at least 5 records). Centred, so the
            average never lags the loss.
        title: axes title.
        steps: the number of steps trained (checkpoint.json's ``step``), named in the title;
            default: read from checkpoint.json beside a metrics file given by path.

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
    if steps is None and name is not None:
        steps = _trained_steps(Path(name))
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
    st, lo = step[ok], loss[ok]
    window = max(5, 2 * round(smooth * lo.size / 2) + 1)
    smoothed = smooth > 0 and lo.size >= 10
    ax.plot(st, lo, lw=0.8, alpha=0.45 if smoothed else 1.0, color="tab:blue", label="loss")
    if smoothed:
        avg = centred_average(lo, window, log=bool(np.all(lo > 0)))
        ax.plot(st, avg, lw=1.8, color="tab:blue", label=f"centred average of {window} records")
        ax.legend(loc="upper right")
    if lo.size and np.all(lo > 0):
        ax.set_yscale("log")
        if lo.max() / lo.min() < 10:
            # Within one decade the default labels read "1.2 x 10^0"; plain numbers are kinder.
            plain = FuncFormatter(lambda v, _: f"{v:.3g}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, which="both", alpha=0.3)
    last = f"last logged {lo[-1]:.4g} at step {int(st[-1]):,}" if lo.size else "no finite loss"
    if steps is not None:
        last = f"{int(steps):,} steps; {last}"
    if wall is not None:
        last += f", {wall.max():.1f} s"
        ws, ww = _wall_knots(step, wall)
        if ws.size >= 2:
            # Step and wall time map one-to-one through the knots where the clock moved.
            top = ax.secondary_xaxis(
                "top", functions=(lambda s: _interp(s, ws, ww), lambda w: _interp(w, ww, ws))
            )
            top.set_xlabel("wall-clock seconds")
    ax.set_title(title if title is not None else f"training loss ({last})")
    return fig
