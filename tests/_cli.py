"""`scorefield ARGV` run in the test's own process: the programs it compiles are the ones the
test process has compiled already (a child would import JAX and compile them again)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from types import SimpleNamespace

from scorefield.cli import main


def cli(*argv: str, cwd: str | Path = ".") -> SimpleNamespace:
    """Run the command line in `cwd`; returns (returncode, stdout, stderr) as a child's would."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse's usage errors
            code = e.code
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
