"""`Dataset` and `load(spec)`: training data as a pure, jit-safe sampler."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._errors import DataSpecError
from ..targets import ImageDensity, SmoothedTarget, Target
from ._images import idx_image, mnist_image, read_image
from ._points import check_rows, read_points
from ._spec import DataSpec, parse_spec
from ._toy import DESCRIPTIONS, ToySampler, toy_target


def _warn_if_background(grey: np.ndarray, path: str) -> None:
    """Warn when an image's mass looks like its background (a dark drawing on white read
    without `invert`): mostly bright, or most of the mass in the outer tenth of each side."""
    import warnings

    h, w = grey.shape
    total = float(grey.sum())
    if total <= 0:
        return
    b = max(1, round(0.1 * min(h, w)))
    inner = float(grey[b:h - b, b:w - b].sum()) if h > 2 * b and w > 2 * b else 0.0
    border, mean = 1.0 - inner / total, float(grey.mean())
    if mean > 0.5 or border > 0.5:
        why = f"mostly bright (mean intensity {mean:.2f})" if mean > 0.5 else \
            f"{100 * border:.0f}% of its mass in the border"
        warnings.warn(f"image file '{path}' is {why}: bright pixels carry the mass, so this trains on "
                      f"the background; for a dark drawing on a light background use image:{path},invert",
                      UserWarning, stacklevel=3)


class EmpiricalSampler(eqx.Module):
    """Uniform draws, with replacement, from the rows of a point cloud (N, D)."""

    points: Float[Array, "n d"]

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        idx = jax.random.randint(key, (n,), 0, self.points.shape[0])
        return self.points[idx]


class LabelledSampler(eqx.Module):
    """Uniform draws, with replacement, from labelled rows: points (N, D), labels (N,)."""

    points: Float[Array, "n d"]
    labels: Int[Array, " n"]

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        return self.sample_labelled(key, n)[0]

    def sample_labelled(self, key: PRNGKeyArray, n: int) -> tuple[Float[Array, "n d"], Int[Array, " n"]]:
        idx = jax.random.randint(key, (n,), 0, self.points.shape[0])
        return self.points[idx], self.labels[idx]


class Dataset(eqx.Module):
    """Training data: a pure, jit-safe sampler plus, where it exists, the exact density.

    Attributes:
        spec: the canonical data spec (static); `load(spec)` rebuilds the same data.
        dim: dimension D of one example (static).
        target: the exact density (an ImageDensity for images, a GaussianMixture or
            Checkerboard for some toy sets), or None (point files, other toy sets).
        sampler: any module with `sample(key, n) -> (n, D)`; the target itself when exact.
        description: one human-readable line (static), see `describe()`.
        image_shape: (C, H, W) for image data in pixel space, where each point is one image
            flattened row-major, intensities in [0, 1] (0 = black); None otherwise (static).
        n_classes: the number of labels a model can be conditioned on (10 for MNIST with
            labels), 0 for data without labels or with one label only (static).
    """

    spec: str = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    target: Target | None
    sampler: eqx.Module
    description: str = eqx.field(static=True)
    image_shape: tuple[int, ...] | None = eqx.field(static=True, default=None)
    n_classes: int = eqx.field(static=True, default=0)

    def sample_labelled(self, key: PRNGKeyArray, n: int) -> tuple[Float[Array, "n d"], Int[Array, " n"]]:
        """`n` iid draws with their labels (int32 (n,)); for labelled data only."""
        x, y = self.sampler.sample_labelled(key, n)
        return x.astype(jnp.float32), y.astype(jnp.int32)

    @property
    def labels(self) -> np.ndarray | None:
        """The labels of every point (int32 (N,)) for labelled data, else None."""
        lab = getattr(self.sampler, "labels", None)
        return None if lab is None else np.asarray(lab, np.int32)

    @property
    def points(self) -> np.ndarray | None:
        """Every point (N, D) of an empirical dataset (point files, pixel images), else None."""
        pts = getattr(self.sampler, "points", None)
        return None if pts is None else np.asarray(pts, np.float32)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        """`n` iid draws (float32, shape `(n, D)`); pure, jit-safe for static `n`. Exact
        for images and toy sets; the empirical distribution for point files."""
        return self.sampler.sample(key, n).astype(jnp.float32)

    def describe(self) -> str:
        """A short human description, e.g. for `scorefield info`."""
        return self.description

    @property
    def has_exact_score(self) -> bool:
        """Whether `target` gives a closed-form sigma-smoothed score (for `--exact`)."""
        return isinstance(self.target, SmoothedTarget)


def _image_dataset(spec: str, img: np.ndarray, name: str, centres: bool) -> Dataset:
    target = ImageDensity.from_array(img, centres=centres, name=name)
    h, w = target.height, target.width
    ex, ey = target.extent
    how = "point masses at pixel centres" if centres else "uniform in each pixel cell"
    desc = f"{name}: {h}x{w} image as a 2-D density ({how}) on [0, {ex:.3g}] x [0, {ey:.3g}], exact samples and score"
    return Dataset(spec, 2, target, target, desc)


def from_image_array(image, *, centres: bool = False, invert: bool = False) -> Dataset:
    """A Dataset from grey intensities `(H, W)` (row 0 = top; values in [0, 1] if `invert`).

    Its spec is 'array:HxW', which `load` cannot rebuild (keep the array yourself).
    """
    a = np.asarray(image, dtype=np.float64)
    if invert:
        a = 1.0 - a
    return _image_dataset(f"array:{a.shape[0]}x{a.shape[1] if a.ndim > 1 else 0}", a, "image array", centres)


def from_points(points) -> Dataset:
    """A Dataset sampling uniformly from the rows of `points` (N, D); spec 'array:NxD'."""
    a = np.asarray(points, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise DataSpecError(f"points array has shape {a.shape}; expected N x D with N >= 1, D >= 1")
    a = check_rows(a, "points array")
    n, d = a.shape
    desc = f"point array: {n} points in {d}-D, empirical distribution (no closed-form density)"
    return Dataset(f"array:{n}x{d}", d, None, EmpiricalSampler(jnp.asarray(a, jnp.float32)), desc)


def _pixel_dataset(ds: DataSpec) -> Dataset:
    from ._pixels import MNIST_CLASSES, folder_images, idx_digits, mnist_digits

    canon = str(ds)
    if ds.kind == "mnist-digits":
        x, shape, labels = mnist_digits(ds.label, ds.size or 28)
        what = "the 5,000 bundled MNIST digits" if ds.label is None else f"the 500 bundled MNIST digits of label {ds.label}"
    elif ds.kind == "mnist-digits-idx":
        x, shape, labels = idx_digits(ds.path, ds.labels_path, ds.size)
        what = f"IDX images '{ds.path}'" + (f" with labels '{ds.labels_path}'" if ds.labels_path else "")
    else:
        x, shape, labels = folder_images(ds.path)
        what = f"image folder '{ds.path}'"
    n_classes = MNIST_CLASSES if labels is not None and np.unique(labels).size > 1 else 0
    c, h, w = shape
    desc = (f"{what}: {x.shape[0]} images of {c}x{h}x{w} as points in R^{x.shape[1]} (pixel space, intensities "
            f"in [0, 1])" + (f", {n_classes} labels" if n_classes else "") + ", empirical distribution")
    pts = jnp.asarray(x, jnp.float32)
    sampler = LabelledSampler(pts, jnp.asarray(labels, jnp.int32)) if labels is not None else EmpiricalSampler(pts)
    return Dataset(canon, int(x.shape[1]), None, sampler, desc, tuple(int(s) for s in shape), n_classes)


def load(spec: str | DataSpec) -> Dataset:
    """Load the data named by a data spec (grammar: `scorefield.data.parse_spec`).

    Raises:
        DataSpecError with one line naming the input and what would be valid: a malformed
        spec, a missing/unreadable file, a file that is not an image, zero total intensity
        (also after invert), negative or NaN intensities, a point file with NaN/inf or the
        wrong shape, an unknown toy name, an MNIST label or index out of range.
    """
    ds = parse_spec(spec)
    canon = str(ds)
    if ds.kind == "mnist":
        img = mnist_image(ds.label, ds.index)
        name = "MNIST training image 0 (a 5)" if ds.label is None else f"MNIST digit {ds.label} #{ds.index} (bundled)"
        return _image_dataset(canon, img, name, False)
    if ds.kind == "mnist-idx":
        return _image_dataset(canon, idx_image(ds.path, ds.index), f"IDX '{ds.path}' image {ds.index}", False)
    if ds.kind == "image":
        img = read_image(ds.path, invert=ds.invert)
        if not ds.invert:
            _warn_if_background(img, ds.path)
        if ds.invert and np.all(np.isfinite(img)) and np.all(img <= 0):
            raise DataSpecError(f"image file '{ds.path}' is white everywhere, so inverted it has zero total intensity "
                                "and defines no distribution; drop invert (density is where the image is bright)")
        name = f"image file '{ds.path}'" + (" (inverted)" if ds.invert else "")
        return _image_dataset(canon, img, name, ds.centres)
    if ds.kind == "points":
        pts = read_points(ds.path)
        n, d = pts.shape
        desc = f"points '{ds.path}': {n} points in {d}-D, empirical distribution (no closed-form density)"
        return Dataset(canon, d, None, EmpiricalSampler(jnp.asarray(pts)), desc)
    if ds.pixels:
        return _pixel_dataset(ds)
    if ds.kind == "toy":
        target = toy_target(ds.name)
        sampler = target if target is not None else ToySampler(ds.name)
        exact = "exact density and smoothed score" if target is not None else "exact sampler, no closed-form density"
        desc = f"toy set {ds.name}: {DESCRIPTIONS[ds.name]}; 2-D, {exact}"
        return Dataset(canon, 2, target, sampler, desc)
    raise DataSpecError(f"data spec '{spec}' has unknown kind {ds.kind!r}")  # unreachable after parse_spec
