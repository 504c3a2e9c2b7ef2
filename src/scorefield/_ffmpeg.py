"""Finding an ffmpeg, without importing JAX or Matplotlib (the CLI checks it first)."""

from __future__ import annotations

import shutil


def find_ffmpeg() -> str | None:
    """Path of an ffmpeg executable: one on PATH, else the one the optional imageio-ffmpeg
    wheel ships, else None."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg  # optional

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or its binary is missing
        return None
