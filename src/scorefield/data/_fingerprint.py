"""What a run records about its data files, so that a resumed run trains on the same data:
the spec with its path made absolute (a run resumes from any working directory) and the
SHA-256 of the file's content (a changed file is noticed)."""

from __future__ import annotations

import dataclasses
import os

from .._errors import DataSpecError
from ._files import check_regular_file, file_digest
from ._spec import DataSpec, parse_spec

CHANGED_DATA_FLAG = "--accept-changed-data"


def absolute_spec(spec: str | DataSpec) -> str:
    """The canonical spec with a relative file path made absolute (against the current
    directory); specs without a file are returned canonical and unchanged."""
    ds = parse_spec(spec)
    if ds.labels_path is not None and not os.path.isabs(ds.labels_path):
        ds = dataclasses.replace(ds, labels_path=os.path.abspath(ds.labels_path))
    if ds.path is None or os.path.isabs(ds.path):
        return str(ds)
    return str(dataclasses.replace(ds, path=os.path.abspath(ds.path)))


def data_fingerprint(spec: str | DataSpec) -> dict | None:
    """{'path', 'sha256', 'bytes'} of the file a spec reads (path absolute), or None for data
    without a file (mnist, toy sets). Raises DataSpecError if the file cannot be read."""
    ds = parse_spec(spec)
    if ds.path is None:
        return None
    if ds.kind == "image-folder":
        from ._pixels import folder_digest

        if not os.path.isdir(ds.path):
            raise DataSpecError(f"image folder '{ds.path}' is not a directory; give a folder of .png files of one size")
        return {"path": os.path.abspath(ds.path), **folder_digest(ds.path)}
    if ds.labels_path is not None:
        import hashlib

        check_regular_file(ds.path, f"{ds.kind} file", DataSpecError)
        check_regular_file(ds.labels_path, "IDX labels file", DataSpecError)
        a, b = file_digest(ds.path), file_digest(ds.labels_path)
        both = hashlib.sha256((a["sha256"] + b["sha256"]).encode()).hexdigest()
        return {"path": os.path.abspath(ds.path), "sha256": both, "bytes": a["bytes"] + b["bytes"]}
    check_regular_file(ds.path, f"{ds.kind} file", DataSpecError)
    return {"path": os.path.abspath(ds.path), **file_digest(ds.path)}


def check_data_unchanged(spec: str | DataSpec, recorded: dict | None, *, accept: bool = False,
                         flag: str = CHANGED_DATA_FLAG) -> dict | None:
    """The data file's fingerprint now; DataSpecError (exit 2) naming the file if it differs
    from `recorded` (what the run was trained on), unless `accept`. A run recorded without a
    fingerprint (`recorded` None) is not checked."""
    now = data_fingerprint(spec)
    if recorded is None or now is None or accept:
        return now
    if now.get("sha256") != recorded.get("sha256"):
        raise DataSpecError(
            f"data file '{now['path']}' has changed since the run was trained on it (SHA-256 {recorded.get('sha256', '?')[:12]}..., "
            f"{recorded.get('bytes', '?')} bytes; now {now['sha256'][:12]}..., {now['bytes']} bytes); restore it, or pass "
            f"{flag} to continue on the new contents")
    return now
