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
        load(f"image:{tmp_path / 'R.png'},invert")  # inverted: the letter carries the mass
        _letter(tmp_path / "L.png", dark_on_white=False)
        load(f"image:{tmp_path / 'L.png'}")  # bright on dark: no warning
    # Bright only in a frame: most of the mass in the border.
    frame = np.zeros((40, 40), np.uint8)
    frame[:3], frame[-3:], frame[:, :3], frame[:, -3:] = 255, 255, 255, 255
    Image.fromarray(frame).save(tmp_path / "F.png")
    with pytest.warns(UserWarning, match="in the border"):
        load(f"image:{tmp_path / 'F.png'}")
