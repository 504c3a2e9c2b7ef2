"""Point clouds from .npy or .csv files."""

from __future__ import annotations

import os

import numpy as np

from .._errors import DataSpecError, InputError
from .._limits import available_memory, fmt_bytes
from ._files import check_regular_file, read_npy

# Coordinates beyond this magnitude are refused: squared distances between points (the
# noise scale, the loss, every metric) must stay finite in float32 (max 3.4e38).
MAX_ABS_COORDINATE = 1e15


def check_rows(a: np.ndarray, what: str, error: type[InputError] = DataSpecError) -> np.ndarray:
    """`a` (N, D) cast to float32, or `error` naming `what` and the first bad row: NaN or inf
    (also after the cast: a value beyond float32's range becomes inf), or a magnitude above
    MAX_ABS_COORDINATE, where float32 distances overflow."""
    with np.errstate(over="ignore", invalid="ignore"):
        f = np.asarray(a).astype(np.float32)
        bad = ~np.all(np.isfinite(f), axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raw = np.asarray(a)[i]
        if np.all(np.isfinite(raw.astype(np.float64))):
            raise error(f"{what} has {int(bad.sum())} row(s) with values beyond float32's range (first: row {i}, "
                        f"largest |value| {np.max(np.abs(raw.astype(np.float64))):.3g}); all values must be below "
                        f"{MAX_ABS_COORDINATE:.0e} in magnitude")
        raise error(f"{what} has NaN or inf in {int(bad.sum())} row(s) (first: row {i}); all entries must be finite")
    big = np.any(np.abs(f) > MAX_ABS_COORDINATE, axis=1)
    if big.any():
        i = int(np.argmax(big))
        raise error(f"{what} has {int(big.sum())} row(s) with values too large to compute distances in float32 "
                    f"(first: row {i}, largest |value| {np.max(np.abs(f[i])):.3g}); all values must be below "
                    f"{MAX_ABS_COORDINATE:.0e} in magnitude")
    return f


def read_points(path: str) -> np.ndarray:
    """Read an N x D point cloud (N >= 1, D >= 1) as float32.

    .npy: a numeric 2-D array (no pickle). .csv: comma-separated numbers, one point per
    line (UTF-8, with or without a byte-order mark); a first line that is not numeric is
    taken as a header; '#' starts a comment.
    Raises DataSpecError for a missing or non-regular file, another extension, a wrong
    shape, text that is not numbers, NaN/inf entries, or values beyond float32's range
    (naming the first bad row).
    """
    size = check_regular_file(path, "points file", DataSpecError)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        arr = read_npy(path, "points file", DataSpecError)
    elif ext == ".csv":
        free = available_memory()
        if 40 * size > free:  # Python floats of the parsed rows: ~40 bytes per 2-byte value at worst
            raise DataSpecError(f"points file '{path}' ({fmt_bytes(size)}) is too large to parse as CSV in the free "
                                f"memory ({fmt_bytes(free)}); save it as .npy instead")
        try:
            with open(path, encoding="utf-8-sig") as f:
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
    return check_rows(arr, f"points file '{path}'")
