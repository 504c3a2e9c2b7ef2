"""Grey images from files (Pillow), the bundled MNIST subset, and standard IDX files.

All return float64 intensities (H, W) in [0, 1] (row 0 = top of the image), unvalidated
for mass; `ImageDensity.from_array` checks them.
"""

from __future__ import annotations

import gzip
import importlib.resources
import os

import numpy as np

from .._errors import DataSpecError

REFERENCE_LABEL, REFERENCE_INDEX = 5, 0  # MNIST training image 0, bundle row 2500


def _check_file(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise DataSpecError(f"{what} '{path}' does not exist; give the path of an existing file")
    if os.path.isdir(path):
        raise DataSpecError(f"{what} '{path}' is a directory; give the path of a file")
    if not os.access(path, os.R_OK):
        raise DataSpecError(f"{what} '{path}' is not readable; check its permissions")


def read_image(path: str, *, invert: bool = False) -> np.ndarray:
    """Read an image file as grey intensities in [0, 1], shape (H, W).

    Colour is converted to grey with ITU-R 601-2 luma (Pillow's "L"). `invert` maps grey g
    to 1 - g (for dark-on-light images). An alpha channel a in [0, 1] is applied after
    inverting, as a composite over black: intensity = g * a (or (1 - g) * a), so
    transparent pixels carry no mass whether or not the image is inverted. 16-bit and
    32-bit integer images are scaled by 65535; float images are taken as they are.
    Animated images: the first frame.
    """
    from PIL import Image, UnidentifiedImageError

    _check_file(path, "image file")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
                mode == "P" and "transparency" in im.info
            )
            if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                grey = np.asarray(im, dtype=np.float64)
                if mode != "F":
                    grey = grey / 65535.0
                alpha = None
            elif has_alpha:
                la = np.asarray(im.convert("RGBA").convert("LA"), dtype=np.float64) / 255.0
                grey, alpha = la[..., 0], la[..., 1]
            else:
                grey = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
                alpha = None
    except UnidentifiedImageError:
        raise DataSpecError(
            f"image file '{path}' is not an image Pillow can read; use PNG, JPEG, BMP, GIF, TIFF or WebP"
        ) from None
    except (OSError, Image.DecompressionBombError) as e:
        raise DataSpecError(f"image file '{path}' could not be read ({e}); use a valid PNG, JPEG, BMP, GIF, TIFF or WebP") from None
    if invert:
        grey = 1.0 - grey
    if alpha is not None:
        grey = grey * alpha
    return grey


def mnist_bundle() -> tuple[np.ndarray, np.ndarray]:
    """The bundled subset: images uint8 (5000, 28, 28), labels uint8 (5000,), 500 per label,
    sorted by label (see docs/DATA.md for provenance and license)."""
    ref = importlib.resources.files("scorefield.data") / "_bundled" / "mnist5k.npz"
    with ref.open("rb") as f, np.load(f, allow_pickle=False) as z:
        return z["images"], z["labels"]


def mnist_image(label: int | None = None, index: int | None = None) -> np.ndarray:
    """Bundled digit `index` (0..499) of `label` (0..9) as intensities / 255, (28, 28).
    Default: the reference image, MNIST training image 0 (a "5")."""
    if label is None:
        label, index = REFERENCE_LABEL, REFERENCE_INDEX
    index = 0 if index is None else index
    images, labels = mnist_bundle()
    rows = np.flatnonzero(labels == label)
    if not 0 <= index < rows.size:
        raise DataSpecError(f"mnist index {index} is out of range for label {label}; valid: 0 <= index < {rows.size}")
    return images[rows[index]].astype(np.float64) / 255.0


_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """Read a whole IDX file (the MNIST distribution format; gzip-compressed or not)."""
    _check_file(path, "IDX file")
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataSpecError(f"IDX file '{path}' is a damaged gzip file ({e})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DataSpecError(
            f"IDX file '{path}' does not start with an IDX header; expected a file like train-images-idx3-ubyte(.gz)"
        )
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataSpecError(f"IDX file '{path}' is truncated in its header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(shape))
    if len(raw) - head < count * dtype.itemsize:
        raise DataSpecError(f"IDX file '{path}' is truncated: its header promises shape {shape}")
    return np.frombuffer(raw, dtype, count, head).reshape(shape)


def idx_image(path: str, index: int = 0) -> np.ndarray:
    """Image `index` of an IDX image file (N, H, W) as intensities in [0, 1]: uint8 / 255,
    other types as stored."""
    arr = read_idx(path)
    if arr.ndim != 3:
        raise DataSpecError(
            f"IDX file '{path}' holds an array of shape {arr.shape}, not images (N, H, W); "
            "give an images file such as train-images-idx3-ubyte, not a labels file"
        )
    if not 0 <= index < arr.shape[0]:
        raise DataSpecError(f"index {index} is out of range for IDX file '{path}'; valid: 0 <= index < {arr.shape[0]}")
    img = arr[index].astype(np.float64)
    return img / 255.0 if arr.dtype == np.uint8 else img
