"""Messages a newcomer meets first: a usage slip names the command's own help, a missing
file fails before any banner, and a dark drawing on white read without `invert` warns."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from scorefield.cli import main


def test_bracketed_optional_flag_points_to_the_commands_help(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--out", str(tmp_path / "d"), "[--fast]"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("scorefield demo: error: unrecognized arguments: [--fast]")
    assert "(see 'scorefield demo --help')" in err and "without them" in err


def test_missing_image_fails_before_the_train_banner(tmp_path, capsys):
    code = main(["train", "--data", f"image:{tmp_path / 'R.png'}", "--out", str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err  # the error line only, no "train: image:... -> x" banner
    assert "R.png' does not exist" in err and not (tmp_path / "x").exists()


def _letter(path, dark_on_white: bool):
    img = np.zeros((28, 28), np.uint8)
    img[6:22, 10:13] = 255  # an "L"
    img[19:22, 10:20] = 255
    Image.fromarray(255 - img if dark_on_white else img).save(path)


def test_dark_letter_on_white_without_invert_warns(tmp_path):
    from scorefield.data import load

    _letter(tmp_path / "R.png", dark_on_white=True)
    with pytest.warns(UserWarning, match=r"mostly bright.*image:.*R\.png,invert"):
        load(f"image:{tmp_path / 'R.png'}")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inverted = load(f"image:{tmp_path / 'R.png'},invert")  # inverted: the letter carries the mass
        _letter(tmp_path / "L.png", dark_on_white=False)
        bright = load(f"image:{tmp_path / 'L.png'}")  # bright on dark: no warning
    assert inverted.dim == 2 and bright.dim == 2
    # Bright only in a frame: most of the mass in the border.
    frame = np.zeros((40, 40), np.uint8)
    frame[:3], frame[-3:], frame[:, :3], frame[:, -3:] = 255, 255, 255, 255
    Image.fromarray(frame).save(tmp_path / "F.png")
    with pytest.warns(UserWarning, match="in the border"):
        load(f"image:{tmp_path / 'F.png'}")


# --- commands that answer before JAX starts -------------------------------------------------

_PROBE = """
import sys, time
t0 = time.perf_counter()
from scorefield.cli import main
code = main(sys.argv[1:])
print("RESULT", code, "jax" in sys.modules, round(time.perf_counter() - t0, 2))
"""


def _probe(argv, tmp_path, env=None):
    import os
    import subprocess
    import sys

    full = {**os.environ, **(env or {})}
    p = subprocess.run([sys.executable, "-c", _PROBE, *map(str, argv)], capture_output=True, text=True,
                       env=full, cwd=tmp_path, timeout=120)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT")][-1].split()
    return int(line[1]), line[2] == "True", p.stdout, p.stderr


def test_info_reads_json_only_and_matches_the_loaded_run(tmp_path):
    import json

    from scorefield.cli._info import _from_run
    from scorefield.train import preset, train

    cfg = preset("fast", data="toy:ncsn-mixture", width=16, depth=1, n_features=8, n_levels=4,
                 batch_size=32, steps=10, steps_per_call=5, log_every=5, checkpoint_every=10, seed=0)
    train(cfg, tmp_path / "run", progress=False)
    code, jax_loaded, out, err = _probe(["info", "--run", tmp_path / "run", "--json"], tmp_path)
    assert code == 0 and not jax_loaded, err
    fast = json.loads(out.splitlines()[0])
    slow = _from_run(tmp_path / "run")
    assert fast == {**slow, "run": str(tmp_path / "run")}
    assert fast["parameters"] > 0 and fast["steps_done"] == 10
    # A run whose checkpoint is gone: the library's message, as before.
    (tmp_path / "run" / "checkpoint.json").unlink()
    code, _, _, err = _probe(["info", "--run", tmp_path / "run"], tmp_path)
    assert code != 0 and err.strip().count("\n") == 0 and "scorefield info: error" in err


def test_plot_refusals_come_before_jax(tmp_path):
    import json

    run = tmp_path / "pts"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": f"points:{tmp_path / 'p.npy'}", "dim": 2}))
    code, jax_loaded, _, err = _probe(["plot", "target", "--run", run, "--out", tmp_path / "d.png"], tmp_path)
    assert code == 2 and not jax_loaded and "no closed-form density" in err
    (run / "config.json").write_text(json.dumps({"data": f"points:{tmp_path / 'p.npy'}", "dim": 3}))
    code, jax_loaded, _, err = _probe(["plot", "field", "--run", run, "--out", tmp_path / "d.png"], tmp_path)
    assert code == 2 and not jax_loaded and "holds 3-D data" in err
    from scorefield._ffmpeg import find_ffmpeg

    empty = tmp_path / "bin"
    empty.mkdir()
    import shutil

    if find_ffmpeg() is not None and shutil.which("ffmpeg") is None:
        pytest.skip("imageio-ffmpeg ships an ffmpeg here: the mp4 refusal cannot be provoked")
    code, jax_loaded, _, err = _probe(["plot", "animate", "--run", run, "--out", tmp_path / "x.mp4"], tmp_path,
                                      env={"PATH": str(empty)})
    assert code == 2 and not jax_loaded and "no ffmpeg found" in err
