"""Figures and animations of score fields, particles, samples and training.

Every function takes plain callables and arrays (or library objects through them:
``target.log_prob``, ``run.score_fn()``) and returns a matplotlib Figure on its own Agg
canvas, with no pyplot or global backend state; save it with `save_figure` or read its
pixels with `figure_to_array`. Spatial plots use x right, y up, equal aspect; image data
is drawn upright in SPEC coordinates.
"""

from __future__ import annotations

from ._animate import animate_particles, find_ffmpeg
from ._annealing import annealing_strip, frame_label
from ._density import density_and_score
from ._density_map import density_map_figure
from ._field import default_levels, vector_field_grid
from ._grid import image_extent
from ._images import denoising_frames, image_grid, label_columns, nearest_pairs, write_denoising
from ._hist import data_vs_samples, density_vs_samples, image_vs_samples, upright_histogram
from ._loss import loss_curve, read_metrics
from ._pairs import pair_plot, principal_axes
from ._paths import paths
from ._render import figure_to_array, new_figure, save_figure
from ._view import data_view, square_box

__all__ = [
    "image_grid",
    "denoising_frames",
    "label_columns",
    "nearest_pairs",
    "write_denoising",
    "animate_particles",
    "annealing_strip",
    "frame_label",
    "data_view",
    "data_vs_samples",
    "default_levels",
    "density_and_score",
    "density_map_figure",
    "density_vs_samples",
    "figure_to_array",
    "find_ffmpeg",
    "image_extent",
    "image_vs_samples",
    "loss_curve",
    "new_figure",
    "pair_plot",
    "paths",
    "principal_axes",
    "read_metrics",
    "save_figure",
    "square_box",
    "upright_histogram",
    "vector_field_grid",
]
