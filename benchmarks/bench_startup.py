"""What a command pays before its first step: CPU seconds of importing what `scorefield
train` and `sample` import, in fresh child processes, against `import numpy` measured in the
same run.

    python benchmarks/bench_startup.py [--repeats 5] [--alt-path DIR]

`--alt-path DIR` puts DIR first on the children's PYTHONPATH for a second set of rows: an
unpacked wheel of another version of a dependency (for example ml_dtypes 0.7.0, which
pyproject.toml excludes), so that the two versions are measured alternately in one run.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
CASES = {
    "numpy (baseline)": "import numpy",
    "jax": "import jax",
    "train/sample command": "import scorefield.train, scorefield.samplers, scorefield.targets, scorefield.cli._train, scorefield.cli._sample",
}


def child_cpu(code: str, pythonpath: str) -> float:
    """User + system CPU seconds of `python -c code` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": pythonpath})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--alt-path", default=None, help="a directory put first on PYTHONPATH for a second set of rows")
    args = ap.parse_args()
    paths = {"installed": str(SRC)}
    if args.alt_path:
        paths[f"with {args.alt_path}"] = f"{args.alt_path}{os.pathsep}{SRC}"
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):  # interleaved, so that load drifts hit every row alike
        for label, pp in paths.items():
            for case, code in CASES.items():
                times.setdefault((label, case), []).append(child_cpu(code, pp))
    numpyro = subprocess.run([sys.executable, "-c", CASES["train/sample command"] + "; import sys; print('numpyro' in sys.modules)"],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)}).stdout.strip()
    base = statistics.median(times[("installed", "numpy (baseline)")])
    print(f"median CPU seconds over {args.repeats} fresh processes; ratio to `import numpy` ({base:.3f} s)")
    print(f"{'PYTHONPATH':<32} {'imports':<22} {'CPU s':>7} {'ratio':>7}")
    for (label, case), ts in times.items():
        m = statistics.median(ts)
        print(f"{label:<32} {case:<22} {m:7.3f} {m / base:7.1f}")
    print(f"numpyro imported by the train/sample command: {numpyro}")


if __name__ == "__main__":
    main()
