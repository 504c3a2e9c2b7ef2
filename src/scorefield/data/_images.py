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
from .._limits import available_memory, fmt_bytes
from ._files import check_regular_file

REFERENCE_LABEL, REFERENCE_INDEX = 5, 0  # MNIST training image 0, bundle row 2500


def _check_file(path: str, what: str) -> int:
    """A readable regular file (no FIFO, device or directory), or DataSpecError; its size."""
    return check_regular_file(path, what, DataSpecError)


# Images larger than this are refused: the density's exact score sums over every pixel, and
# training, sampling and plotting hold several float64 copies of it.
MAX_IMAGE_PIXELS = 4096 * 4096


def _check_image_size(name: str, width: int, height: int) -> None:
    """DataSpecError naming `name` for an image too large to train on here."""
    pixels = width * height
    need = 6 * 8 * pixels  # the decoded image, its float64 grey copy and the density's arrays
    free = available_memory()
    limit = min(MAX_IMAGE_PIXELS, free // 48)
    if pixels > limit:
        why = (f"more than the {MAX_IMAGE_PIXELS:,} pixels (4096 x 4096) an image density supports"
               if pixels > MAX_IMAGE_PIXELS else
               f"needing about {fmt_bytes(need)}, more than the free memory ({fmt_bytes(free)})")
        raise DataSpecError(f"{name} is {width} x {height} pixels, {why}; downscale it to at most "
                            f"{limit:,} pixels")


def read_image(path: str, *, invert: bool = False) -> np.ndarray:
    """Read an image file as grey intensities in [0, 1], shape (H, W).

    Colour is converted to grey with ITU-R 601-2 luma (Pillow's "L"). `invert` maps grey g
    to 1 - g (for dark-on-light images). An alpha channel a in [0, 1] is applied after
    inverting, as a composite over black: intensity = g * a (or (1 - g) * a), so
    transparent pixels carry no mass whether or not the image is inverted. 16-bit and
    32-bit integer images are scaled by 65535; float images are taken as they are.
    Animated images: the first frame. The EXIF orientation of a photograph is applied, so
    the density is the image as a viewer shows it.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    _check_file(path, "image file")
    try:
        with Image.open(path) as opened:
            _check_image_size(f"image file '{path}'", *opened.size)
            opened.load()
            try:
                im = ImageOps.exif_transpose(opened) or opened
            except Exception:  # noqa: BLE001 - unreadable EXIF data: the pixels as stored
                im = opened
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


class _IdxStream:
    """An IDX file opened for reading, gzip-compressed or not: its header and a reader that
    never decompresses more than asked."""

    def __init__(self, path: str):
        self.path = path
        self.size = _check_file(path, "IDX file")
        with open(path, "rb") as f:
            self.gz = f.read(2) == b"\x1f\x8b"
        self.f = gzip.open(path, "rb") if self.gz else open(path, "rb")
        try:
            magic = self.read(4, "header")
            if magic[:2] != b"\x00\x00" or magic[2] not in _IDX_DTYPES or magic[3] == 0:
                raise DataSpecError(f"IDX file '{path}' does not start with an IDX header; expected a file like "
                                    "train-images-idx3-ubyte(.gz)")
            ndim = magic[3]
            self.shape = tuple(int(d) for d in np.frombuffer(self.read(4 * ndim, "header"), ">u4"))
            self.dtype = np.dtype(_IDX_DTYPES[magic[2]])
            self.head = 4 + 4 * ndim
            self.nbytes = int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize
            if not self.gz and self.size - self.head < self.nbytes:
                raise DataSpecError(f"IDX file '{path}' is truncated: its header promises shape {self.shape}")
        except BaseException:
            self.f.close()
            raise

    def read(self, n: int, what: str = "data") -> bytes:
        try:
            data = self.f.read(n)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise DataSpecError(f"IDX file '{self.path}' is a damaged gzip file ({e})") from None
        if len(data) < n:
            raise DataSpecError(f"IDX file '{self.path}' is truncated in its {what}"
                                + (f": its header promises shape {self.shape}" if what == "data" else ""))
        return data

    def skip(self, n: int) -> None:
        if not self.gz:
            self.f.seek(n, os.SEEK_CUR)
            return
        while n > 0:
            n -= len(self.read(min(n, 1 << 22)))

    def close(self) -> None:
        self.f.close()


def read_idx(path: str, what: str = "") -> np.ndarray:
    """Read a whole IDX file (the MNIST distribution format; gzip-compressed or not).

    At most the bytes its header promises are decompressed; a header promising more than
    the free memory holds, or a file holding more than its header says, is refused."""
    kind = f"IDX {what} file" if what else "IDX file"
    s = _IdxStream(path)
    try:
        free = available_memory()
        if 2 * s.nbytes > free:
            raise DataSpecError(f"{kind} '{path}' claims shape {s.shape} ({fmt_bytes(s.nbytes)}), more than the free "
                                f"memory ({fmt_bytes(free)}) holds; use mnist-idx:PATH,index=K, which reads one image")
        if not s.gz and s.size - s.head != s.nbytes:
            raise DataSpecError(f"{kind} '{path}' holds {s.size - s.head} bytes of data but its header "
                                f"promises shape {s.shape} ({s.nbytes} bytes); it is not a valid IDX file")
        raw = s.read(s.nbytes)
        if s.f.read(1):
            raise DataSpecError(f"{kind} '{path}' holds more data than its header (shape {s.shape}) says; "
                                "it is not a valid IDX file")
    finally:
        s.close()
    return np.frombuffer(raw, s.dtype).reshape(s.shape)


def idx_image(path: str, index: int = 0) -> np.ndarray:
    """Image `index` of an IDX image file (N, H, W) as intensities in [0, 1]: uint8 / 255,
    other types as stored. Only the header and the images up to `index` are read, so the
    memory used is one image's, whatever the file's size."""
    s = _IdxStream(path)
    try:
        if len(s.shape) != 3:
            raise DataSpecError(
                f"IDX file '{path}' holds an array of shape {s.shape}, not images (N, H, W); "
                "give an images file such as train-images-idx3-ubyte, not a labels file"
            )
        if not 0 <= index < s.shape[0]:
            raise DataSpecError(f"index {index} is out of range for IDX file '{path}'; valid: 0 <= index < {s.shape[0]}")
        h, w = s.shape[1:]
        _check_image_size(f"IDX file '{path}' image {index}", w, h)
        one = h * w * s.dtype.itemsize
        s.skip(index * one)
        img = np.frombuffer(s.read(one), s.dtype).reshape(h, w).astype(np.float64)
    finally:
        s.close()
    return img / 255.0 if s.dtype == np.uint8 else img
