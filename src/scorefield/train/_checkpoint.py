"""Checkpoints without pickle: arrays in one .npz (plain numeric .npy members) plus a JSON
pointer with the format version, the step and a SHA-256 per array.

Writing is atomic: the arrays go to a new file, fsync'd, then the pointer
`checkpoint.json` is replaced with os.replace. A kill at any moment leaves the previous
pointer naming a complete previous array file.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import _fs
from .._errors import CheckpointError

CHECKPOINT_FORMAT = 1
POINTER = "checkpoint.json"


def _sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def save(run_dir: str | Path, step: int, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None, *, keep: int = 2) -> Path:
    """Write a checkpoint of `arrays` at `step` into `run_dir`; returns the array file.

    Arguments:
        run_dir: the run directory (exists).
        step: training steps completed.
        arrays: name -> numeric array (no object dtype).
        meta: extra JSON-serialisable fields for the pointer (e.g. wall seconds).
        keep: how many array files to keep (older ones are removed after the pointer moves).
    """
    run_dir = Path(run_dir)
    name = f"checkpoint-{step:09d}.npz"
    final = run_dir / name
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype == object:
            raise CheckpointError(f"checkpoint array {k} has object dtype; only numeric arrays are stored")
    _fs.write_atomic(final, lambda f: np.savez(f, **arrays))
    pointer = {
        "format_version": CHECKPOINT_FORMAT,
        "step": int(step),
        "file": name,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype), "sha256": _sha256(v)} for k, v in arrays.items()},
        **(meta or {}),
    }
    _fs.write_json_atomic(run_dir / POINTER, pointer)
    old = sorted(run_dir.glob("checkpoint-*.npz"))
    for p in old[:-keep] if keep > 0 else []:
        if p.name != name:
            p.unlink(missing_ok=True)
    return final


def exists(run_dir: str | Path) -> bool:
    return (Path(run_dir) / POINTER).is_file()


def load(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify the current checkpoint of `run_dir`.

    Returns:
        (pointer metadata, name -> array). Raises CheckpointError naming the file if the
        pointer is missing or malformed, of another format version, or an array is missing,
        truncated or fails its checksum.
    """
    run_dir = Path(run_dir)
    ptr_path = run_dir / POINTER
    if not ptr_path.is_file():
        raise CheckpointError(f"{run_dir} holds no checkpoint ({POINTER} is missing); train into it first")
    try:
        meta = json.loads(ptr_path.read_text())
        version = meta["format_version"]
        file = meta["file"]
        expected = meta["arrays"]
        if not (isinstance(file, str) and isinstance(expected, dict)
                and all(isinstance(v, dict) and {"shape", "dtype", "sha256"} <= v.keys() for v in expected.values())):
            raise TypeError("fields of the wrong type")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{ptr_path} is not a valid checkpoint pointer ({e.__class__.__name__})") from None
    if version != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{ptr_path} has checkpoint format {version}; this scorefield reads format {CHECKPOINT_FORMAT}")
    path = run_dir / str(file)
    if Path(file).name != file:
        raise CheckpointError(f"{ptr_path} names an array file outside the run directory: {file!r}")
    _check_array_file(path, ptr_path)
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for k, info in expected.items():
                a = z[k]
                if list(a.shape) != info["shape"] or str(a.dtype) != info["dtype"] or _sha256(a) != info["sha256"]:
                    raise CheckpointError(f"{path}: array {k} does not match its checksum, shape or dtype: the file is corrupted")
                if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):  # training never stores one
                    raise CheckpointError(f"{path}: array {k} holds NaN or inf, which training never writes: "
                                          "the checkpoint is damaged; resume from an intact copy or train again")
                arrays[k] = a
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: the checkpoint named by {ptr_path} is gone") from None
    except ValueError as e:
        if "pickle" in str(e):  # an object array: loading it would run code, so it is refused
            raise CheckpointError(f"{path} holds pickled Python objects, which scorefield never loads; "
                                  "a checkpoint holds numeric arrays only") from None
        raise CheckpointError(f"{path} is truncated or corrupted ({e.__class__.__name__})") from None
    except (OSError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path} is truncated or corrupted ({e.__class__.__name__})") from None
    return meta, arrays


def recover(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The newest complete array file of a run whose pointer is missing (a kill between the
    array write and the pointer write), verified without the pointer: a regular .npz file
    whose every member passes the zip CRC-32 check and loads as a numeric, finite array
    (never a pickle). The step is taken from the arrays' own step.

    Returns:
        (metadata with "step", "file" and "recovered": True, name -> array), or None when the
        run has no array file. Raises CheckpointError when array files exist but none verifies.
    """
    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("checkpoint-*.npz"), reverse=True)
    reasons = []
    for path in files:
        try:
            _check_array_file(path, run_dir / POINTER)
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad is not None:
                raise CheckpointError(f"{path}: member {bad} fails its CRC check")
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            if "step" not in arrays or any(a.dtype.kind not in "biuf" or not np.all(np.isfinite(a)) for a in arrays.values()):
                raise CheckpointError(f"{path} holds no step or non-finite values")
        except (CheckpointError, OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            reasons.append(f"{path.name}: {e.__class__.__name__}")
            continue
        meta = {"step": int(arrays["step"]), "file": path.name, "recovered": True}
        return meta, arrays
    if files:
        raise CheckpointError(f"{run_dir} has no {POINTER} and none of its array files verifies "
                              f"({'; '.join(reasons)}); the run cannot be resumed, train a new one")
    return None


_NOT_NPZ = {
    "empty": "is empty",
    "zeros": "is zero-filled (its data never reached the disk, as after a power loss)",
    "pickle": "holds pickled Python objects, which scorefield never loads",
    "npy": "is a single .npy array, not a checkpoint archive",
    "gzip": "is a gzip file",
    "json": "is JSON text",
    "text": "is a text file",
    "other": "holds data of an unknown format",
}


def _check_array_file(path: Path, ptr_path: Path) -> None:
    """CheckpointError saying what `path` is, unless it is a regular file that starts like a
    .npz archive (the checksums are checked as it is read)."""
    from ..data._files import check_regular_file, sniff

    if path.name == POINTER:
        raise CheckpointError(f"{ptr_path} names itself as its array file; it is damaged (the array files are "
                              "checkpoint-<step>.npz)")
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"{path} is missing: the checkpoint named by {ptr_path} is gone")
    link = f" (a symbolic link to {os.path.realpath(path)})" if path.is_symlink() else ""
    try:
        check_regular_file(path, "checkpoint array file", CheckpointError)
        kind = sniff(path)
    except CheckpointError as e:
        raise CheckpointError(f"{e}{link}") from None
    except OSError as e:
        raise CheckpointError(f"{path}{link} cannot be read ({e.strerror or type(e).__name__})") from None
    if kind != "npz":
        raise CheckpointError(f"{path}{link} {_NOT_NPZ[kind]}, not a checkpoint array file (a .npz archive of "
                              f"numeric arrays); the checkpoint named by {ptr_path} is damaged")
