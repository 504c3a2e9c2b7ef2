"""File-system checks shared by the commands that write directories."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable

from ._errors import InputError


def ensure_writable_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create `path` if needed and check, by writing a small file, that it is writable, so
    that a bad output directory fails before any work starts.

    Raises:
        InputError naming `flag` when `path` is a file or cannot be written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path} exists and is not a directory; give a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"0" * 4096)
        probe.unlink()
    except OSError as e:
        raise InputError(f"{flag} {path} cannot be written ({e.strerror or type(e).__name__}); give a writable directory") from None
    return path


def atomic_write_bytes(path: str | Path, data: bytes | Callable[[BinaryIO], None]) -> Path:
    """Write `path` through a temporary file in the same directory and `os.replace`, so that
    a reader (or an interrupt) never sees a partial file. The file's mode follows the umask.

    Arguments:
        path: the file to write.
        data: its bytes, or a function that writes them to the open binary file.
    Returns:
        `path` as a Path.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_npy_atomic(path: str | Path, array) -> Path:
    """`numpy.save(path, array)` written atomically (see `atomic_write_bytes`)."""
    import numpy as np

    return atomic_write_bytes(path, lambda f: np.save(f, array))
