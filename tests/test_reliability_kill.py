"""Faults from outside: `scorefield train` killed with SIGKILL at random moments, Ctrl-C
(SIGINT) in training and in sampling. Real processes running the real command line.

Children share a persistent JAX compilation cache so that each starts in seconds.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from scorefield import CheckpointError
from scorefield.train import load_run

from _subproc import cli_in_terminal, env, wait  # noqa: F401 - env is a fixture
from _tiny import SIGMA_NET, tiny_toml

DATA = "toy:ncsn-mixture"


_cli_interactive, _wait = cli_in_terminal, wait


def _config(tmp_path: Path, steps: int, net: str = "") -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(tiny_toml(steps) + net)
    return p


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "scorefield.cli", *argv]


def _leaves(run) -> list[np.ndarray]:
    trees = (run.model, run.ema_model)
    return [np.asarray(a) for t in trees for a in jax.tree_util.tree_leaves(eqx.filter(t, eqx.is_array))]


# A fork server: imports JAX and most of scorefield once (not blackjax, which starts the
# JAX backend at import; before that, forking is safe),
# then forks one child per request that runs the command line; a child pays only for
# tracing and training, not for the imports. Protocol: one JSON line [argv, stderr file]
# in; the child's pid out, then its exit code (negative: killed by that signal).
SERVER = r"""
import json, os, sys
import equinox, jax, jax.numpy, optax, tqdm
import scorefield.cli, scorefield.data, scorefield.losses, scorefield.nets, scorefield.noise
from jax._src import xla_bridge
assert not xla_bridge.backends_are_initialized()
for line in sys.stdin:
    argv, err = json.loads(line)
    pid = os.fork()
    if pid == 0:
        fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.dup2(fd, 2)
        os._exit(scorefield.cli.main(argv))
    print(pid, flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


def _stamp(path: Path):
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigkill_at_random_moments_leaves_a_loadable_checkpoint_and_resume_is_bitwise(tmp_path, env):  # noqa: F811 - env: the fixture from _subproc
    steps = 300
    cfg = _config(tmp_path, steps, SIGMA_NET)  # SIGKILL cannot be caught: any network will do
    train = ["train", "--data", DATA, "--preset", "fast", "--config", str(cfg), "--quiet", "--out"]
    server = subprocess.Popen([sys.executable, "-c", SERVER], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    err = tmp_path / "stderr.txt"

    def start(argv):
        server.stdin.write(json.dumps([argv, str(err)]) + "\n")
        server.stdin.flush()
        return int(server.stdout.readline())

    def finish() -> int:
        line = server.stdout.readline()
        assert line, "the fork server died"
        return int(line)

    pid = server.pid
    try:
        # the uninterrupted reference, twice: the first fills the compilation cache; the
        # second (warm, as every child below) must agree bitwise and times the phases: from
        # config.json (written once the child has loaded its data) to the first checkpoint
        # (tracing, loading the compiled loop), then training
        for name in ("ref", "ref-warm"):
            pid = start(train + [str(tmp_path / name)])
            _wait(lambda name=name, pid=pid: (tmp_path / name / "config.json").is_file() or not _alive(pid))
            t0 = time.monotonic()
            _wait(lambda name=name, pid=pid: (tmp_path / name / "checkpoint.json").is_file() or not _alive(pid))
            t_first = time.monotonic() - t0
            assert finish() == 0, err.read_text()[-2000:]
            t_total = time.monotonic() - t0
        want = load_run(tmp_path / "ref")
        for a, b in zip(_leaves(load_run(tmp_path / "ref-warm")), _leaves(want), strict=True):
            assert np.array_equal(a, b)

        def check_finished(run: Path) -> None:  # exactly the reference, log included
            done = load_run(run)
            assert done.step == steps
            for a, b in zip(_leaves(done), _leaves(want), strict=True):
                assert np.array_equal(a, b)
            assert [(m["step"], m["loss"]) for m in done.metrics()] == [(m["step"], m["loss"]) for m in want.metrics()]
            assert not list(run.glob(".*.tmp"))  # temporaries of killed writers were cleaned up

        rng = np.random.default_rng(20240607)
        kills, finished, seen = 0, 0, []
        run = tmp_path / "run0"
        while kills < 8:
            at = load_run(run).step if (run / "checkpoint.json").is_file() else 0
            before = _stamp(run / "config.json")
            resuming = before is not None
            pid = start(["train", "--out", str(run), "--resume", "--quiet"] if resuming else train + [str(run)])
            # every child (re)writes config.json once it has loaded its data. A quarter of the
            # kills land in the next t_first seconds (tracing, loading the compiled loop, the
            # first steps); the rest at a uniform moment of the training left once the child
            # has written its first checkpoint (0.8: most kills land before the end)
            _wait(lambda run=run, before=before, pid=pid: _stamp(run / "config.json") != before or not _alive(pid))
            if rng.uniform() < 0.25:
                delay = rng.uniform(0.0, t_first)
            else:
                ckpt = _stamp(run / "checkpoint.json")
                _wait(lambda run=run, ckpt=ckpt, pid=pid: _stamp(run / "checkpoint.json") != ckpt or not _alive(pid))
                delay = rng.uniform(0.0, 0.8 * (t_total - t_first) * (steps - at) / steps)
            kill_at = time.monotonic() + delay
            while time.monotonic() < kill_at and _alive(pid):
                time.sleep(0.005)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            code = finish()
            assert code in (0, -signal.SIGKILL), err.read_text()[-2000:]
            if code == 0:  # it finished first: a new run
                check_finished(run)
                finished += 1
                run = tmp_path / f"run{finished}"
                continue
            kills += 1
            if (run / "checkpoint.json").is_file():
                r = load_run(run)  # always loads, checksums verified, never NaN, never back
                assert r.step % 10 == 0 and r.step >= at
                assert all(np.all(np.isfinite(a)) for a in _leaves(r))
                seen.append(r.step)
            elif run.is_dir():  # killed before the first checkpoint: it says so clearly
                with pytest.raises(CheckpointError, match="holds no checkpoint"):
                    load_run(run)
        # the last run, resumed without a kill, ends exactly where the reference does
        if (run / "config.json").is_file():
            start(["train", "--out", str(run), "--resume", "--quiet"])
        else:
            start(train + [str(run)])
        assert finish() == 0, err.read_text()[-2000:]
        check_finished(run)
        print(f"\nSIGKILL: {kills} kills, {finished} runs finished before their kill, phases {t_first:.2f} s + "
              f"{t_total - t_first:.2f} s, checkpoints seen at {seen}")
        assert len(set(seen)) >= 4, seen  # the kills landed at many different points
    finally:  # on failure, stop the child in flight (by its pid) and the server
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        server.stdin.close()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def test_sigint_in_training_checkpoints_and_prints_how_to_resume(tmp_path, env):  # noqa: F811 - env: the fixture from _subproc
    cfg = _config(tmp_path, 100_000)
    run = tmp_path / "run"
    child = subprocess.Popen(
        _cli_interactive("train", "--data", DATA, "--preset", "fast", "--config", str(cfg), "--out", str(run), "--quiet"),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait(lambda: child.poll() is not None or (run / "checkpoint.json").is_file())
    first = json.loads((run / "checkpoint.json").read_text())["step"]
    time.sleep(0.3)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 130, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert f"scorefield train --out {run} --resume" in lines[0]
    r = load_run(run)
    assert first <= r.step < 100_000
    assert r.step == json.loads((run / "checkpoint.json").read_text())["step"]
