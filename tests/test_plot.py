"""Figures: pixel sizes, non-blank renders, upright orientation of image data, and the
plotted arrays equal to known truth (closed-form scores, exact pixel masses)."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.quiver import Quiver
from PIL import Image

from scorefield._errors import InputError
from scorefield import plot as sp
from scorefield.plot._animate import frame_indices
from scorefield.plot._grid import parse_lims

MU = jnp.array([0.6, -0.3])  # off-centre and asymmetric on purpose
S0 = 0.3


def gauss_logp(x):
    return -0.5 * jnp.sum((x - MU) ** 2) / S0**2


def gauss_smoothed_score(x, sigma):
    return -(x - MU) / (S0**2 + sigma**2)


def exact_image_samples(probs, n, seed):
    """Exact iid samples of the piecewise-constant image density in SPEC coordinates."""
    rng = np.random.default_rng(seed)
    H, W = probs.shape
    m = max(H, W)
    p = probs / probs.sum()
    r, c = np.divmod(rng.choice(p.size, n, p=p.ravel()), W)
    return np.stack([(c + rng.random(n)) / m, (H - 1 - r + rng.random(n)) / m], axis=1)


def is_not_blank(rgba):
    return len(np.unique(rgba[..., :3].reshape(-1, 3), axis=0)) > 10


# --- upright histograms -----------------------------------------------------------------


def test_top_left_pixel_lands_top_left_in_displayed_array():
    H, W = 3, 5  # non-square: rows and columns cannot be swapped unnoticed
    probs = np.zeros((H, W))
    probs[0, 0] = 1.0
    pts = exact_image_samples(probs, 500, seed=0)
    assert np.all(pts[:, 1] >= 2 / 5) and np.all(pts[:, 0] <= 1 / 5)  # SPEC: top row is high y
    hist, extent = sp.upright_histogram(pts, extent=sp.image_extent(H, W), bins=(W, H))
    assert hist.shape == (H, W)
    assert extent == (0.0, 1.0, 0.0, 0.6)
    expected = np.zeros((H, W))
    expected[0, 0] = 1.0
    np.testing.assert_array_equal(hist, expected)


def test_histogram_of_exact_samples_matches_asymmetric_image():
    probs = np.array([[4.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]])
    n = 20_000
    hist, _ = sp.upright_histogram(exact_image_samples(probs, n, 1), extent=sp.image_extent(3, 4), bins=(4, 3))
    p = probs / probs.sum()
    # Each cell is a binomial fraction: 5 standard deviations is a safe, seeded bound.
    assert np.all(np.abs(hist - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12)
    assert hist.sum() == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(H=st.integers(1, 7), W=st.integers(1, 7), data=st.data())
def test_pixel_centre_lands_in_its_own_cell(H, W, data):
    r = data.draw(st.integers(0, H - 1))
    c = data.draw(st.integers(0, W - 1))
    m = max(H, W)
    centre = np.array([[(c + 0.5) / m, (H - 1 - r + 0.5) / m]])
    hist, _ = sp.upright_histogram(centre, extent=sp.image_extent(H, W), bins=(W, H))
    assert hist.shape == (H, W)
    assert hist[r, c] == 1.0 and hist.sum() == 1.0


def test_int_bins_keep_square_cells_and_points_outside_are_counted_out():
    pts = np.array([[0.15, 0.05], [5.0, 5.0]])
    hist, _ = sp.upright_histogram(pts, extent=(0.0, 1.0, 0.0, 0.5), bins=10)
    assert hist.shape == (5, 10)
    assert hist.sum() == pytest.approx(0.5)
    assert hist[4, 1] == pytest.approx(0.5)  # y=0.05 is in the bottom row


@pytest.mark.parametrize("bins", [0, (3, 0), "x", (1, 2, 3)])
def test_bad_bins_raise_input_error(bins):
    with pytest.raises(InputError, match="bins"):
        sp.upright_histogram(np.zeros((3, 2)), bins=bins)


def test_image_vs_samples_shows_image_and_samples_upright():
    H, W = 6, 9
    probs = np.zeros((H, W))
    probs[0, 0] = 1.0  # only the top-left pixel
    fig = sp.image_vs_samples(probs, exact_image_samples(probs, 2000, 2))
    ax_img, ax_hist = fig.axes[0], fig.axes[1]
    for ax in (ax_img, ax_hist):
        im = ax.images[0]
        arr = np.asarray(im.get_array())
        assert arr.shape == (H, W)
        assert im.origin == "upper"
        assert tuple(im.get_extent()) == pytest.approx((0.0, 1.0, 0.0, H / W))
        assert np.unravel_index(np.argmax(arr), arr.shape) == (0, 0)
        assert np.count_nonzero(arr) == 1
        assert ax.get_ylim()[0] < ax.get_ylim()[1]  # y points up; never an empty range
    # And on screen: the bright cell is at the top left of the histogram panel.
    rgba = sp.figure_to_array(fig)
    bb = ax_hist.get_window_extent()
    rows = rgba.shape[0] - np.array([bb.y1, bb.y0]).round().astype(int)  # buffer row 0 is the top
    panel = rgba[rows[0] : rows[1], int(bb.x0) : int(bb.x1), :3].astype(float).sum(-1)
    h, w = panel.shape
    top_left = panel[: h // 4, : w // 4].mean()
    for quad in (panel[-h // 4 :, : w // 4], panel[: h // 4, -w // 4 :], panel[-h // 4 :, -w // 4 :]):
        assert top_left > quad.mean() + 50


def test_density_vs_samples_shows_density_upright():
    rng = np.random.default_rng(3)
    samples = np.asarray(MU) + S0 * rng.normal(size=(4000, 2))
    fig = sp.density_vs_samples(gauss_logp, samples, lims=(-1, 1), grid=41, bins=20)
    (x0, x1, y0, y1) = fig.axes[0].images[0].get_extent()
    for ax in fig.axes[:2]:
        im = ax.images[0]
        arr = np.asarray(im.get_array())
        assert im.origin == "upper"
        r, c = np.unravel_index(np.argmax(np.asarray(arr)), arr.shape)
        # Peak at MU = (0.6, -0.3): right of centre, below the middle row.
        x = x0 + (c + 0.5) * (x1 - x0) / arr.shape[1]
        y = y1 - (r + 0.5) * (y1 - y0) / arr.shape[0]
        assert abs(x - 0.6) < 0.25 and abs(y + 0.3) < 0.25
    dens = np.asarray(fig.axes[0].images[0].get_array())
    assert dens.mean() * 4.0 == pytest.approx(1.0)  # normalised over the plotted square
    # Entry (r, c) is the density at the centre of its cell, row 0 at the top.
    centres = -1 + (np.arange(41) + 0.5) * 2 / 41
    X, Y = np.meshgrid(centres, centres[::-1], indexing="xy")
    want = np.exp(-0.5 * ((X - 0.6) ** 2 + (Y + 0.3) ** 2) / S0**2)
    np.testing.assert_allclose(dens, want / (want.mean() * 4.0), rtol=1e-4, atol=1e-6)


# --- score fields -----------------------------------------------------------------------


def quivers(ax):
    return [c for c in ax.collections if isinstance(c, Quiver)]


def test_density_and_score_arrows_are_the_exact_score():
    fig = sp.density_and_score(gauss_logp, lims=(-1, 1), grid=30, arrows=6)
    (q,) = quivers(fig.axes[0])
    xy = q.get_offsets()
    uv = np.stack([q.U, q.V], -1)
    np.testing.assert_allclose(uv, -(xy - np.asarray(MU)) / S0**2, rtol=1e-4, atol=1e-4)
    assert len(xy) == 36
    assert is_not_blank(sp.figure_to_array(fig))


def test_density_and_score_uses_noise_conditional_score_at_sigma():
    fig = sp.density_and_score(gauss_logp, gauss_smoothed_score, sigma=0.4, arrows=4, grid=20)
    (q,) = quivers(fig.axes[0])
    xy = q.get_offsets()
    np.testing.assert_allclose(np.stack([q.U, q.V], -1), -(xy - np.asarray(MU)) / (S0**2 + 0.16), rtol=1e-4)


def test_vector_field_grid_one_panel_per_level_with_the_score_at_its_sigma():
    sigmas = np.geomspace(1.0, 1e-2, 30)
    fig = sp.vector_field_grid(gauss_smoothed_score, sigmas, lims=(0, 1), arrows=5)
    panels = [ax for ax in fig.axes if ax.get_visible() and quivers(ax)]
    assert sp.default_levels(30) == [0, 3, 6, 9, 12, 15, 18, 21, 24]
    assert len(panels) == 9
    for ax, level in zip(panels, sp.default_levels(30)):
        (q,) = quivers(ax)
        xy = q.get_offsets()
        want = -(xy - np.asarray(MU)) / (S0**2 + sigmas[level] ** 2)
        np.testing.assert_allclose(np.stack([q.U, q.V], -1), want, rtol=1e-4, atol=1e-5)
        assert f"level {level}" in ax.get_title()
    assert sp.default_levels(5) == [0, 1, 2, 3, 4]


def test_vector_field_grid_rejects_levels_out_of_range():
    with pytest.raises(InputError, match="levels"):
        sp.vector_field_grid(gauss_smoothed_score, [1.0, 0.1], levels=[0, 2])


# --- paths, animations ------------------------------------------------------------------


def test_paths_draws_each_particle_path():
    rng = np.random.default_rng(4)
    traj = np.cumsum(0.05 * rng.normal(size=(30, 3, 2)), axis=0)
    fig = sp.paths(traj, background=gauss_logp, lims=(-1.5, 1.5), grid=30)
    ax = fig.axes[0]
    long_lines = [ln for ln in ax.lines if len(ln.get_xdata()) == 30]
    assert len(long_lines) == 3
    for j, ln in enumerate(long_lines):
        np.testing.assert_allclose(ln.get_xydata(), traj[:, j])
    assert ax.get_aspect() == 1.0
    one = sp.paths(traj[:, 0], lims=(-1, 1))  # a single (T, 2) path
    assert "one particle over 29 steps" in one.axes[0].get_title()


def test_png_has_expected_pixel_size_and_is_not_blank(tmp_path):
    fig = sp.paths(np.zeros((5, 2)), background=gauss_logp, grid=20)
    fig.set_size_inches(4.0, 3.0)
    out = sp.save_figure(fig, tmp_path / "sub" / "p.png", dpi=50)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (200, 150)
        assert is_not_blank(np.asarray(im.convert("RGBA")))
    with pytest.raises(InputError, match="suffix"):
        sp.save_figure(fig, tmp_path / "p.txt")


def test_gif_has_one_frame_per_step_of_expected_size(tmp_path):
    rng = np.random.default_rng(5)
    traj = np.cumsum(0.1 * rng.normal(size=(12, 3, 2)), axis=0)
    out = sp.animate_particles(traj, tmp_path / "a.gif", background=gauss_logp, size=(3.0, 2.5), dpi=40, fps=10)
    with Image.open(out) as im:
        assert im.format == "GIF" and im.size == (120, 100) and im.n_frames == 12
        frames = []
        for k in range(im.n_frames):
            im.seek(k)
            frames.append(np.asarray(im.convert("RGB")))
    assert is_not_blank(frames[0])
    assert not np.array_equal(frames[0], frames[-1])  # particles moved


def test_long_trajectories_are_subsampled_to_max_frames(tmp_path):
    traj = np.linspace(-1, 1, 100)[:, None, None] * np.ones((1, 2, 2))
    out = sp.animate_particles(traj, tmp_path / "b.gif", max_frames=7, size=(2, 2), dpi=30)
    with Image.open(out) as im:
        assert im.n_frames == 7


@settings(max_examples=50, deadline=None)
@given(T=st.integers(1, 500), F=st.integers(1, 60))
def test_frame_indices_cover_start_and_end(T, F):
    idx = frame_indices(T, F)
    assert idx[-1] == T - 1 and (idx[0] == 0 or F == 1)
    assert len(idx) == min(T, F)
    assert np.all(np.diff(idx) > 0)


def test_mp4_without_ffmpeg_is_a_clear_input_error(tmp_path, monkeypatch):
    monkeypatch.setattr("scorefield.plot._animate.find_ffmpeg", lambda: None)
    with pytest.raises(InputError, match="ffmpeg"):
        sp.animate_particles(np.zeros((3, 2)), tmp_path / "a.mp4")
    with pytest.raises(InputError, match=".gif or .mp4"):
        sp.animate_particles(np.zeros((3, 2)), tmp_path / "a.avi")


@pytest.mark.skipif(sp.find_ffmpeg() is None, reason="no ffmpeg on this machine")
def test_mp4_is_written_when_ffmpeg_exists(tmp_path):
    out = sp.animate_particles(np.zeros((5, 1, 2)), tmp_path / "a.mp4", size=(2, 2), dpi=33)
    assert out.stat().st_size > 0


@pytest.mark.parametrize("bad", [np.zeros((4, 3)), np.zeros((0, 2)), np.zeros((2, 2, 2, 2))])
def test_bad_trajectory_shapes_raise_input_error(bad, tmp_path):
    with pytest.raises(InputError, match="shape|empty"):
        sp.paths(bad)


# --- annealing, loss --------------------------------------------------------------------


def test_annealing_strip_shows_selected_levels():
    rng = np.random.default_rng(6)
    sig = np.geomspace(1, 0.01, 10)
    traj = np.stack([0.5 + s * rng.normal(size=(200, 2)) for s in sig])
    fig = sp.annealing_strip(traj, sig, lims=(0, 1), max_panels=4)
    assert len(fig.axes) == 4
    for ax, level in zip(fig.axes, [0, 3, 6, 9]):
        np.testing.assert_allclose(ax.collections[-1].get_offsets(), traj[level])
        assert f"level {level}" in ax.get_title()
    with pytest.raises(InputError, match="one sigma per level"):
        sp.annealing_strip(traj, sig[:3])


def test_loss_curve_from_metrics_file(tmp_path):
    recs = [{"step": s, "loss": 2.0 / (1 + s), "wall": 0.01 * s} for s in (30, 0, 10, 20)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n\n")
    fig = sp.loss_curve(tmp_path)  # a run directory works too
    ax = fig.axes[0]
    raw = ax.lines[0].get_xydata()
    np.testing.assert_allclose(raw[:, 0], [0, 10, 20, 30])
    np.testing.assert_allclose(raw[:, 1], [2.0, 2 / 11, 2 / 21, 2 / 31])
    assert ax.get_yscale() == "log"
    assert ax.child_axes and ax.child_axes[0].get_xlabel() == "wall-clock seconds"
    assert is_not_blank(sp.figure_to_array(fig))


def test_loss_curve_negative_losses_stay_linear():
    fig = sp.loss_curve([{"step": 0, "loss": 1.0}, {"step": 1, "loss": -0.5}])
    assert fig.axes[0].get_yscale() == "linear"


def test_loss_curve_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        sp.loss_curve(tmp_path / "nope.jsonl")
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"step": 0, "loss": 1}\nnot json\n')
    with pytest.raises(InputError, match="line 2"):
        sp.loss_curve(bad)
    with pytest.raises(InputError, match="'step' and 'loss'"):
        sp.loss_curve([{"step": 1}])


# --- validators ---------------------------------------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(a=finite, b=finite)
def test_parse_lims_accepts_increasing_pairs_only(a, b):
    if a < b:
        assert parse_lims((a, b)) == ((a, b), (a, b))
        assert parse_lims(((a, b), (a, b))) == ((a, b), (a, b))
    else:
        with pytest.raises(InputError, match="lims"):
            parse_lims((a, b))


@pytest.mark.parametrize("bad", [None, "ab", (1,), (0, float("nan")), ((0, 1), (2, 1))])
def test_parse_lims_rejects_garbage(bad):
    with pytest.raises(InputError, match="lims"):
        parse_lims(bad)


def test_wall_axis_uses_the_last_step_stamped_with_each_time():
    from scorefield.plot._loss import _wall_knots

    step = np.array([0.0, 10, 20, 30, 40, 50])
    wall = np.array([5.0, 5, 5, 8, 8, 8])  # two compiled calls of three logged steps each
    ws, ww = _wall_knots(step, wall)
    np.testing.assert_array_equal(ws, [20, 50])
    np.testing.assert_array_equal(ww, [5, 8])
    fig = sp.loss_curve([{"step": s, "loss": 1.0, "wall": w} for s, w in zip(step, wall)])
    (top,) = fig.axes[0].child_axes
    assert "8.0 s" in fig.axes[0].get_title()
    assert top.get_xlabel() == "wall-clock seconds"


def test_depth_clips_far_tail_and_cap_limits_arrow_lengths():
    fig = sp.density_and_score(gauss_logp, lims=(-3, 3), grid=30, arrows=8, depth=5.0, cap=0.5)
    ax = fig.axes[0]
    (q,) = quivers(ax)
    mag = np.hypot(q.U, q.V)
    exact = np.linalg.norm(-(q.get_offsets() - np.asarray(MU)) / S0**2, axis=-1)
    limit = np.quantile(exact, 0.5)
    np.testing.assert_allclose(mag, np.minimum(exact, limit), rtol=1e-4)
    levels = ax.collections[0].levels  # the filled level sets span only the top 5 nats
    assert levels.max() - levels.min() <= 5.0 + 1.0


def test_real_image_density_samples_are_drawn_upright():
    import jax

    from scorefield.targets import ImageDensity

    img = np.zeros((4, 7))
    img[0, 0], img[3, 6], img[1, 3] = 1.0, 0.25, 0.5  # top-left heavy, bottom-right light
    t = ImageDensity.from_array(img)
    n = 8000
    x = np.asarray(t.sample(jax.random.PRNGKey(0), n))
    hist, _ = sp.upright_histogram(x, extent=sp.image_extent(4, 7), bins=(7, 4))
    p = img / img.sum()
    assert np.all(np.abs(hist - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12)


FAKE_FFMPEG = """#!{python}
# Stands in for ffmpeg: records the frame size it was told and the bytes it was piped.
import json, sys
argv = sys.argv[1:]
w, h = map(int, argv[argv.index("-s") + 1].split("x"))
data = sys.stdin.buffer.read()
if {fail}:
    sys.stderr.write("Unknown encoder 'libx264'\\n")
    sys.exit(1)
open(argv[-1], "w").write(json.dumps({{"w": w, "h": h, "bytes": len(data), "fps": argv[argv.index("-r") + 1]}}))
"""


@pytest.mark.parametrize("fail", [False, True])
def test_mp4_pipes_raw_rgb_frames_to_ffmpeg(tmp_path, monkeypatch, fail):
    import sys

    from scorefield._errors import ScorefieldError

    exe = tmp_path / "ffmpeg"
    exe.write_text(FAKE_FFMPEG.format(python=sys.executable, fail=fail))
    exe.chmod(0o755)
    monkeypatch.setattr("scorefield.plot._animate.find_ffmpeg", lambda: str(exe))
    traj = np.linspace(-1, 1, 9)[:, None, None] * np.ones((1, 2, 2))
    out = tmp_path / "a.mp4"
    labels = [f"t={t}" for t in range(9)]
    if fail:
        with pytest.raises(ScorefieldError, match="Unknown encoder"):
            sp.animate_particles(traj, out, size=(3.0, 2.0), dpi=40, fps=12, labels=labels)
        return
    sp.animate_particles(traj, out, size=(3.0, 2.0), dpi=40, fps=12, labels=labels)
    got = json.loads(out.read_text())
    assert (got["w"], got["h"]) == (120, 80)
    assert got["bytes"] == 9 * 120 * 80 * 3  # every frame, RGB, no alpha
    assert float(got["fps"]) == 12
    with pytest.raises(InputError, match="one per step"):
        sp.animate_particles(traj, out, labels=labels[:3])


def test_histogram_on_the_image_grid_agrees_with_metrics_hist_tv():
    # Two modules, one coordinate convention: the displayed histogram must give hist_tv.
    from scorefield.metrics import hist_tv

    rng = np.random.default_rng(7)
    probs = rng.random((5, 9)) ** 3
    pts = np.concatenate([exact_image_samples(probs, 900, 8), rng.uniform(-0.2, 1.2, (100, 2))])
    hist, _ = sp.upright_histogram(pts, extent=sp.image_extent(5, 9), bins=(9, 5))
    outside = 1.0 - hist.sum()
    tv = 0.5 * (np.abs(hist - probs / probs.sum()).sum() + outside)
    assert tv == pytest.approx(float(hist_tv(probs, pts)), abs=1e-5)


def test_loss_average_is_centred_and_title_names_the_steps_trained(tmp_path):
    # Noiseless decay 0.5 + exp(-s / 1500) logged every 100 steps of a 12,000-step run: a
    # centred average follows it (within 2% everywhere), whereas the old trailing EMA
    # (decay 0.9 per record) lagged it: +17% at step 1,000, the value reached 600 steps late.
    step = np.arange(0, 12000, 100)
    loss = 0.5 + np.exp(-step / 1500.0)
    (tmp_path / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": int(s), "loss": float(v)}) + "\n" for s, v in zip(step, loss)))
    (tmp_path / "checkpoint.json").write_text(json.dumps({"format_version": 1, "step": 12000}))
    fig = sp.loss_curve(tmp_path)
    ax = fig.axes[0]
    avg = ax.lines[1].get_xydata()
    np.testing.assert_allclose(avg[:, 0], step)
    np.testing.assert_allclose(avg[:, 1], loss, rtol=0.02)
    assert "12,000 steps" in ax.get_title() and "step 11,900" in ax.get_title()
    # A geometric sequence is a straight line on the log axis: returned unchanged.
    g = 2.0 ** -np.arange(40.0)
    np.testing.assert_allclose(sp._loss.centred_average(g, 9, log=True), g, rtol=1e-9)
    noisy = 1.0 + np.random.default_rng(0).normal(0, 0.1, 400)
    assert np.std(sp._loss.centred_average(noisy, 21)[20:-20]) < 0.04  # ~0.1 / sqrt(21)


def test_gif_delta_frames_read_back_as_rendered_and_are_smaller(tmp_path):
    from scorefield.plot._animate import render_frames, write_gif

    rng = np.random.default_rng(2)
    traj = np.cumsum(0.05 * rng.normal(size=(30, 200, 2)), axis=0)
    frames = render_frames(traj, background=gauss_logp, lims=(-1.5, 1.5), trail=0, size=(3.0, 3.0), dpi=60)
    write_gif(frames, tmp_path / "d.gif", 10)
    with Image.open(tmp_path / "d.gif") as im:
        assert im.n_frames == 30
        for k in (0, 1, 17, 29):
            im.seek(k)
            got = np.asarray(im.convert("RGB")).astype(int)
            # the same pixels up to the 255-colour palette: rarely more than 30 levels off
            assert np.mean(np.abs(got - frames[k]).sum(-1) > 30) < 0.005, k
    # Full frames, as written before: the delta file is well under their size.
    full = [Image.fromarray(f).quantize(colors=255) for f in frames]
    full[0].save(tmp_path / "full.gif", save_all=True, append_images=full[1:], optimize=False)
    assert (tmp_path / "d.gif").stat().st_size < 0.7 * (tmp_path / "full.gif").stat().st_size


def test_target_and_samples_share_one_colour_scale_and_say_h_by_w():
    # A 100x60 (H x W) image, samples far more concentrated than the image.
    probs = np.ones((100, 60))
    pts = np.tile([[0.3, 0.5]], (500, 1)) + np.random.default_rng(0).uniform(0, 0.01, (500, 2))
    fig = sp.image_vs_samples(probs, pts)
    ims = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(ims) == 2
    assert ims[0].get_clim() == ims[1].get_clim()
    assert ims[0].get_clim()[1] == pytest.approx(max(np.max(ims[0].get_array()), np.max(ims[1].get_array())))
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert "100x60 pixels" in titles[0] and "100x60 bins" in titles[1]


def test_vector_field_grid_draws_data_points_under_the_arrows():
    pts = np.random.default_rng(0).uniform(0, 1, (300, 2))
    fig = sp.vector_field_grid(gauss_smoothed_score, np.geomspace(1.0, 1e-2, 4), lims=(0, 1), arrows=4, points=pts)
    panels = [ax for ax in fig.axes if ax.get_visible() and quivers(ax)]
    for ax in panels:
        (sc,) = [c for c in ax.collections if not isinstance(c, Quiver)]
        np.testing.assert_allclose(sc.get_offsets(), pts)
        assert sc.get_zorder() < quivers(ax)[0].get_zorder()


def test_annealing_strip_in_rows_keeps_every_panel_at_its_size():
    traj = np.random.default_rng(0).normal(size=(6, 50, 2))
    one = sp.annealing_strip(traj, np.geomspace(1, 0.01, 6), lims=(-3, 3))
    two = sp.annealing_strip(traj, np.geomspace(1, 0.01, 6), lims=(-3, 3), ncols=3)
    w1, h1 = one.get_size_inches()
    w2, h2 = two.get_size_inches()
    assert w2 < 0.55 * w1 and h2 > 1.8 * h1  # two rows of three, panels as large as before
    shown = [ax for ax in two.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown][:2] == ["level 0: σ = 1", "level 1: σ = 0.398"]
    assert len(shown) == 6
