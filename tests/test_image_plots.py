"""Figures of image runs (issue 13): the denoising animation and samples beside their
nearest training images."""

import numpy as np
import pytest

from scorefield.metrics import nearest_neighbours
from scorefield.plot import denoising_frames, nearest_pairs, write_denoising


def test_nearest_neighbours_finds_the_true_nearest_row_and_its_distance():
    rng = np.random.default_rng(0)
    b = rng.uniform(0, 1, (700, 9)).astype(np.float32)
    a = rng.uniform(0, 1, (40, 9)).astype(np.float32)
    a[:5] = b[[3, 600, 42, 42, 699]] + 1e-3  # near-copies of known rows
    index, dist = nearest_neighbours(a, b, block=16)  # several blocks
    d_all = np.sqrt(((a[:, None, :].astype(np.float64) - b[None]) ** 2).sum(-1))
    np.testing.assert_array_equal(index, np.argmin(d_all, axis=1))
    np.testing.assert_allclose(dist, d_all.min(axis=1), rtol=1e-4, atol=1e-4)
    assert index[:5].tolist() == [3, 600, 42, 42, 699] and np.all(dist[:5] < 0.01)
    # a set against itself: never its own row
    i_self, d_self = nearest_neighbours(b[:50], b[:50], exclude_self=True)
    assert np.all(i_self != np.arange(50)) and np.all(d_self > 0)


def test_denoising_frames_draw_each_image_upright_in_image_units_with_a_progress_bar():
    # 3 images of 2x3 pixels over 5 recorded steps; image 1 has its top row white
    traj = np.zeros((5, 3, 6), np.float32)
    traj[:, 1, :3] = 1.0
    traj[0] = 2.0  # the start (noise) leaves [0, 1]: clipped to white
    frames = denoising_frames(traj, (1, 2, 3), columns=2, scale=2)
    assert len(frames) == 5 and all(f.dtype == np.uint8 for f in frames)
    # canvas: 2 rows of (2 + 1) + 1 pad, bar of max(1, 2 // 4) = 1 row; 2 columns of (3 + 1) + 1; x2
    assert frames[-1].shape == ((2 * 3 + 1 + 1) * 2, (2 * 4 + 1) * 2, 3)
    last = frames[-1][::2, ::2, 0]  # one value per canvas pixel
    assert np.all(last[1, 5:8] == 255) and np.all(last[2, 5:8] == 0)  # image 1 (row 0, column 1) upright
    assert np.all(last[1:3, 1:4] == 0)  # image 0: black
    assert np.all(last[0, :] == 128)  # grey padding
    assert np.all(frames[0][::2, ::2][1:3, 1:4] == 255)  # the start, clipped
    bar = [f[::2, ::2, 0][-1] for f in frames]
    assert np.all(bar[0] == 0) and np.all(bar[-1] == 255) and 0 < np.mean(bar[2] == 255) < 1
    assert len(denoising_frames(np.zeros((100, 2, 6)), (1, 2, 3), max_frames=7)) == 7
    with pytest.raises(Exception, match="must be"):
        denoising_frames(np.zeros((4, 2, 5)), (1, 2, 3))


def test_write_denoising_writes_a_gif_ending_on_the_samples(tmp_path):
    from PIL import Image

    traj = np.linspace(0, 1, 4)[:, None, None] * np.ones((4, 2, 16), np.float32)
    write_denoising(traj, (1, 4, 4), tmp_path / "d.gif", fps=5, scale=3)
    im = Image.open(tmp_path / "d.gif")
    assert im.n_frames >= 4  # (Pillow merges the repeats of the last frame into one longer frame)
    im.seek(im.n_frames - 1)
    rgb = np.asarray(im.convert("RGB"))
    # one row of two 4x4 images with padding, a bar of one row; the samples are white
    assert rgb.shape == ((4 + 1 + 1 + 1) * 3, (2 * 5 + 1) * 3, 3) and rgb[3 * 1 + 1, 3 * 1 + 1, 0] == 255
    im.seek(0)
    assert np.asarray(im.convert("RGB"))[3 * 1 + 1, 3 * 1 + 1, 0] == 0  # the first frame: black


def test_nearest_pairs_puts_the_sample_left_of_its_neighbour_with_the_distance():
    x = np.zeros((3, 4), np.float32)
    y = np.zeros((3, 4), np.float32)
    x[0, 0] = 1.0  # sample 0: top-left pixel white
    y[0, 3] = 1.0  # its neighbour: bottom-right pixel white
    fig = nearest_pairs(x, y, np.array([0.5, 1.25, 2.0]), (1, 2, 2), pairs_per_row=2, threshold=1.0)
    ax = fig.axes[0]
    canvas = ax.images[0].get_array()
    cell = 2 * 2 + 1 + 1  # two images, one pixel between them, a gap of max(1, w // 2)
    assert canvas.shape == (2 * 3 + 1, 2 * cell + 1)
    assert canvas[1, 1] == 1.0 and canvas[2, 2] == 0.0  # the sample, upright
    assert canvas[2, 1 + 2 + 1 + 1] == 1.0 and canvas[1, 1 + 2 + 1] == 0.0  # its neighbour, right of it
    texts = {t.get_text(): t.get_color() for t in ax.texts}
    assert texts == {"0.50": "red", "1.25": "yellow", "2.00": "yellow"}  # red: a near-copy


def test_cli_image_kinds_refuse_misuse_in_one_line_before_any_work(tmp_path):
    import json

    from _cli import cli

    toy = tmp_path / "toy"
    toy.mkdir()
    (toy / "config.json").write_text(json.dumps({"data": "toy:8gaussians", "dim": 2}))
    r = cli("plot", "nearest", "--run", "toy", "--out", "n.png", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "image data" in r.stderr
    img = tmp_path / "img"
    img.mkdir()
    (img / "config.json").write_text(json.dumps({"data": "mnist-digits:size=4", "dim": 16, "image_shape": [1, 4, 4]}))
    for args, words in [(("animate", "--out", "a.png"), ".gif"), (("nearest", "--out", "n.gif"), ".png"),
                        (("animate", "--samples", "s.npy", "--out", "a.gif"), "--samples")]:
        r = cli("plot", *args, "--run", "img", cwd=tmp_path)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and words in r.stderr, r.stderr
