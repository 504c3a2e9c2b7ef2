"""`scorefield demo --fast`: every promised file, of the right size, not blank, linked from an
index.html whose every link resolves; numbers in metrics.json that agree with the files."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

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
    # name -> frames: --fast keeps 51 of the 201 Langevin positions, and all 42 frames of the
    # annealing (the start, one per step of the recipe's 40-evaluation dpm3m, the samples).
    "02_langevin_path.gif": 51,
    "02_langevin_many.gif": 26,  # every other frame of the one-particle animation
    "07_anneal.gif": 42,
}
GIF_SIZE = (400, 408)


def readme_demo_argv(out) -> list[str]:
    """The README tour's demo command (its last), with its --out replaced by `out`."""
    from test_readme import cli_tour

    argv = cli_tour()[-1][1:]
    assert argv[0] == "demo" and "--fast" in argv, argv
    argv[argv.index("--out") + 1] = str(out)
    return argv


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The README's own `scorefield demo --out DIR --fast` (seed 0, the default), run once:
    every test here, the browser check and the README tour use it."""
    out = tmp_path_factory.mktemp("demo") / "out"
    (out).mkdir()
    (out / "notes.txt").write_text("mine")  # a file of the user's: must survive the demo
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):  # not a terminal: step lines, no progress bars
        code = main(readme_demo_argv(out))
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
    assert d["resolution"][0] == 16 or d["resolution"][1] == 16
    cfg = json.loads((demo / "run" / "config.json").read_text())
    want = max(cfg["sigma_min"], cfg["sample_sigma_min_ratio"] * cfg["sigma_max"])
    assert d["sigma_min"] == pytest.approx(want, rel=1e-5)
    # the exact smoothed density integrates to about 1 over the box (midpoint rule, 16 cells
    # across 28 pixels: 1.014 at seed 0; 12 cells: 0.959); the model's ODE density is finite and positive
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


# What the page's script reports: every image after it was scrolled into view (the page
# loads them lazily, as a reader scrolling down would), and the numbers table as rendered.
_PAGE_SCRIPT = """(async () => {
  const settle = img => img.complete ? Promise.resolve() : new Promise(done => {
    img.addEventListener('load', done, {once: true});
    img.addEventListener('error', done, {once: true});
    setTimeout(done, 15000);
  });
  const images = [];
  for (const img of document.images) {
    img.scrollIntoView();
    await settle(img);
    images.push({src: img.getAttribute('src'), width: img.naturalWidth, height: img.naturalHeight});
  }
  const rows = [...document.querySelectorAll('table tr')].map(
    tr => [tr.querySelector('th').innerText, tr.querySelector('td').innerText]);
  return {images, rows};
})()"""


def _numbers_of(text: str) -> list[tuple[float, int]]:
    """The numbers of a table cell as (value, decimals shown), thousands separators read."""
    out = []
    for m in re.finditer(r"-?\d[\d,]*(?:\.(\d+))?", text):
        out.append((float(m.group(0).replace(",", "")), len(m.group(1) or "")))
    return out


def _row_matches(text: str, expected: list[float]) -> bool:
    got = _numbers_of(text)
    return len(got) == len(expected) and all(
        abs(v - e) <= 0.5 * 10.0 ** -d + 1e-9 for (v, d), e in zip(got, expected))


def test_page_in_a_real_browser_loads_every_image_without_errors_and_shows_the_metrics(demo):
    """Issue 15 item 13: index.html in headless Chromium (where one is installed): every
    image loads (naturalWidth > 0, at the size of the file), no console or load errors, and
    the numbers table says what metrics.json says."""
    from _browser import Page, find_chromium

    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium or Chrome on PATH (chromium, chromium-browser, google-chrome; "
                    "or SCOREFIELD_CHROMIUM): `apt-get install chromium` to run this check")
    with Page(binary) as page:
        page.open(demo / "index.html")
        seen = page.evaluate(_PAGE_SCRIPT)
        errors = page.errors()
    assert not errors, errors
    images = {im["src"]: im for im in seen["images"]}
    assert set(images) == set(PNGS) | set(GIFS), set(images) ^ (set(PNGS) | set(GIFS))
    for src, im in images.items():
        size = PNGS.get(src, GIF_SIZE)
        assert (im["width"], im["height"]) == size, (src, im)  # loaded, and the file's own pixels
    m = json.loads((demo / "metrics.json").read_text())
    floor, ex, lang, tr, sa = (m["hist_tv_floor"], m["exact_image_samples"], m["langevin"], m["train"],
                               m["samples"])
    walls = [m["wall_s"]["total"]] + [v for k, v in m["wall_s"].items() if k != "total"]
    expected = {  # row heading -> the numbers its cell must show, from metrics.json
        "hist_tv of the learned samples": [m["hist_tv"], floor["n"]],
        "its floor: exact samples at the same N": [floor["mean"], floor["low"], floor["high"], 95],
        f"hist_tv of {ex['n']:,} exact samples (step 3)": [ex["hist_tv"], ex["hist_tv_floor"]["mean"]],
        f"mode weights of {lang['particles']} Langevin particles (step 2)": [*lang["mode_weights"], 0.5, 0.5],
        "training": [tr["steps"], tr["wall_s"], tr["final_loss"]],
        "sampling": [sa["levels"], sa["score_evals_per_sample"], sa["wall_s"]],
    }
    rows = dict(seen["rows"])
    assert set(rows) == set(expected) | {"wall time"}, seen["rows"]
    for head, numbers in expected.items():
        assert _row_matches(rows[head], numbers), (head, rows[head], numbers)
    assert rows["training"].startswith(f"preset {tr['preset']}, ") and rows["sampling"].startswith(sa["sampler"])
    # the wall-time cell: the total, then each step's seconds (its labels hold step numbers)
    secs = [float(s) for s in re.findall(r"(\d+\.\d) s\b", rows["wall time"])]
    assert secs == pytest.approx(walls, abs=0.05 + 1e-9), (rows["wall time"], walls)


# The tour's commands whose work is the heaviest (the metrics and their floors at 10,000
# samples, 2,000 probability-flow solves, a 224 x 224 density map): each is run through the
# CLI up to the moment that work starts (every check of its flags and of the files the tour
# made before it), then stopped as a Ctrl-C would stop it; their work itself is run by
# tests/test_cli_eval.py, test_cli_likelihood.py and test_cli_plot.py on tiny runs.
HEAVY = {("eval", "--samples"): "scorefield.metrics:evaluate", ("eval", "--likelihood"): "scorefield.likelihood:evaluate_likelihood",
         ("plot", "density"): "scorefield.likelihood:density_map"}


def _heavy(argv: list[str]) -> str | None:
    for (cmd, word), target in HEAVY.items():
        if argv[1] == cmd and word in argv:
            return target
    return None


@pytest.mark.slow  # about 40 CPU s after the demo fixture (2026-12-02, 2 cores, load 3)
def test_both_readme_tours_run_in_order_in_a_fresh_directory(demo, tmp_path, monkeypatch, capsys):
    """Issue 15 item 1: every command of the README's command-line tour, in order, then its
    Python tour in the same interpreter, in one fresh directory, so that the README cannot
    drift. Test-only changes: "default" is the "fast" preset with the random-feature network
    (quicker to build, compile and run than its grid network: the tour's commands and the
    Python tour's training 19 -> 13 CPU s, 2026-12-02), 100 steps and a 5-level recipe sampler; the three
    heaviest commands stop as their work starts (HEAVY). The tour's last command, the demo, is the one the `demo` fixture ran
    (readme_demo_argv)."""
    import importlib

    from test_readme import cli_tour, python_tour

    from scorefield.train import PRESETS

    monkeypatch.setitem(PRESETS, "default", {**PRESETS["fast"], "net": "sigma", "steps": 100, "checkpoint_every": 100,
                                             "sampler": {"name": "pc", "levels": 5}})
    monkeypatch.chdir(tmp_path)
    commands = cli_tour()
    assert commands[-1][1] == "demo" and all(a[1] != "demo" for a in commands[:-1])
    assert sum(_heavy(a) is not None for a in commands) == len(HEAVY), "a heavy command left the tour: update HEAVY"
    for argv in commands[:-1]:
        target = _heavy(argv)
        with monkeypatch.context() as m:
            if target is not None:
                module, name = target.split(":")
                mod = importlib.import_module(module)
                assert callable(getattr(mod, name)), target

                def ctrl_c(*args, **kwargs):
                    raise KeyboardInterrupt

                m.setattr(mod, name, ctrl_c)
            code = main(argv[1:])
        err = capsys.readouterr().err
        assert code == (130 if target else 0), (argv, err[-2000:])
        if target:
            assert err.strip().splitlines()[-1].endswith("interrupted"), (argv, err)
    for name in ("five.npy", "five.png", "field.png", "ncsn.npy", "runs/five/config.json"):
        assert Path(name).is_file(), name
    assert np.load("five.npy").shape == (10_000, 2) and np.load("ncsn.npy").shape == (5_000, 2)
    scope: dict = {}
    exec(compile(python_tour(), "README.md (Python tour)", "exec"), scope)  # noqa: S102 - the README's own example
    assert scope["result"].samples.shape == (10_000, 2) and scope["oracle"].samples.shape == (10_000, 2)
    assert Path("runs/five-py/config.json").is_file()


def test_the_browser_check_sees_a_broken_image_and_a_console_error(tmp_path):
    """The check above can fail: a page with a missing image and a script error is seen as
    such (an image of naturalWidth 0; the error and the failed load reported)."""
    from _browser import Page, find_chromium

    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium or Chrome on PATH (chromium, chromium-browser, google-chrome; "
                    "or SCOREFIELD_CHROMIUM): `apt-get install chromium` to run this check")
    Image.new("RGB", (30, 20), (200, 10, 10)).save(tmp_path / "ok.png")
    (tmp_path / "page.html").write_text(
        '<!DOCTYPE html><html><body><img src="ok.png"><img src="missing.png">'
        '<table><tr><th>a</th><td>1</td></tr></table><script>console.error("boom")</script></body></html>')
    with Page(binary) as page:
        page.open(tmp_path / "page.html")
        seen = page.evaluate(_PAGE_SCRIPT)
        errors = page.errors()
    assert seen["images"] == [{"src": "ok.png", "width": 30, "height": 20},
                              {"src": "missing.png", "width": 0, "height": 0}]
    assert seen["rows"] == [["a", "1"]]
    assert any("boom" in e for e in errors) and any("missing.png" in e or "ERR_FILE_NOT_FOUND" in e for e in errors), errors
