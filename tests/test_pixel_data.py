"""Images as points in pixel space (issue 13): specs, shapes, units, labels, bad input."""

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from scorefield import DataSpecError
from scorefield.data import data_fingerprint, load, parse_spec


def _idx(path, array, *, lie=None, gz=False):
    a = np.asarray(array)
    code = {np.uint8: 0x08, np.int32: 0x0C}[a.dtype.type]
    shape = lie if lie is not None else a.shape
    data = bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + a.astype(a.dtype.newbyteorder(">")).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)
    return str(path)


def test_bundled_digits_shapes_units_and_labels():
    d = load("mnist-digits")
    assert d.dim == 784 and d.image_shape == (1, 28, 28) and d.n_classes == 10
    pts = d.points
    assert pts.shape == (5000, 784) and pts.dtype == np.float32
    assert pts.min() == 0.0 and pts.max() == 1.0
    assert np.array_equal(np.bincount(d.labels), np.full(10, 500))
    # row 2500 is MNIST training image 0 (the reference "5"), the same pixels as the 2-D reading
    from scorefield.data import mnist_image

    assert d.labels[2500] == 5
    np.testing.assert_allclose(pts[2500].reshape(28, 28), mnist_image(), atol=1e-7)


def test_one_label_and_downsampling_are_block_means():
    full = load("mnist-digits:label=7").points.reshape(-1, 28, 28)
    small = load("mnist-digits:label=7,size=7")
    assert small.dim == 49 and small.image_shape == (1, 7, 7) and small.n_classes == 0
    assert np.all(small.labels == 7)
    np.testing.assert_allclose(small.points.reshape(-1, 7, 7), full.reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4)), atol=1e-6)
    x, y = small.sample_labelled(__import__("jax").random.PRNGKey(0), 16)
    assert x.shape == (16, 49) and np.all(np.asarray(y) == 7)


@pytest.mark.parametrize("spec", ["mnist-digits", "mnist-digits:label=3", "mnist-digits:label=3,size=14",
                                  "mnist-digits:size=7", "mnist-digits-idx:a\\,b.idx,labels=l.idx,size=14",
                                  "image-folder:some/dir"])
def test_specs_round_trip(spec):
    ds = parse_spec(spec)
    assert parse_spec(str(ds)) == ds and ds.pixels
    assert str(parse_spec("mnist-digits:size=28")) == "mnist-digits"


@pytest.mark.parametrize("spec,match", [
    ("mnist-digits:label=10", "label=10 is out of range"),
    ("mnist-digits:label=-1", "out of range"),
    ("mnist-digits:size=9", "size=9 is not one of 4, 7, 14, 28"),
    ("mnist-digits:index=3", "unknown option"),
    ("mnist-digits-idx:", "needs an IDX image file"),
    ("image-folder:", "needs a folder"),
])
def test_bad_specs_one_line(spec, match):
    with pytest.raises(DataSpecError, match=match) as e:
        load(spec)
    assert "\n" not in str(e.value)


def test_idx_images_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (6, 8, 8), dtype=np.uint8)
    labs = np.array([0, 1, 2, 3, 4, 5], np.uint8)
    ip, lp = _idx(tmp_path / "i.idx", imgs, gz=True), _idx(tmp_path / "l.idx", labs)
    d = load(f"mnist-digits-idx:{ip},labels={lp}")
    assert d.dim == 64 and d.image_shape == (1, 8, 8) and d.n_classes == 10
    np.testing.assert_allclose(d.points.reshape(-1, 8, 8), imgs / 255.0, atol=1e-7)
    assert np.array_equal(d.labels, labs)
    assert load(f"mnist-digits-idx:{ip}").labels is None
    small = load(f"mnist-digits-idx:{ip},size=4")
    np.testing.assert_allclose(small.points.reshape(-1, 4, 4), (imgs / 255.0).reshape(6, 4, 2, 4, 2).mean(axis=(2, 4)), atol=1e-6)
    fp = data_fingerprint(f"mnist-digits-idx:{ip},labels={lp}")
    assert fp["bytes"] == (tmp_path / "i.idx").stat().st_size + (tmp_path / "l.idx").stat().st_size


def test_idx_header_lying_about_size_is_refused(tmp_path):
    imgs = np.zeros((4, 8, 8), np.uint8)
    imgs[:, 2:6, 2:6] = 200
    longer = _idx(tmp_path / "long.idx", imgs, lie=(3, 8, 8))
    shorter = _idx(tmp_path / "short.idx", imgs, lie=(5, 8, 8))
    for p in (longer, shorter):
        with pytest.raises(DataSpecError, match="header") as e:
            load(f"mnist-digits-idx:{p}")
        assert "\n" not in str(e.value)
    labs = _idx(tmp_path / "l.idx", np.array([1, 2, 3], np.uint8))
    with pytest.raises(DataSpecError, match="one label per image"):
        load(f"mnist-digits-idx:{_idx(tmp_path / 'ok.idx', imgs)},labels={labs}")
    bad = _idx(tmp_path / "bad.idx", np.array([1, 2, 3, 12], np.uint8))
    with pytest.raises(DataSpecError, match="labels outside 0..9"):
        load(f"mnist-digits-idx:{tmp_path / 'ok.idx'},labels={bad}")


def test_image_folder(tmp_path):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (3, 5, 7), dtype=np.uint8)
    for i, a in enumerate(imgs):
        Image.fromarray(a, "L").save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    d = load(f"image-folder:{tmp_path}")
    assert d.image_shape == (1, 5, 7) and d.dim == 35 and d.labels is None and d.n_classes == 0
    np.testing.assert_allclose(d.points.reshape(-1, 5, 7), imgs / 255.0, atol=1e-7)
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    c = rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    for i, a in enumerate(c):
        Image.fromarray(a, "RGB").save(rgb / f"{i}.png")
    d = load(f"image-folder:{rgb}")
    assert d.image_shape == (3, 4, 4)
    np.testing.assert_allclose(d.points.reshape(-1, 3, 4, 4), np.moveaxis(c, -1, 1) / 255.0, atol=1e-7)


def test_image_folder_of_mixed_sizes_is_refused(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(DataSpecError, match="mixes image sizes") as e:
        load(f"image-folder:{tmp_path}")
    assert "\n" not in str(e.value)
    with pytest.raises(DataSpecError, match="not a directory"):
        load(f"image-folder:{tmp_path / 'nothing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataSpecError, match="no .png files"):
        load(f"image-folder:{tmp_path / 'empty'}")
