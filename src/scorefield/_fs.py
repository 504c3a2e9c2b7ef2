"""File-system checks shared by the commands that write directories."""

from __future__ import annotations

from pathlib import Path

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
