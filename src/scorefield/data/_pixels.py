"""Images as points in R^(C*H*W) (pixel space): the bundled MNIST digits, IDX files with
their labels, and folders of PNG files.

Every reader returns float32 intensities in [0, 1] (0 = black) of shape (N, C*H*W),
flattened row-major from (C, H, W) (grey images: C = 1, so `x.reshape(-1, H, W)` is the
images), the image shape (C, H, W), and the labels (int32 (N,)) or None.
"""

from __future__ import annotations

import os

import numpy as np

from .._errors import DataSpecError
from ._images import mnist_bundle, read_idx

MNIST_CLASSES = 10
MNIST_SIZES = (4, 7, 14, 28)  # the sides 28 x 28 is averaged down to (block means)
MAX_FOLDER_IMAGES = 200_000


def to_image_units(samples) -> np.ndarray:
    """Samples of image data as saved: float32 intensities clipped to [0, 1] (0 = black);
    non-finite values stay as they are (so that divergence is not hidden)."""
    a = np.asarray(samples, np.float32)
    return np.where(np.isfinite(a), np.clip(a, 0.0, 1.0), a).astype(np.float32)


def downsample(images: np.ndarray, size: int) -> np.ndarray:
    """Block means of square images (N, S, S) to (N, size, size); `size` must divide S."""
    n, s = images.shape[0], images.shape[1]
    if size == s:
        return images
    f = s // size
    return images.reshape(n, size, f, size, f).mean(axis=(2, 4))


def mnist_digits(label: int | None = None, size: int = 28):
    """The 5,000 bundled digits (500 per label), or the 500 of one `label`, as (N, size*size)."""
    images, labels = mnist_bundle()
    if label is not None:
        keep = labels == label
        images, labels = images[keep], labels[keep]
    x = downsample(images.astype(np.float64) / 255.0, size)
    return x.reshape(x.shape[0], -1).astype(np.float32), (1, size, size), labels.astype(np.int32)


def idx_digits(path: str, labels_path: str | None = None, size: int | None = None):
    """All images of an IDX image file (N, H, W) with, optionally, its IDX labels file (N,)."""
    a = read_idx(path, "image")
    if a.ndim != 3 or a.shape[0] < 1:
        raise DataSpecError(f"IDX image file '{path}' holds an array of shape {a.shape}, not images (N, H, W); "
                            "give an images file such as train-images-idx3-ubyte")
    x = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)
    if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise DataSpecError(f"IDX image file '{path}' has intensities outside [0, 1] (after /255 for bytes); "
                            "give 8-bit images or floats in [0, 1]")
    n, h, w = x.shape
    if size is not None:
        if h != w or h % size:
            raise DataSpecError(f"IDX image file '{path}' holds {h}x{w} images; size={size} needs square images "
                                "whose side it divides")
        x, h, w = downsample(x, size), size, size
    labels = None
    if labels_path is not None:
        lab = read_idx(labels_path, "labels")
        if lab.ndim != 1 or lab.shape[0] != n:
            raise DataSpecError(f"IDX labels file '{labels_path}' holds shape {lab.shape}; expected ({n},), one label "
                                f"per image of '{path}'")
        if not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0 or lab.max() >= MNIST_CLASSES:
            raise DataSpecError(f"IDX labels file '{labels_path}' has labels outside 0..{MNIST_CLASSES - 1}")
        labels = lab.astype(np.int32)
    return x.reshape(n, -1).astype(np.float32), (1, h, w), labels


def folder_images(path: str):
    """Every .png file in a folder (sorted by name), all of one size: grey (C = 1) unless
    one of them has colour (then every image is read as RGB, C = 3)."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.isdir(path):
        raise DataSpecError(f"image folder '{path}' is not a directory; give a folder of .png files of one size")
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(".png"))
    if not names:
        raise DataSpecError(f"image folder '{path}' holds no .png files; give a folder of .png files of one size")
    if len(names) > MAX_FOLDER_IMAGES:
        raise DataSpecError(f"image folder '{path}' holds {len(names)} .png files; at most {MAX_FOLDER_IMAGES:,} are read")
    opened = []
    size = None
    colour = False
    for name in names:
        p = os.path.join(path, name)
        try:
            with Image.open(p) as im:
                im.load()
                if size is None:
                    size, first = im.size, name
                elif im.size != size:
                    raise DataSpecError(f"image folder '{path}' mixes image sizes: '{first}' is {size[0]}x{size[1]} "
                                        f"but '{name}' is {im.size[0]}x{im.size[1]}; every image must have one size")
                colour |= im.mode not in ("L", "LA", "1", "I", "I;16", "F") and not (
                    im.mode == "P" and all(len(set(c)) == 1 for c in _palette_rgb(im)))
                opened.append(im.copy())
        except (UnidentifiedImageError, OSError) as e:
            raise DataSpecError(f"image folder '{path}': '{name}' is not a readable PNG ({type(e).__name__})") from None
    mode = "RGB" if colour else "L"
    arr = np.stack([np.asarray(im.convert(mode), np.float32) / 255.0 for im in opened])
    if colour:
        arr = np.moveaxis(arr, -1, 1)  # (N, H, W, 3) -> (N, 3, H, W)
        shape = tuple(arr.shape[1:])
    else:
        shape = (1,) + tuple(arr.shape[1:])
    return arr.reshape(arr.shape[0], -1).astype(np.float32), shape, None


def _palette_rgb(im):
    pal = im.getpalette() or []
    return [tuple(pal[i:i + 3]) for i in range(0, len(pal), 3)]


def folder_digest(path: str) -> dict:
    """SHA-256 over the names and contents of a folder's .png files (sorted), and their bytes."""
    import hashlib

    from ._files import file_digest

    h, total = hashlib.sha256(), 0
    for name in sorted(n for n in os.listdir(path) if n.lower().endswith(".png")):
        d = file_digest(os.path.join(path, name))
        h.update(name.encode() + b"\0" + d["sha256"].encode())
        total += d["bytes"]
    return {"sha256": h.hexdigest(), "bytes": total}
