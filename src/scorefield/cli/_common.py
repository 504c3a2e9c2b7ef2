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
