"""Point clouds from .npy or .csv files."""

from __future__ import annotations

import os

import numpy as np

from .._errors import DataSpecError
from ._images import _check_file


def read_points(path: str) -> np.ndarray:
    """Read an N x D point cloud (N >= 1, D >= 1) as float32.

    .npy: a numeric 2-D array (no pickle). .csv: comma-separated numbers, one point per
    line; a first line that is not numeric is taken as a header; '#' starts a comment.
    Raises DataSpecError for a missing file, another extension, a wrong shape, text that
    is not numbers, or NaN/inf entries.
    """
    _check_file(path, "points file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise DataSpecError(f"points file '{path}' is not a numeric .npy array ({e})") from None
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
            raise DataSpecError(f"points file '{path}' holds dtype {getattr(arr, 'dtype', '?')}; expected numbers")
    elif ext == ".csv":
        try:
            with open(path, encoding="utf-8") as f:
                lines = [ln.split("#", 1)[0].strip() for ln in f]
        except (OSError, UnicodeDecodeError) as e:
            raise DataSpecError(f"points file '{path}' could not be read as text ({e})") from None
        lines = [ln for ln in lines if ln]
        rows = []
        for i, ln in enumerate(lines):
            try:
                rows.append([float(t) for t in ln.split(",")])
            except ValueError:
                if i == 0:
                    continue  # a header line
                raise DataSpecError(f"points file '{path}': line {i + 1} {ln[:40]!r} is not comma-separated numbers") from None
        widths = {len(r) for r in rows}
        if len(widths) > 1:
            raise DataSpecError(f"points file '{path}' has rows of different lengths {sorted(widths)}; every row needs D numbers")
        arr = np.asarray(rows, dtype=np.float64).reshape(len(rows), widths.pop() if widths else 0)
    else:
        raise DataSpecError(f"points file '{path}' has extension {ext or '(none)'!r}; use .npy or .csv")
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DataSpecError(f"points file '{path}' holds shape {arr.shape}; expected N x D with N >= 1, D >= 1")
    bad = ~np.all(np.isfinite(arr), axis=1)
    if bad.any():
        raise DataSpecError(
            f"points file '{path}' has NaN or inf in {int(bad.sum())} row(s) (first: row {int(np.argmax(bad))}); all entries must be finite"
        )
    return arr.astype(np.float32)
