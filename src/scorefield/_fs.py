"""File-system helpers shared by every module that writes files: a writability check for
output directories, and the one atomic-write routine (a temporary file in the same
directory, fsync'd, then os.replace), so that a kill at any moment leaves the old file or
the new one, never a part."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from ._errors import InputError


def ensure_writable_dir(path: str | Path, flag: str = "out=") -> Path:
    """Create `path` if needed and check, by writing a small file, that it is writable, so
    that a bad output directory fails before any work starts.

    Raises:
        InputError naming `flag` (a CLI flag such as "--out", or "out=" for a Python
        argument) when `path` is a file or cannot be written.
    """
    path = Path(path)
    flag = flag if flag.endswith("=") else flag + " "  # "--out PATH" or "out=PATH"
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag}{path} exists and is not a directory; give a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"0" * 4096)
        probe.unlink()
    except OSError as e:
        raise InputError(f"{flag}{path} cannot be written ({e.strerror or type(e).__name__}); give a writable directory") from None
    return path


def fsync_dir(path: str | Path) -> None:
    """Flush a directory entry to disk (after os.replace); a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


TEMP_GLOBS = (".*.tmp", ".*.tmp.*")
"""Glob patterns of the temporaries :func:`atomic_path` creates (for cleaning up after a kill)."""


@contextlib.contextmanager
def atomic_path(path: str | Path, *, keep_suffix: bool = False, fsync: bool = True) -> Iterator[Path]:
    """A temporary path next to `path`; when the block ends without an exception, the file
    written there replaces `path` atomically (os.replace), else it is removed.

    Arguments:
        path: the final file.
        keep_suffix: end the temporary name with `path`'s suffix (for writers that choose
            the format by it, e.g. figures and animations): ``.NAME.XXXX.tmp.png``;
            otherwise ``.NAME.XXXX.tmp``.
        fsync: flush the file and its directory entry to disk (crash-safe, not just
            kill-safe).
    """
    path = Path(path)
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    stem = path.stem if keep_suffix else path.name
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{stem}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the final file gets the usual mode
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def write_atomic(path: str | Path, data: bytes | str | Callable[[IO], Any], *, fsync: bool = True) -> Path:
    """Write `path` atomically (see :func:`atomic_path`).

    Arguments:
        path: the file to write.
        data: bytes, text (UTF-8), or a function ``write(f)`` given the open binary file.
        fsync: flush to disk before the rename.
    Returns:
        `path`.
    """
    path = Path(path)
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write `obj` as indented JSON to `path` atomically."""
    return write_atomic(path, json.dumps(obj, indent=2) + "\n")


def save_npy_atomic(path: str | Path, array) -> Path:
    """`numpy.save(path, array)` written atomically (see :func:`write_atomic`)."""
    import numpy as np

    return write_atomic(path, lambda f: np.save(f, array))
