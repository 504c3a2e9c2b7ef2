"""Animations of particles: GIF through Pillow, MP4 through an ffmpeg if one is found.

Frames are rendered by blitting on one Agg canvas: the backdrop is drawn once and only
the particles are redrawn per frame, so a few hundred frames take seconds."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from jaxtyping import ArrayLike
from PIL import Image

from .._errors import InputError, ScorefieldError
from .._ffmpeg import find_ffmpeg
from ._grid import aspect_of, draw_background, setup_spatial
from ._paths import as_trajectory
from ._render import new_figure

ANIMATION_SUFFIXES = (".gif", ".mp4")


def frame_indices(num_steps: int, max_frames: int) -> np.ndarray:
    """Time indices to draw: every step when there are few enough, else ``max_frames``
    evenly spaced ones, always including the last (and the first, if two or more)."""
    if num_steps <= max_frames:
        return np.arange(num_steps)
    if max_frames == 1:
        return np.array([num_steps - 1])
    return np.unique(np.round(np.linspace(0, num_steps - 1, max_frames)).astype(int))


def render_frames(
    traj: np.ndarray,
    *,
    background=None,
    lims=(-1.5, 1.5),
    trail: int = 20,
    max_frames: int = 400,
    size: tuple[float, float] | None = None,
    dpi: int = 80,
    title: str = "particles",
    labels=None,
) -> list[np.ndarray]:
    """RGB frames (uint8, (height, width, 3)) of particles moving over a backdrop."""
    T, N, _ = traj.shape
    fig = new_figure(size if size is not None else (5.0, 0.9 + 4.2 * aspect_of(lims)), dpi)
    ax = fig.add_subplot()
    draw_background(ax, background, lims, cmap="Blues")
    setup_spatial(ax, lims)
    ax.set_title(title)
    # Trails only help the eye for a handful of particles.
    show_trails = trail > 0 and N <= 20
    lines = [ax.plot([], [], lw=1.2, color="orangered", alpha=0.9, animated=True)[0]
             for _ in range(N if show_trails else 0)]
    dots = ax.scatter(traj[0, :, 0], traj[0, :, 1], s=30 if N <= 20 else max(2.0, 200 / N ** 0.5),
                      c="tab:red", edgecolors="black", linewidths=0.4, animated=True, zorder=3)
    label = ax.text(0.02, 0.97, "", transform=ax.transAxes, va="top", fontsize=9, animated=True,
                    bbox=dict(boxstyle="round", fc="white", alpha=0.8))
    canvas = fig.canvas
    canvas.draw()
    clean = canvas.copy_from_bbox(fig.bbox)
    frames = []
    for t in frame_indices(T, int(max_frames)):
        canvas.restore_region(clean)
        for j, line in enumerate(lines):
            seg = traj[max(0, t - trail): t + 1, j]
            line.set_data(seg[:, 0], seg[:, 1])
            ax.draw_artist(line)
        dots.set_offsets(traj[t])
        ax.draw_artist(dots)
        label.set_text(f"step {t} / {T - 1}" if labels is None else labels[t])
        ax.draw_artist(label)
        frames.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return frames


def write_gif(frames: list[np.ndarray], path: Path, fps: float) -> None:
    # One palette for every frame: no flicker, smaller files.
    images = [Image.fromarray(f) for f in frames]
    # The palette comes from a few frames spread over the run so later colours (trails
    # over every part of the backdrop) are in it too. 255 colours: index 255 is left free
    # to mean "unchanged".
    picks = np.unique(np.linspace(0, len(frames) - 1, min(4, len(frames))).astype(int))
    palette = Image.fromarray(np.concatenate([frames[i] for i in picks], axis=0)).quantize(
        colors=255, method=Image.Quantize.MEDIANCUT
    )
    idx = [np.asarray(im.quantize(palette=palette, dither=Image.Dither.NONE)) for im in images]
    colours = palette.getpalette()[: 3 * 255]
    colours += [0, 0, 0] * (256 - len(colours) // 3)
    # Delta frames: a pixel equal to the previous frame's is written as the transparent
    # index over the kept previous frame (disposal 1), so only moving particles cost bytes
    # (long runs of one index compress well under LZW): 3-4x smaller files, same pixels.
    out = []
    for k, q in enumerate(idx):
        d = q if k == 0 else np.where(q == idx[k - 1], np.uint8(255), q)
        im = Image.fromarray(np.ascontiguousarray(d, np.uint8), "P")
        im.putpalette(colours)
        out.append(im)
    out[0].save(
        path, save_all=True, append_images=out[1:], duration=max(20, int(round(1000 / fps))),
        loop=0, optimize=False, disposal=1, transparency=255,
    )


def write_mp4(frames: list[np.ndarray], path: Path, fps: float, ffmpeg: str) -> None:
    h, w, _ = frames[0].shape
    cmd = [
        ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{w}x{h}", "-r", f"{fps}", "-i", "-",
        # yuv420p (what players expect) needs even sides.
        "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", "-vcodec", "libx264",
        str(path),
    ]
    proc = subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), capture_output=True)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ScorefieldError(
            f"ffmpeg ({ffmpeg}) failed writing {str(path)!r}: {msg[-1] if msg else 'no message'}; "
            "write a .gif instead"
        )


def animate_particles(
    traj: ArrayLike,  # validated: (T, N, 2) or (T, 2)
    out_path: str | Path,
    *,
    background=None,
    lims=(-1.5, 1.5),
    fps: float = 20.0,
    trail: int = 20,
    max_frames: int = 400,
    size: tuple[float, float] | None = None,
    dpi: int = 80,
    title: str = "particles",
    labels: Sequence[str] | None = None,
) -> Path:
    """Write an animation of particles moving over a backdrop, one frame per step.

    Arguments:
        traj: positions over time, (T, N, 2) or (T, 2) for one particle.
        out_path: ``.gif`` (Pillow, always available) or ``.mp4`` (needs ffmpeg on PATH or
            the imageio-ffmpeg wheel).
        background: a log-density callable ``x (2,) -> log p(x)``, or an (H, W) image in
            SPEC coordinates, or None.
        lims: plot range, (lo, hi) for both axes or ((xlo, xhi), (ylo, yhi)).
        fps: frames per second.
        trail: steps of recent path drawn behind each particle (up to 20 particles).
        max_frames: longer trajectories are subsampled evenly to this many frames.
        size: (width, height) in inches (pixels are size * dpi); default 5 inches wide,
            the height following the aspect of ``lims``.
        dpi: dots per inch.
        title: axes title.
        labels: one caption per time index (default "step t / T-1").

    Returns:
        The path written.

    Raises:
        InputError: unsupported suffix, bad trajectory shape, or MP4 without any ffmpeg.
    """
    path = Path(out_path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise InputError(f"animation file {str(path)!r} must end in .gif or .mp4")
    if not (fps > 0) or int(max_frames) < 1:
        raise InputError(f"fps={fps!r} and max_frames={max_frames!r} must be positive")
    ffmpeg = None
    if suffix == ".mp4":
        ffmpeg = find_ffmpeg()
        if ffmpeg is None:
            raise InputError(
                f"cannot write {str(path)!r}: no ffmpeg found (PATH or the imageio-ffmpeg "
                "wheel); write a .gif instead"
            )
    data = as_trajectory(traj, "traj")
    if labels is not None and len(labels) != data.shape[0]:
        raise InputError(f"labels has {len(labels)} entries for {data.shape[0]} time steps; give one per step")
    frames = render_frames(
        data, background=background, lims=lims, trail=int(trail), max_frames=int(max_frames),
        size=size, dpi=dpi, title=title, labels=labels,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        write_gif(frames, path, fps)
    else:
        write_mp4(frames, path, fps, ffmpeg)
    return path
