"""Data loading: bundled MNIST, image files, IDX files, point files, toy sets, and the
typed errors for bad input."""

from __future__ import annotations

import gzip
import struct

import equinox as eqx
import jax
import numpy as np
import pytest
from PIL import Image

from scorefield import DataSpecError
from scorefield.data import TOY_NAMES, from_image_array, from_points, load, mnist_bundle
from scorefield.targets import Checkerboard, GaussianMixture, ImageDensity


def _sample(ds, n, seed=0):
    """Sample inside jit with a traced key, as training does."""
    return np.asarray(eqx.filter_jit(lambda d, k: d.sample(k, n))(ds, jax.random.key(seed)))


# --- bundled MNIST -----------------------------------------------------------------


def test_bundle_layout():
    images, labels = mnist_bundle()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.uint8 and np.array_equal(labels, np.repeat(np.arange(10), 500))


def test_mnist_reference_is_training_image_0():
    images, _ = mnist_bundle()
    ds = load("mnist")
    assert ds.spec == "mnist" and ds.dim == 2 and isinstance(ds.target, ImageDensity)
    five = images[2500].astype(np.float64)
    assert five.sum() == 27525  # the pixel sum of MNIST training image 0
    np.testing.assert_allclose(ds.target.probs, five / five.sum(), rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(load("mnist:label=5,index=0").target.probs, ds.target.probs)
    assert "MNIST" in ds.describe()


def test_mnist_label_index_and_row():
    images, _ = mnist_bundle()
    seven = images[7 * 500 + 3].astype(np.float64)
    ds = load("mnist:label=7,index=3")
    assert ds.spec == "mnist:label=7,index=3"
    np.testing.assert_allclose(ds.target.probs, seven / seven.sum(), rtol=1e-5, atol=1e-8)
    assert load("mnist:index=3503").spec == "mnist:label=7,index=3"
    with pytest.raises(DataSpecError, match="index"):
        load("mnist:label=7,index=500")
    with pytest.raises(DataSpecError, match="label"):
        load("mnist:label=11")


def test_mnist_samples_upright():
    # The top rows of a "5" hold its horizontal bar: most samples in y > 1/2 come from
    # rows < 14; an upside-down image would put them low.
    ds = load("mnist")
    x = _sample(ds, 20_000)
    p = np.asarray(ds.target.probs)
    assert abs(np.mean(x[:, 1] > 0.5) - p[:14].sum()) < 0.015
    assert abs(np.mean(x[:, 0] < 0.5) - p[:, :14].sum()) < 0.015


# --- image files ---------------------------------------------------------------------


def _grey():
    # Non-square, asymmetric: any flip or transpose shows.
    return np.array([[0, 10, 20, 30, 200], [50, 0, 0, 0, 0], [0, 0, 255, 0, 90]], np.uint8)


def test_png_grey(tmp_path):
    path = tmp_path / "g.png"
    Image.fromarray(_grey(), "L").save(path)
    ds = load(f"image:{path}")
    g = _grey().astype(np.float64)
    np.testing.assert_allclose(ds.target.probs, g / g.sum(), rtol=1e-5, atol=1e-8)
    assert ds.target.extent == (1.0, 0.6) and ds.spec == f"image:{path}"


def test_rgb_becomes_luma_and_invert(tmp_path):
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[1, 2] = (0, 0, 255)
    rgb[0, 2] = (0, 255, 0)
    path = tmp_path / "c.bmp"
    Image.fromarray(rgb, "RGB").save(path)
    luma = np.round(rgb @ np.array([0.299, 0.587, 0.114]))  # ITU-R 601-2
    ds = load(f"image:{path}")
    np.testing.assert_allclose(ds.target.probs, luma / luma.sum(), atol=2e-3)
    inv = 1 - np.asarray(Image.fromarray(rgb).convert("L"), np.float64) / 255
    np.testing.assert_allclose(load(f"image:{path},invert").target.probs, inv / inv.sum(), rtol=1e-5)


def test_alpha_is_composited_over_black_after_invert(tmp_path):
    la = np.zeros((2, 2, 2), np.uint8)
    la[..., 0] = [[255, 0], [255, 0]]
    la[..., 1] = [[255, 255], [0, 128]]  # bottom-left transparent, bottom-right half
    path = tmp_path / "a.png"
    Image.fromarray(la, "LA").save(path)
    p = np.asarray(load(f"image:{path}").target.probs)
    np.testing.assert_allclose(p, [[1, 0], [0, 0]], atol=1e-6)
    q = np.asarray(load(f"image:{path},invert").target.probs)
    w = 128 / 255
    np.testing.assert_allclose(q, np.array([[0, 1], [0, w]]) / (1 + w), atol=1e-6)


def test_16_bit_png(tmp_path):
    a = np.array([[0, 65535], [1000, 0]], np.uint16)
    path = tmp_path / "s.png"
    Image.fromarray(a).save(path)
    np.testing.assert_allclose(load(f"image:{path}").target.probs, a / a.sum(), rtol=1e-4)


def test_centres_option(tmp_path):
    path = tmp_path / "g.png"
    Image.fromarray(_grey(), "L").save(path)
    ds = load(f"image:{path},centres")
    assert ds.target.centres and ds.spec.endswith(",centres")
    x = _sample(ds, 200) * 5 - 0.5
    np.testing.assert_allclose(x, np.round(x), atol=1e-5)


@pytest.mark.parametrize("make, spec_suffix, match", [
    (lambda p: Image.fromarray(np.zeros((3, 4), np.uint8)).save(p), "", "zero total"),
    (lambda p: Image.fromarray(np.full((3, 4), 255, np.uint8)).save(p), ",invert", "zero total"),
    (lambda p: p.write_bytes(b"not an image at all"), "", "not an image"),
    (lambda p: None, "", "does not exist"),
])
def test_bad_image_files(tmp_path, make, spec_suffix, match):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(DataSpecError, match=match):
        load(f"image:{path}{spec_suffix}")


def test_image_from_array_errors_and_sampling():
    with pytest.raises(DataSpecError, match="negative"):
        from_image_array(np.array([[1.0, -0.5]]))
    with pytest.raises(DataSpecError, match="NaN"):
        from_image_array(np.array([[1.0, np.nan]]))
    ds = from_image_array(np.array([[0.0, 1.0]]))
    x = _sample(ds, 500)
    assert np.all((x[:, 0] >= 0.5) & (x[:, 0] <= 1.0) & (x[:, 1] >= 0) & (x[:, 1] <= 0.5))


# --- IDX files -----------------------------------------------------------------------


def _idx(images: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, images.ndim]) + b"".join(struct.pack(">I", d) for d in images.shape)
    return head + images.astype(np.uint8).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_idx_reader(tmp_path, compress):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(3, 4, 5)).astype(np.uint8)
    raw = _idx(imgs)
    path = tmp_path / ("imgs-idx3-ubyte" + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(raw) if compress else raw)
    ds = load(f"mnist-idx:{path},index=2")
    np.testing.assert_allclose(ds.target.probs, imgs[2] / imgs[2].sum(), rtol=1e-5)
    np.testing.assert_allclose(load(f"mnist-idx:{path}").target.probs, imgs[0] / imgs[0].sum(), rtol=1e-5)
    with pytest.raises(DataSpecError, match="out of range"):
        load(f"mnist-idx:{path},index=3")


def test_idx_errors(tmp_path):
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(_idx(np.arange(5, dtype=np.uint8)))
    with pytest.raises(DataSpecError, match="labels"):
        load(f"mnist-idx:{labels}")
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x89PNG....")
    with pytest.raises(DataSpecError, match="IDX header"):
        load(f"mnist-idx:{junk}")
    short = tmp_path / "short"
    short.write_bytes(_idx(np.zeros((2, 3, 3), np.uint8))[:-4])
    with pytest.raises(DataSpecError, match="truncated"):
        load(f"mnist-idx:{short}")


# --- point files ---------------------------------------------------------------------


def test_points_npy_sampled_uniformly_from_rows(tmp_path):
    pts = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "p.npy", pts)
    ds = load(f"points:{tmp_path / 'p.npy'}")
    assert ds.dim == 3 and ds.target is None
    x = _sample(ds, 8000)
    rows = (x[:, 0] / 3).astype(int)
    np.testing.assert_array_equal(x, pts[rows])
    counts = np.bincount(rows, minlength=4)
    assert np.all(np.abs(counts - 2000) < 5 * np.sqrt(8000 * 0.25 * 0.75))


def test_points_csv_with_header(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("x,y\n1.5,2\n-3,4e-1\n# comment\n0,0\n")
    ds = load(f"points:{path}")
    assert ds.dim == 2
    assert set(map(tuple, _sample(ds, 300).tolist())) == {(1.5, 2.0), (-3.0, 0.4000000059604645), (0.0, 0.0)}


@pytest.mark.parametrize("name, content, match", [
    ("a.npy", np.array([[1.0, np.nan]]), "NaN or inf"),
    ("b.npy", np.array([[1.0, np.inf]]), "NaN or inf"),
    ("c.npy", np.arange(4.0), "N x D"),
    ("d.npy", np.zeros((2, 2, 2)), "N x D"),
    ("e.csv", "1,2\n3\n", "different lengths"),
    ("f.csv", "1,2\nfoo,bar\n", "not comma-separated"),
    ("g.txt", "1,2\n", "extension"),
    ("h.csv", "1,nan\n", "NaN or inf"),
])
def test_bad_point_files(tmp_path, name, content, match):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    else:
        np.save(path, content)
    with pytest.raises(DataSpecError, match=match):
        load(f"points:{path}")


def test_points_missing_file(tmp_path):
    with pytest.raises(DataSpecError, match="does not exist"):
        load(f"points:{tmp_path / 'nope.npy'}")
    with pytest.raises(DataSpecError):
        from_points(np.zeros(3))


# --- toy sets ------------------------------------------------------------------------


def test_every_toy_set_samples_inside_jit():
    for name in TOY_NAMES:
        ds = load(f"toy:{name}")
        x = _sample(ds, 512, seed=1)
        assert x.shape == (512, 2) and x.dtype == np.float32 and np.all(np.isfinite(x)), name
        assert ds.spec == f"toy:{name}" and name in ds.describe()
        assert ds.has_exact_score == (name in ("8gaussians", "checkerboard", "ncsn-mixture"))


def test_ncsn_mixture_mode_weights():
    ds = load("toy:ncsn-mixture")
    assert isinstance(ds.target, GaussianMixture)
    x = _sample(ds, 20_000)
    frac = np.mean(x.sum(1) > 0)
    assert abs(frac - 0.8) < 5 * np.sqrt(0.16 / 20_000)
    np.testing.assert_allclose(x[x.sum(1) > 0].mean(0), [5, 5], atol=0.05)


def test_8gaussians_and_checkerboard_are_closed_form():
    ds = load("toy:8gaussians")
    x = _sample(ds, 16_000)
    ang = np.round(np.arctan2(x[:, 1], x[:, 0]) / (np.pi / 4)) % 8
    counts = np.bincount(ang.astype(int), minlength=8)
    assert np.all(np.abs(counts - 2000) < 5 * np.sqrt(16_000 / 8 * 7 / 8))
    cb = load("toy:checkerboard")
    assert isinstance(cb.target, Checkerboard)
    y = _sample(cb, 4000)
    i, j = np.floor((y + 4) / 2).astype(int).T
    assert np.all((i + j) % 2 == 0)


def test_unknown_toy():
    with pytest.raises(DataSpecError, match="toy:two-moons"):
        load("toy:three-moons")
