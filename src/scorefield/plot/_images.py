"""A grid of images in pixel space (issue 13): one row per label for conditional samples."""

from __future__ import annotations

import numpy as np

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
