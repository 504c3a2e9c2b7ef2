"""Library errors name Python arguments; the CLI says the same with its flags. Both faces
of each message, and a scan of the package: no error raised outside scorefield.cli
spells a command-line flag."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import scorefield
from scorefield import CheckpointError, InputError
from scorefield._seed import check_seed
from scorefield.cli import main
from scorefield.demo import prepare_out
from scorefield.samplers import parse_init

FLAG = re.compile(r"(?<![\w-])--[a-z]")
PACKAGE = Path(scorefield.__file__).parent


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_no_library_error_names_a_command_line_flag():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for part in ast.walk(node.exc):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str) and FLAG.search(part.value):
                        found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {part.value!r}")
    assert not found, "\n".join(found)


def test_init_spec_library_and_cli(tmp_path, capsys):
    with pytest.raises(InputError) as e:
        parse_init("banana:3")
    assert str(e.value).startswith("init 'banana:3' is not understood") and not FLAG.search(str(e.value))
    assert main(["sample", "--exact", "toy:ncsn-mixture", "--n", "4", "--out", str(tmp_path / "x.npy"),
                 "--init", "banana:3", "--quiet"]) == 2
    assert "error: --init 'banana:3' is not understood; valid forms are" in _one_line(capsys)


def test_demo_output_directory_library_and_cli(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match=r"^out=.*file exists and is not a directory") as e:
        prepare_out(blocker)
    assert not FLAG.search(str(e.value))
    assert main(["demo", "--quiet", "--fast", "--out", str(blocker)]) == 2
    assert f"error: --out {blocker} exists and is not a directory" in _one_line(capsys)
    other = tmp_path / "other"
    (other / "run").mkdir(parents=True)  # a run/ the demo did not write
    with pytest.raises(InputError, match=r"^out=.* already has a run/ that the demo did not write; give another out ") as e:
        prepare_out(other)
    assert main(["demo", "--quiet", "--fast", "--out", str(other)]) == 2
    err = _one_line(capsys)
    assert f"--out {other} already has a run/" in err and "give another --out directory" in err


def test_missing_checkpoint_and_seed_messages_name_no_flag(tmp_path, capsys):
    from scorefield.train import load_run, preset

    run = tmp_path / "run"
    run.mkdir()
    cfg = preset("fast", data="toy:ncsn-mixture", dim=2, centre=[0.0, 0.0], sigma_max=10.0, sigma_min=0.05,
                 half_width=8.0)
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    with pytest.raises(CheckpointError, match="holds no checkpoint") as e:
        load_run(run)
    assert not FLAG.search(str(e.value))
    assert main(["info", "--run", str(run)]) == 2
    assert "holds no checkpoint" in _one_line(capsys)
    with pytest.raises(InputError, match=r"^seed=-1 is out of range"):
        check_seed(-1)
