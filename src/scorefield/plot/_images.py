"""A grid of images in pixel space (issue 13): one row per label for conditional samples."""

from __future__ import annotations

import numpy as np

from .._errors import InputError

from ._render import new_figure


def image_grid(images, shape: tuple[int, int, int], *, row_labels=None, columns: int = 10, title: str = ""):
    """A figure of images (N, C*H*W) in [0, 1] (0 = black), `columns` to a row, drawn
    upright (row 0 of an image at the top), grey for C = 1 and RGB for C = 3.

    Arguments:
        images: (N, C*H*W) intensities, flattened row-major from (C, H, W).
        shape: (C, H, W).
        row_labels: one text per row of the grid (e.g. the label drawn), or None.
        columns: images per row.
        title: the figure's title.
    Returns:
        the Figure.
    """
    c, h, w = shape
    x = np.clip(np.asarray(images, np.float32), 0, 1).reshape(-1, c, h, w)
    n = len(x)
    rows = max(1, -(-n // columns))
    pad = 1
    canvas = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad, c), np.float32) * 0.5
    for i in range(n):
        r, k = divmod(i, columns)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = \
            np.moveaxis(x[i], 0, -1)
    fig = new_figure((max(3.0, 0.6 * columns + 1.0), max(2.0, 0.6 * rows + 0.8)))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(canvas[..., 0] if c == 1 else canvas, cmap="gray" if c == 1 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    if row_labels is not None:
        ax.set_yticks([pad + r * (h + pad) + h / 2 for r in range(len(row_labels))])
        ax.set_yticklabels([str(t) for t in row_labels])
        ax.tick_params(length=0)
    else:
        ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def _tile(images: np.ndarray, columns: int, pad: int = 1, fill: float = 0.5) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] on one canvas (rows, cols, C), `columns` to a row,
    `pad` pixels of `fill` between and around them, each upright (its row 0 on top)."""
    n, c, h, w = images.shape
    rows = max(1, -(-n // columns))
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), fill, np.float32)
    for i in range(n):
        r, k = divmod(i, columns)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = \
            np.moveaxis(images[i], 0, -1)
    return canvas


def label_columns(n_classes: int, per: int, rows: int | None = None) -> list[int]:
    """Indices that reorder label-major samples (`per` of each of `n_classes` labels) so that
    a grid of `n_classes` columns has one label per column: row j holds every label's j-th
    sample; the first `rows` rows (default all `per`)."""
    return [label * per + j for j in range(per if rows is None else min(per, rows)) for label in range(n_classes)]


def denoising_frames(trajectory, shape: tuple[int, int, int], *, columns: int = 8, scale: int | None = None,
                     max_frames: int = 60) -> list[np.ndarray]:
    """RGB frames (uint8, (height, width, 3)) of a batch of images being denoised: each
    frame the batch's grid (`columns` to a row, each image upright, 0 = black, clipped to
    [0, 1]) at one recorded step, pixels enlarged `scale` times, and a bar along the bottom
    whose white part is the fraction of the recorded steps done.

    Arguments:
        trajectory: (F, N, C*H*W) positions in image units (e.g. `SampleResult.trajectory`
            of a run on images), from the start (noise) to the samples.
        shape: (C, H, W) of one image.
        columns: images per row of the grid.
        scale: pixels per image pixel (default: images about 56 pixels high).
        max_frames: frames kept, evenly spaced, always the first and the last.
    Returns:
        the frames, first to last.
    """
    from ._animate import frame_indices

    traj = np.asarray(trajectory, np.float32)
    c, h, w = (int(s) for s in shape)
    if traj.ndim != 3 or traj.shape[2] != c * h * w:
        raise InputError(f"trajectory of shape {traj.shape} must be (frames, N, {c * h * w}) for images {shape}")
    scale = max(1, 56 // h) if scale is None else int(scale)
    keep = frame_indices(len(traj), int(max_frames))
    frames = []
    for t in keep:
        x = np.clip(np.nan_to_num(traj[t], nan=0.0), 0, 1).reshape(-1, c, h, w)
        canvas = _tile(x, min(columns, len(x)))
        bar = np.zeros((max(1, h // 4), canvas.shape[1], c), np.float32)
        bar[:, : int(round(canvas.shape[1] * (t / max(1, len(traj) - 1))))] = 1.0
        canvas = np.concatenate([canvas, bar], axis=0)
        canvas = np.repeat(np.repeat(canvas, scale, axis=0), scale, axis=1)
        rgb = np.repeat(canvas, 3, axis=2) if c == 1 else canvas
        frames.append(np.round(rgb * 255).astype(np.uint8))
    return frames


def write_denoising(trajectory, shape: tuple[int, int, int], path, *, fps: float = 10.0, **kwargs) -> None:
    """`denoising_frames` written as an animation: `path` ending in .gif, or .mp4 where an
    ffmpeg is found (`find_ffmpeg`); the last frame (the samples) is held for a second."""
    from pathlib import Path

    from .._ffmpeg import find_ffmpeg
    from ._animate import write_gif, write_mp4

    frames = denoising_frames(trajectory, shape, **kwargs)
    frames = frames + [frames[-1]] * int(round(fps))
    path = Path(path)
    if path.suffix.lower() == ".mp4":
        ffmpeg = find_ffmpeg()
        if ffmpeg is None:
            raise InputError(f"cannot write {path}: no ffmpeg found (PATH or the imageio-ffmpeg wheel); write a .gif")
        # the encoder needs even sides
        frames = [np.pad(f, ((0, f.shape[0] % 2), (0, f.shape[1] % 2), (0, 0))) for f in frames]
        write_mp4(frames, path, fps, ffmpeg)
    else:
        write_gif(frames, path, fps)


def nearest_pairs(samples, neighbours, distances, shape: tuple[int, int, int], *, pairs_per_row: int = 5,
                  threshold: float | None = None, title: str = ""):
    """A figure of samples each beside its nearest training image: pairs (sample | nearest)
    `pairs_per_row` to a row, the Euclidean distance (pixel units, images in [0, 1]) under
    each pair, in red where it is below `threshold` (a near-copy).

    Arguments:
        samples, neighbours: (N, C*H*W) in [0, 1]; neighbours[i] is the training image
            nearest to samples[i] (`scorefield.metrics.nearest_neighbours`).
        distances: (N,) their distances.
        shape: (C, H, W).
        threshold: the near-copy distance (e.g. `image_report`'s near_copy_threshold), or None.
        title: the figure's title.
    Returns:
        the Figure.
    """
    c, h, w = (int(s) for s in shape)
    x = np.clip(np.asarray(samples, np.float32), 0, 1).reshape(-1, c, h, w)
    y = np.clip(np.asarray(neighbours, np.float32), 0, 1).reshape(-1, c, h, w)
    d = np.asarray(distances, np.float64).reshape(-1)
    if not len(x) == len(y) == len(d):
        raise InputError(f"samples ({len(x)}), neighbours ({len(y)}) and distances ({len(d)}) must be as many")
    n = len(x)
    per = max(1, min(int(pairs_per_row), n))
    rows = max(1, -(-n // per))
    gap = max(1, w // 2)  # between pairs, wider than between the two images of a pair
    cell_w = 2 * w + 1 + gap
    canvas = np.full((rows * (h + 1) + 1, per * cell_w + 1, c), 0.5, np.float32)
    for i in range(n):
        r, k = divmod(i, per)
        top, left = 1 + r * (h + 1), 1 + k * cell_w
        canvas[top:top + h, left:left + w] = np.moveaxis(x[i], 0, -1)
        canvas[top:top + h, left + w + 1:left + 2 * w + 1] = np.moveaxis(y[i], 0, -1)
    fig = new_figure((max(3.0, 1.3 * per + 0.8), max(2.0, 0.75 * rows + 0.9)))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(canvas[..., 0] if c == 1 else canvas, cmap="gray" if c == 1 else None, vmin=0, vmax=1,
              interpolation="nearest")
    for i in range(n):
        r, k = divmod(i, per)
        near = threshold is not None and d[i] < threshold
        ax.text(1 + k * cell_w + w + 0.5, 1 + r * (h + 1) + h - 0.3, f"{d[i]:.2f}", ha="center", va="bottom",
                fontsize=6, color="red" if near else "yellow")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_title(title or "sample | nearest training image (distance)", fontsize=9)
    return fig
