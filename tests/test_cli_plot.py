"""`scorefield plot KIND --run RUN --out FILE` on a tiny run trained here (seconds)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from scorefield.cli import main

KINDS = ("field", "loss", "samples", "target", "anneal")
IMAGE_KINDS = ("field", "loss", "samples", "anneal")


def asym_image(path):
    # Bright block top-left, dim block bottom-right, wider than tall: any flip or
    # transpose of the picture changes where the mass is.
    img = np.zeros((8, 12), np.uint8)
    img[1:4, 1:5] = 255
    img[5:7, 8:11] = 100
    Image.fromarray(img).save(path)
    return img


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from scorefield.train import preset, train

    root = tmp_path_factory.mktemp("plotrun")
    asym_image(root / "asym.png")
    cfg = preset(
        "fast", data=f"image:{root / 'asym.png'}", width=16, depth=2, n_features=8, n_levels=6,
        batch_size=64, steps=20, steps_per_call=10, log_every=5, checkpoint_every=20, seed=0,
    )
    train(cfg, root / "run", progress=False)
    return root


def with_data(src, dst, spec):
    """A copy of run `src` whose data spec is `spec`: the same 2-D model over other data,
    without paying for another training run."""
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["data"] = spec
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


@pytest.fixture(scope="module")
def toy_run(tiny_run):
    # ncsn-mixture: 0.2 N((-5, -5), I) + 0.8 N((5, 5), I), a closed-form density.
    return with_data(tiny_run / "run", tiny_run / "toy-run", "toy:ncsn-mixture")


def run_cli(*argv):
    return main(["plot", *map(str, argv)])


def looks_like_a_figure(path, min_side=200):
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert min(im.size) >= min_side
        rgb = np.asarray(im.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 20  # not blank, not one colour


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_writes_a_figure(tiny_run, toy_run, kind, tmp_path, capsys):
    run = tiny_run / "run" if kind in IMAGE_KINDS else toy_run
    out = tmp_path / f"{kind}.png"
    code = run_cli(kind, "--run", run, "--out", out, "--n", 200, "--steps-per-level", 3, "--dpi", 60)
    assert code == 0, capsys.readouterr().err
    looks_like_a_figure(out, min_side=150)
    assert f"wrote {out}" in capsys.readouterr().out


def test_density_figure_draws_the_exact_target(toy_run):
    import argparse

    from matplotlib.quiver import Quiver

    from scorefield.cli._plot import _density
    from scorefield.data import load

    fig = _density(argparse.Namespace(kind="density", sigma=None), toy_run)
    ax = fig.axes[0]
    (q,) = [c for c in ax.collections if isinstance(c, Quiver)]
    target = load("toy:ncsn-mixture").target
    xy = q.get_offsets()
    want = np.stack([np.asarray(target.score(np.asarray(p, np.float32))) for p in xy])
    np.testing.assert_allclose(np.stack([q.U, q.V], -1), want, rtol=1e-3, atol=1e-3)
    # The heavy mode (5, 5) is inside the view, which is square and shows x right, y up.
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < 5 < x1 and y0 < 5 < y1 and x0 < x1 and y0 < y1
    assert (x1 - x0) == pytest.approx(y1 - y0)


def test_animate_writes_a_gif(tiny_run, tmp_path):
    out = tmp_path / "a.gif"
    assert run_cli("animate", "--run", tiny_run / "run", "--out", out, "--n", 30, "--steps-per-level", 3) == 0
    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames >= 6  # start, every level, samples


def exact_draws(monkeypatch, points):
    """Replace the sampler by given points: these tests are about the figure, and the
    end-to-end sampling path is covered above."""
    import types

    monkeypatch.setattr(
        "scorefield.cli._plot._draw",
        lambda r, n, args, trajectory_every: types.SimpleNamespace(samples=np.asarray(points)[:n]),
    )


def test_samples_figure_shows_the_image_upright(tiny_run, monkeypatch):
    import argparse

    from scorefield.cli._plot import _samples

    exact_draws(monkeypatch, np.tile([[0.1, 0.55]], (100, 1)))  # inside pixel (1, 1): top left
    args = argparse.Namespace(kind="samples", n=100, steps_per_level=2, seed=0, ema=True, bins=None)
    fig = _samples(args, tiny_run / "run")
    assert "100 fresh samples" in fig.texts[0].get_text()
    hist = np.asarray(fig.axes[1].images[0].get_array())
    assert hist[1, 1] == hist.max() > 0 and np.count_nonzero(hist) == 1
    assert "hist_tv" in fig.texts[0].get_text()
    im = fig.axes[0].images[0]
    probs = asym_image(tiny_run / "check.png").astype(float)
    probs /= probs.sum()
    shown = np.asarray(im.get_array())
    assert im.origin == "upper" and tuple(im.get_extent()) == pytest.approx((0, 1, 0, 8 / 12))
    cell = (1 / 12) ** 2
    np.testing.assert_allclose(shown * cell, probs, atol=2e-3)  # PNG intensities are 8-bit
    assert hist.shape == (8, 12)  # the image's own grid


def test_point_data_without_a_density(tiny_run, tmp_path, capsys, monkeypatch):
    # The same model over point data: 'samples' compares histograms, 'target' has none.
    exact_draws(monkeypatch, np.random.default_rng(1).uniform(0, 1, (100, 2)))
    np.save(tmp_path / "pts.npy", np.random.default_rng(0).uniform(0, 1, (300, 2)).astype(np.float32))
    run = with_data(tiny_run / "run", tmp_path / "points-run", f"points:{tmp_path / 'pts.npy'}")
    assert run_cli("samples", "--run", run, "--out", tmp_path / "s.png", "--n", 100, "--steps-per-level", 2) == 0
    looks_like_a_figure(tmp_path / "s.png")
    capsys.readouterr()
    assert run_cli("target", "--run", run, "--out", tmp_path / "d.png") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no closed-form density" in err


def test_data_of_other_dimensions_get_a_pair_plot(tiny_run, tmp_path, capsys):
    """A 3-D point cloud: 'samples' draws a 3x3 pair plot (samples over data) and 'anneal'
    the clouds on the data's two principal axes; 'field' and 'density' stay 2-D only."""
    from scorefield.train import preset, train

    rng = np.random.default_rng(0)
    pts = (rng.normal(size=(400, 3)) * [3.0, 1.0, 0.2] + [1.0, -2.0, 0.5]).astype(np.float32)
    np.save(tmp_path / "p3.npy", pts)
    cfg = preset("fast", data=f"points:{tmp_path / 'p3.npy'}", width=16, depth=1, n_features=8, n_levels=4,
                 batch_size=32, steps=10, steps_per_call=10, log_every=5, checkpoint_every=10, seed=0)
    train(cfg, tmp_path / "run3", progress=False)
    run = tmp_path / "run3"
    for kind in ("field", "density"):
        assert run_cli(kind, "--run", run, "--out", tmp_path / "f.png") == 2
        assert "holds 3-D data" in capsys.readouterr().err
    np.save(tmp_path / "s3.npy", pts[:50] + 0.01)
    assert run_cli("samples", "--run", run, "--samples", tmp_path / "s3.npy", "--out", tmp_path / "s.png") == 0
    looks_like_a_figure(tmp_path / "s.png")
    assert run_cli("anneal", "--run", run, "--out", tmp_path / "a.png", "--n", 50, "--steps-per-level", 2) == 0
    looks_like_a_figure(tmp_path / "a.png")
    assert run_cli("loss", "--run", run, "--out", tmp_path / "l.png") == 0  # any run has a loss
    capsys.readouterr()
    np.save(tmp_path / "s2.npy", pts[:50, :2])
    assert run_cli("samples", "--run", run, "--samples", tmp_path / "s2.npy", "--out", tmp_path / "s.png") == 2
    assert "2 columns but the data is 3-D" in capsys.readouterr().err


def test_pair_plot_shows_each_pair_of_coordinates():
    from scorefield.plot import pair_plot, principal_axes

    rng = np.random.default_rng(1)
    data = rng.normal(size=(300, 3)) * [1.0, 2.0, 3.0]
    samples = data[:40] + 0.1
    fig = pair_plot(data, samples)
    axs = np.asarray(fig.axes).reshape(3, 3)
    np.testing.assert_allclose(axs[2, 0].collections[1].get_offsets(), samples[:, [0, 2]])  # x0 across, x2 up
    np.testing.assert_allclose(axs[2, 0].collections[0].get_offsets(), data[:, [0, 2]])
    assert not axs[0, 2].axison and axs[2, 1].get_xlabel() == "x1" and axs[1, 0].get_ylabel() == "x1"
    assert "40 samples" not in fig.texts[0].get_text() and "(40)" in fig.texts[0].get_text()
    # Six coordinates: the first four principal components, the largest variance first.
    big = rng.normal(size=(2000, 6)) * [0.1, 5.0, 0.2, 0.3, 2.0, 0.05]
    mean, axes = principal_axes(big, 2)
    assert abs(axes[1, 0]) > 0.99 and abs(axes[4, 1]) > 0.99
    fig = pair_plot(big, big[:100])
    assert len(fig.axes) == 16 and fig.axes[12].get_xlabel() == "PC1"
    with pytest.raises(Exception, match="same D"):
        pair_plot(big, samples)


def test_samples_figure_draws_a_given_sample_file_and_names_it(tiny_run, tmp_path, capsys):
    pts = np.tile(np.float32([[0.1, 0.55]]), (123, 1))  # all in pixel (1, 1), top left
    np.save(tmp_path / "mine.npy", pts)
    import argparse

    from scorefield.cli._plot import _samples

    args = argparse.Namespace(kind="samples", n=None, steps_per_level=2, seed=0, ema=True, bins=None,
                              samples=str(tmp_path / "mine.npy"))
    fig = _samples(args, tiny_run / "run")
    hist = np.asarray(fig.axes[1].images[0].get_array())
    assert hist[1, 1] == hist.max() > 0 and np.count_nonzero(hist) == 1
    title = fig.texts[0].get_text()
    assert "123 samples from mine.npy" in title and "hist_tv" in title
    assert run_cli("field", "--run", tiny_run / "run", "--samples", tmp_path / "mine.npy", "--out", tmp_path / "f.png") == 2
    assert "--samples applies to 'plot samples' only" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["field", "--run", "{missing}", "--out", "{tmp}/f.png"], "not a scorefield run directory"),
        (["field", "--run", "{run}", "--out", "{tmp}/f.gif"], "must end in one of .png"),
        (["animate", "--run", "{run}", "--out", "{tmp}/a.png"], "must end in one of .gif, .mp4"),
        (["field", "--run", "{run}", "--out", "{tmp}/f.png", "--levels", "0,99"], "levels"),
        (["field", "--run", "{run}", "--out", "{tmp}/f.png", "--levels", "a,b"], "level indices"),
        (["nope", "--run", "{run}", "--out", "{tmp}/f.png"], "invalid choice"),
        (["samples", "--run", "{run}", "--out", "{tmp}/f.png", "--n", "0"], "positive integer"),
        (["density", "--run", "{run}", "--out", "{tmp}/f.png", "--resolution", "0"], "from 2 to 4096"),
        (["density", "--run", "{run}", "--out", "{tmp}/f.png", "--resolution", "4097"], "from 2 to 4096"),
        (["density", "--run", "{run}", "--out", "{tmp}/f.png", "--exact", "toy:2spirals"], "no closed-form 2-D density"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_run, tmp_path, capsys, argv, message):
    fill = dict(missing=tmp_path / "nope", run=tiny_run / "run", tmp=tmp_path)
    argv = [a.format(**fill) for a in argv]
    try:
        code = run_cli(*argv)
    except SystemExit as e:  # argparse usage errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err


def test_density_map_of_the_model_beside_the_exact_image(tiny_run, tmp_path, capsys):
    out = tmp_path / "d.png"
    assert run_cli("density", "--run", tiny_run / "run", "--out", out, "--resolution", 12) == 0
    looks_like_a_figure(out)
    text = capsys.readouterr().out
    assert "model density integrates to" in text and "12x8 cells" in text and "the exact one to" in text


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as e:
        main(["plot", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "scorefield plot field --run" in out and all(k in out for k in KINDS)
