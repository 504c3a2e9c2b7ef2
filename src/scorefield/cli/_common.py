"""Helpers shared by the command modules: argument types that fail with one line."""

from __future__ import annotations

import argparse

from .._limits import MAX_COUNT, SEED_LIMIT


def _int(text: str, valid: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give {valid}") from None


def positive_int(text: str) -> int:
    v = _int(text, "a positive integer")
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be a positive integer")
    if v > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{v} is too large; the largest allowed is {MAX_COUNT}")
    return v


def non_negative_int(text: str) -> int:
    v = _int(text, "an integer >= 0")
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} must be >= 0")
    if v > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{v} is too large; the largest allowed is {MAX_COUNT}")
    return v


def seed(text: str) -> int:
    """A seed: an integer in [0, 2^63), the one rule of scorefield._seed."""
    v = _int(text, "an integer in [0, 2^63)")
    if not 0 <= v < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{v} is out of range; a seed is an integer in [0, 2^63)")
    return v


def positive_float(text: str) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a positive number") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a positive finite number")
    return v


def worded(e: Exception, wording) -> Exception:
    """The library's error `e` with its message worded as this command's flags: each
    (regular expression for a Python argument, flag text) of `wording` replaced, e.g.
    "out=" by "--out ". Library errors name Python arguments; the CLI says the flag."""
    import re

    msg = str(e)
    for py, flag in wording:
        msg = re.sub(py, flag, msg)
    e.args = (msg,)
    return e


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def spec_path(spec: str) -> str | None:
    """The file a data spec string reads (points:PATH, image:PATH[,opts], mnist-idx:PATH[,opts]),
    without importing the data package (and JAX); None for data without a file."""
    import re

    kind, colon, rest = str(spec).partition(":")
    if not colon or kind.strip().lower() not in ("points", "image", "mnist-idx"):
        return None
    if kind.strip().lower() == "points":
        return rest.replace("\\,", ",")
    return re.split(r"(?<!\\),", rest)[0].replace("\\,", ",")


def run_inputs(run_dir) -> dict[str, str]:
    """The files a run reads when it is loaded: its data file (from config.json), if any."""
    import json
    from pathlib import Path

    try:
        data = json.loads((Path(run_dir) / "config.json").read_text()).get("data", "")
    except (OSError, ValueError, AttributeError):
        return {}
    path = spec_path(data) if isinstance(data, str) else None
    return {} if not path else {f"the data file of --run {run_dir}": path}


def check_output(path, flag: str, inputs: dict[str, str | None]) -> None:
    """Refuse (InputError, exit 2), before any work, an output that would destroy an input or
    cannot be written: `path` the same file as one of `inputs` (description -> path), an
    existing directory, or a place whose nearest existing folder is not a writable directory.
    (Folders that do not exist yet are created by the writers.)"""
    import os
    from pathlib import Path

    from .._errors import InputError

    out = Path(path)
    for what, p in inputs.items():
        if p is None:
            continue
        try:
            same = os.path.exists(p) and out.exists() and os.path.samefile(out, p)
        except OSError:
            same = False
        if same or Path(os.path.abspath(out)) == Path(os.path.abspath(p)):
            raise InputError(f"{flag} {path} is {what}, an input of this command; give another file name")
    if out.is_dir():
        raise InputError(f"{flag} {path} is a directory; give a file name")
    parent = Path(os.path.abspath(out)).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{flag} {path} cannot be written: {parent} is a file, not a directory; give another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise InputError(f"{flag} {path} cannot be written (permission denied or a read-only file system); "
                         "give a writable path")
