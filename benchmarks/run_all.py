"""Run every benchmark once, in sequence, on this machine (about 10 minutes on 2 cores).

    .venv/bin/python benchmarks/run_all.py

Each script prints its own figures and the ratios against its baseline measured in the
same run; BENCHMARKS.md records them with the command that made them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
RUNS = [
    ["bench_train.py"],
    ["bench_samplers.py", "--n", "16384", "--devices", "1"],
    ["bench_samplers.py", "--n", "16384", "--devices", "2"],
    ["bench_quality.py", "--recipe", "default", "--budgets", "preset"],
    ["bench_quality.py", "--recipe", "default", "--budgets", "5,10,20,40", "--plot", "quality-default.png"],
    ["bench_quality.py", "--recipe", "seed", "--budgets", "60,300", "--plot", "quality-seed.png"],
]

if __name__ == "__main__":
    for args in RUNS:
        print(f"\n$ python benchmarks/{' '.join(args)}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / args[0]), *args[1:]], cwd=HERE)
        if code:
            sys.exit(code)
