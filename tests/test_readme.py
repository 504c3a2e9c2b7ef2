"""The README's two tours, run as written (so they cannot drift): every command of the
command-line tour in order, then the Python tour, in one fresh directory. Only the step
counts shrink (the presets' steps and sampler levels, patched in PRESETS), never a command."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(heading: str, lang: str) -> str:
    text = README.read_text(encoding="utf-8")
    at = text.index(f"## {heading}")
    m = re.compile(rf"```{lang}\n(.*?)```", re.S).search(text, at)
    assert m, f"no ```{lang} block after '## {heading}'"
    return m.group(1)


def cli_tour() -> list[list[str]]:
    """The commands of the command-line tour, comments dropped, one argv per line."""
    out = []
    for line in _block("Five-minute tour: the command line", "sh").splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            assert argv[0] == "scorefield", line
            out.append(argv)
    return out


def test_tours_are_found_and_use_distinct_run_directories():
    cmds = cli_tour()
    assert [a[1] for a in cmds][:3] == ["train", "sample", "eval"] and len(cmds) >= 8
    py = _block("Five-minute tour: Python", "python")
    cli_runs = {a[a.index("--out") + 1] for a in cmds if a[1] == "train"}
    py_runs = set(re.findall(r'train\([^\n]*?"(runs/[^"]+)"', py))
    assert cli_runs and py_runs and not cli_runs & py_runs, (cli_runs, py_runs)
    for argv in cmds:  # no usage placeholders left in a command meant to be typed
        assert not any(a.startswith("[") or a.endswith("]") for a in argv), argv


@pytest.mark.slow  # a short training twice, sampling, every figure, the --fast demo
@pytest.mark.skipif(not os.environ.get("SCOREFIELD_README_TOURS"),
                    reason="set SCOREFIELD_README_TOURS=1: minutes on 2 cores (the tour now includes "
                    "plot density --resolution 224); not yet timed on an idle machine")
def test_both_tours_run_in_order_in_a_fresh_directory(tmp_path, monkeypatch, capsys):
    from scorefield.cli import main
    from scorefield.train import PRESETS

    small = dict(steps=40, steps_per_call=20, log_every=10, checkpoint_every=40, warmup_steps=5)
    monkeypatch.setitem(PRESETS, "default", {**PRESETS["default"], **small,
                                             "sampler": {"name": "pc", "levels": 10}})
    monkeypatch.setitem(PRESETS, "fast", {**PRESETS["fast"], **small})
    monkeypatch.chdir(tmp_path)
    for argv in cli_tour():
        code = main(argv[1:])
        err = capsys.readouterr().err
        assert code == 0, (argv, err[-2000:])
    assert Path("five.npy").is_file() and Path("five.png").is_file() and Path("demo-out/index.html").is_file()
    code = compile(_block("Five-minute tour: Python", "python"), "README.md (Python tour)", "exec")
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - the README's own example
    assert scope["result"].samples.shape == (10_000, 2) and scope["oracle"].samples.shape == (10_000, 2)
    assert Path("runs/five-py/config.json").is_file()
