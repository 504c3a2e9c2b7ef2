"""Figures without global state: a matplotlib Figure on an Agg canvas, saved or read
back as pixels. Nothing here touches pyplot, so plotting works headless and never
changes a backend the caller chose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .._errors import InputError

IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def new_figure(figsize: tuple[float, float] = (6.0, 5.0), dpi: int = 100) -> Figure:
    """A fresh Figure on its own Agg canvas, laid out with the constrained engine.

    Arguments:
        figsize: (width, height) in inches.
        dpi: dots per inch; the pixel size is figsize * dpi.

    Returns:
        The Figure; ``fig.canvas`` is a FigureCanvasAgg.
    """
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render a figure and return its pixels.

    Arguments:
        fig: a Figure (one from `new_figure`, or any Figure: an Agg canvas is attached
            if it has none).

    Returns:
        A uint8 array of shape (height, width, 4), RGBA, row 0 at the top.
    """
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def save_figure(fig: Figure, path: str | Path, *, dpi: int | None = None) -> Path:
    """Write a figure to ``path``; the format follows the suffix (.png, .pdf, .svg, .jpg).

    Arguments:
        fig: the Figure to save.
        path: destination file; parent folders are created.
        dpi: override the figure's dots per inch.

    Returns:
        The path written.

    Raises:
        InputError: the suffix names no supported image format.
    """
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(
            f"output file {str(path)!r} has suffix {path.suffix!r}; use one of "
            f"{', '.join(IMAGE_SUFFIXES)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi if dpi is not None else fig.dpi)
    return path
