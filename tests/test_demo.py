"""`scorefield demo --fast`: every promised file, of the right size, not blank, linked from an
index.html whose every link resolves; numbers in metrics.json that agree with the files."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from scorefield.cli import main

# name -> (width, height) in pixels at the --fast dpi (80): figure inches times dpi, or the
# animation frame size (5 inches wide, 80 dpi, the height following the plotted box).
PNGS = {
    "01_mixture_score.png": (512, 448),
    "02_langevin_path.png": (480, 432),
    "02_langevin_many.png": (672, 520),  # two rows of three panels, readable at page width
    "03_image_density.png": (800, 400),
    "05_loss.png": (560, 336),
    "06_field.png": (768, 860),
    "07_samples.png": (800, 400),
    "07_anneal_strip.png": (672, 520),
    "08_density.png": (1040, 360),  # model, exact and difference panels (step 8, issue 17)
}
GIFS = {
    # name -> frames: --fast keeps 51 of the 201 Langevin positions, and 51 of the 102 frames
    # of the annealing (the start, one per level of the recipe's 100-level sampler, the samples).
    "02_langevin_path.gif": 51,
    "02_langevin_many.gif": 26,  # every other frame of the one-particle animation
    "07_anneal.gif": 51,
}
GIF_SIZE = (400, 408)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    (out).mkdir()
    (out / "notes.txt").write_text("mine")  # a file of the user's: must survive the demo
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):  # not a terminal: step lines, no progress bars
        code = main(["demo", "--out", str(out), "--fast", "--seed", "0"])
    assert code == 0, err.getvalue()[-2000:]
    (out.parent / "stderr.txt").write_text(err.getvalue())
    return out


def test_demo_prints_the_time_of_every_step(demo):
    log = (demo.parent / "stderr.txt").read_text()
    for n in (1, 2, 3, 4, 6, 7, 8):
        m = re.search(rf"step {n} took (\d+\.\d) s \((\d+\.\d) s so far\)", log)
        assert m, (n, log)
    total = json.loads((demo / "metrics.json").read_text())["wall_s"]
    took = [float(x) for x in re.findall(r"step \d took (\d+\.\d) s", log)]
    assert sum(took) <= total["total"] + 0.5


def test_page_shows_the_floor_range_of_one_draw(demo):
    html = (demo / "index.html").read_text(encoding="utf-8")
    floor = json.loads((demo / "metrics.json").read_text())["hist_tv_floor"]
    assert floor["low"] < floor["mean"] < floor["high"]
    assert f"one exact draw: {floor['low']:.4f} to {floor['high']:.4f}, 95%" in html


def test_page_shows_the_learned_density_beside_the_target(demo):
    # step 8: the density map figure is on the page under its own heading, and metrics.json
    # records its grid and integrals at the sampler's sigma_min
    html = (demo / "index.html").read_text(encoding="utf-8")
    heading = html.index("8. The learned density beside the target")
    assert html.index('<img src="08_density.png"') > heading
    assert heading > html.index("7. Sampling with the learned score")
    m = json.loads((demo / "metrics.json").read_text())
    d = m["density"]
    assert d["resolution"][0] == 24 or d["resolution"][1] == 24
    cfg = json.loads((demo / "run" / "config.json").read_text())
    want = max(cfg["sigma_min"], cfg["sample_sigma_min_ratio"] * cfg["sigma_max"])
    assert d["sigma_min"] == pytest.approx(want, rel=1e-5)
    # the exact smoothed density integrates to about 1 over the box (midpoint rule, 24 cells
    # across 28 pixels: a few percent); the model's ODE density is finite and positive
    assert abs(d["exact_integral"] - 1.0) < 0.1, d
    assert 0.0 < d["integral"] < 10.0 and np.isfinite(d["integral"]), d


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") and v:
                self.links.append(v)


def _not_blank(rgb: np.ndarray, name: str) -> None:
    # one integer per colour: np.unique on rows is slow
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    _, counts = np.unique(packed.ravel(), return_counts=True)
    assert counts.size > 20, f"{name} has {counts.size} colours: blank?"
    # Not almost one colour either: the most common colour covers less than 97% of pixels.
    assert counts.max() / packed.size < 0.97, f"{name} is nearly one colour"


def test_every_png_has_its_size_and_content(demo):
    for name, size in PNGS.items():
        im = Image.open(demo / name)
        assert im.format == "PNG", name
        assert im.size == size, (name, im.size)
        _not_blank(np.asarray(im.convert("RGB")), name)


def test_every_gif_is_an_animation_of_the_right_size(demo):
    for name, frames in GIFS.items():
        im = Image.open(demo / name)
        assert im.format == "GIF", name
        assert im.size == GIF_SIZE, (name, im.size)
        assert im.n_frames == frames, (name, im.n_frames)
        firsts = []
        for k in (0, im.n_frames - 1):
            im.seek(k)
            rgb = np.asarray(im.convert("RGB"))
            _not_blank(rgb, f"{name} frame {k}")
            firsts.append(rgb)
        # the particles moved: the first and last frames differ
        assert np.any(firsts[0] != firsts[1]), name


def test_index_links_resolve_and_show_everything(demo):
    html = (demo / "index.html").read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(html)
    links = set(parser.links)
    for link in links:
        # offline: relative paths only, no scheme, nothing outside DIR
        assert not re.match(r"^[a-z]+:", link) and not link.startswith(("/", "..")), link
        assert (demo / link).is_file(), f"index.html links {link}, which does not exist"
    promised = set(PNGS) | set(GIFS) | {"samples.npy", "metrics.json", "run/config.json"}
    assert promised <= links, promised - links
    assert "<script" not in html  # works with nothing but the files


def test_samples_and_metrics_agree(demo):
    from scorefield.data import load
    from scorefield.metrics import hist_tv

    x = np.load(demo / "samples.npy")
    assert x.dtype == np.float32 and x.shape == (2000, 2)
    assert np.all(np.isfinite(x))
    m = json.loads((demo / "metrics.json").read_text())
    # the number reported is the number of the file saved
    assert m["hist_tv"] == pytest.approx(float(hist_tv(load("mnist").target, x)), abs=1e-6)
    floor = m["hist_tv_floor"]
    assert floor["n"] == 2000
    # the floor of 2,000 exact samples on a 28x28 "5": about 0.11 (measured, 64 repeats at
    # several seeds, 0.109-0.111); learned samples cannot beat it by more than noise
    assert 0.09 < floor["mean"] < 0.13
    assert m["hist_tv"] > floor["mean"] - 5 * floor["stderr"]
    # a short training still finds the digit: far from a uniform cloud over the square (~0.75)
    assert m["hist_tv"] < 0.45
    # exact samples of step 3 sit on their floor (same distribution by construction)
    ex = m["exact_image_samples"]
    assert abs(ex["hist_tv"] - ex["hist_tv_floor"]["mean"]) < 0.01
    # the mixture has weights 0.5/0.5 and a symmetric start: 300 particles land within a
    # few standard errors (mean responsibility, std <= 0.5/sqrt(300) = 0.029) of 0.5
    w = m["langevin"]["mode_weights"]
    assert sum(w) == pytest.approx(1.0, abs=1e-5)
    assert abs(w[0] - 0.5) < 0.12
    from scorefield.train import PRESETS

    assert m["train"]["preset"] == "fast" and m["train"]["steps"] == PRESETS["fast"]["steps"]
    assert m["fast"] is True
    walls = m["wall_s"]
    assert set(walls) >= {"step1", "step2", "step3", "step4_5", "step6", "step7", "total"}
    assert all(v >= 0 for v in walls.values())


def test_the_run_is_a_run_and_other_files_survive(demo):
    from scorefield.train import load_run

    r = load_run(demo / "run")
    from scorefield.train import PRESETS

    assert r.step == PRESETS["fast"]["steps"] and r.config.data == "mnist"
    assert (demo / "notes.txt").read_text() == "mine"
    assert not list(demo.glob(".*.tmp*")), "temporary files left behind"


def test_unwritable_out_is_one_line_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "--out", str(blocker / "sub"), "--fast"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "cannot be written" in err[0]
    assert main(["demo", "--out", str(blocker), "--fast"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a directory" in err[0]


def test_a_run_the_demo_did_not_write_is_refused(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    assert main(["demo", "--out", str(tmp_path), "--fast"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did not write" in err[0]
    assert (tmp_path / "run" / "config.json").read_text() == "{}"


def test_a_previous_demo_is_replaced_only_at_the_end(tmp_path):
    """Issue 14 item 3: a rerun keeps the previous run/ until the new demo has finished (an
    interrupted rerun loses nothing); then the new run replaces it."""
    from scorefield.demo import prepare_out
    from scorefield.demo._run import OLD_RUN, _install_run
    from scorefield.demo._steps import NEW_RUN_DIR

    prepare_out(tmp_path)  # marks the directory as a demo's
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "stale").write_text("old")
    (tmp_path / "keep.txt").write_text("keep")
    prepare_out(tmp_path)
    assert (tmp_path / "run" / "stale").read_text() == "old"  # a rerun starts: the old run is kept
    (tmp_path / NEW_RUN_DIR).mkdir()
    (tmp_path / NEW_RUN_DIR / "config.json").write_text("new")
    _install_run(tmp_path)  # the rerun finished
    assert (tmp_path / "run" / "config.json").read_text() == "new" and not (tmp_path / "run" / "stale").exists()
    assert not (tmp_path / NEW_RUN_DIR).exists() and not (tmp_path / OLD_RUN).exists()
    assert (tmp_path / "keep.txt").read_text() == "keep"
    # killed between the two renames of the swap: the next demo puts the old run back
    os.replace(tmp_path / "run", tmp_path / OLD_RUN)
    prepare_out(tmp_path)
    assert (tmp_path / "run" / "config.json").read_text() == "new"


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and "scorefield demo --out" in out and "--fast" in out


def test_annealing_strip_labels_name_the_panels():
    # the demo's step-2 strip: snapshots of one chain, named by step instead of by sigma
    from scorefield import plot
    from scorefield._errors import InputError

    traj = np.random.default_rng(0).normal(size=(3, 50, 2))
    fig = plot.annealing_strip(traj, None, labels=["step 0", "step 10", "step 200"], lims=(-3, 3))
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["step 0", "step 10", "step 200"]
    with pytest.raises(InputError, match="labels"):
        plot.annealing_strip(traj, None, labels=["a", "b"])
    with pytest.raises(InputError, match="sigmas"):
        plot.annealing_strip(traj, None)


def test_settings_refuse_non_positive_sizes():
    from scorefield._errors import ConfigError
    from scorefield.demo import DemoSettings

    assert DemoSettings.fast().preset == "fast" and DemoSettings.full().samples == 10_000
    from jaxtyping import TypeCheckError

    for bad in (0, -3):
        with pytest.raises(ConfigError, match="samples"):
            DemoSettings(samples=bad)
    for bad in (2.5, True):  # a wrong type: the library's check, or the test hook's before it
        with pytest.raises((ConfigError, TypeCheckError), match="samples"):
            DemoSettings(samples=bad)
