"""The README's two tours, extracted: every command of the command-line tour, one argv a
line, and the Python tour's code. tests/test_demo.py runs both, in order, in one fresh
directory (`test_both_readme_tours_run_in_order_in_a_fresh_directory`), after the demo
fixture, which runs the tour's own demo command; here, what the tours must look like."""

from __future__ import annotations

import re
import shlex
from pathlib import Path


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


def python_tour() -> str:
    """The Python tour's code block."""
    return _block("Five-minute tour: Python", "python")


def test_tours_are_found_and_use_distinct_run_directories():
    cmds = cli_tour()
    assert [a[1] for a in cmds][:3] == ["train", "sample", "eval"] and len(cmds) >= 8
    py = _block("Five-minute tour: Python", "python")
    cli_runs = {a[a.index("--out") + 1] for a in cmds if a[1] == "train"}
    py_runs = set(re.findall(r'train\([^\n]*?"(runs/[^"]+)"', py))
    assert cli_runs and py_runs and not cli_runs & py_runs, (cli_runs, py_runs)
    for argv in cmds:  # no usage placeholders left in a command meant to be typed
        assert not any(a.startswith("[") or a.endswith("]") for a in argv), argv
