"""Multi-process training through jax.distributed: two local CPU processes (one device
each, gloo collectives, coordinator on localhost) make ONE data-parallel run whose losses
and parameters are those of one process with two devices, written by process 0 alone.

Tolerance: both runs partition the same program over a 2-device mesh, so they differ only
in how the cross-device sums are carried out (gloo between processes, XLA's in-process
all-reduce within one). A sum of two operands is exact whichever way it is taken, and we
measured bitwise-equal logs and checkpoints; we still allow rtol 1e-6 (a few float32 ulps)
so that a gloo or XLA release that reassociates a reduction does not fail a correct run,
while a wrong shard, key or batch changes the losses at the first digit.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import tiny_toml  # noqa: E402
from _subproc import ForkServer, xla_flags  # noqa: E402

from scorefield.train import _checkpoint as ckpt  # noqa: E402
from scorefield.train import load_run  # noqa: E402

DATA = "toy:two-moons"
RTOL = 1e-6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


CACHE: dict = {}
SERVER: list = []  # the module's fork server (fixture `server`)


def _env(**extra) -> dict:
    """A clean environment; children share a persistent compilation cache so that the
    resumed pair does not compile again."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(XLA_FLAGS=xla_flags(extra.pop("XLA_FLAGS", "")), JAX_PLATFORMS="cpu", JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", **CACHE, **extra)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Every `scorefield train` process of this module is forked from one interpreter that
    has imported JAX and scorefield (tests/_subproc.py's ForkServer), its environment the
    clean one of `_env`: each process is still a process of its own, with its own JAX
    backend, joining the others through jax.distributed, but skips ~1.7 CPU s of imports."""
    CACHE.setdefault("JAX_COMPILATION_CACHE_DIR", str(tmp_path_factory.mktemp("jax-cache")))
    srv = ForkServer(_env(), tmp_path_factory.mktemp("children"))
    SERVER.append(srv)
    yield srv
    SERVER.remove(srv)
    srv.close()


def _train(args: list[str], env: dict) -> tuple:
    """`scorefield train --quiet ARGS` in a child, with `env` (variables beyond `_env()`'s)."""
    return SERVER[0].start(["train", "--quiet", *args], env)


def _start_pair(args_of) -> list[tuple]:
    """Start process 0 and 1 of one run (args_of(i) -> CLI arguments)."""
    port = _free_port()
    return [_train(args_of(i), dict(JAX_COORDINATOR_ADDRESS=f"localhost:{port}", JAX_NUM_PROCESSES="2",
                                    JAX_PROCESS_ID=str(i)))
            for i in (0, 1)]


def _finish(procs: list[tuple]) -> list[tuple[int, str, str]]:
    """(rc, stdout, stderr) of each; gloo's own "[Gloo] Rank i is connected" line on stdout
    is dropped."""
    codes = [SERVER[0].wait(pid) for pid, _, _ in procs]
    outs = [(out.read_text(), err.read_text()) for _, out, err in procs]
    return [(rc, "".join(ln for ln in o.splitlines(True) if not ln.startswith("[Gloo]")), e)
            for rc, (o, e) in zip(codes, outs)]


def _two_processes(args_of, also: list[str] | None = None) -> list[tuple[int, str, str]]:
    """One run of two processes, and at the same time the one-process, two-device run
    `also` if given."""
    procs = _start_pair(args_of)
    if also is not None:
        procs.append(_train(also, dict(XLA_FLAGS=xla_flags("--xla_force_host_platform_device_count=2"))))
    return _finish(procs)


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("scorefield train:")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, server):
    """One process with two devices (40 steps), and two processes with one device each
    (20 steps, then resumed to 40); each process of the pair has its own --out, as hosts
    without a shared disk would."""
    tmp = tmp_path_factory.mktemp("dist")
    (tmp / "tiny.toml").write_text(tiny_toml(20) + 'net = "sigma"\n')  # quick to build
    single = ["--data", DATA, "--config", str(tmp / "tiny.toml"), "--steps", "40", "--out", str(tmp / "single")]
    *first, single = _two_processes(
        lambda i: ["--data", DATA, "--config", str(tmp / "tiny.toml"), "--out", str(tmp / f"host{i}")], also=single)
    for rc, _, err in (*first, single):
        assert rc == 0, err[-2000:]
    resumed = _two_processes(lambda i: ["--out", str(tmp / f"host{i}"), "--resume", "--steps", "40"])
    for rc, _, err in resumed:
        assert rc == 0, err[-2000:]
    return tmp, first, resumed


def test_two_processes_train_like_two_devices_of_one(runs):
    tmp, _, _ = runs
    multi, single = load_run(tmp / "host0"), load_run(tmp / "single")  # loads in this one process
    assert multi.step == single.step == 40
    got, want = [r["loss"] for r in multi.metrics()], [r["loss"] for r in single.metrics()]
    assert [r["step"] for r in multi.metrics()] == [r["step"] for r in single.metrics()] == list(range(0, 40, 5))
    np.testing.assert_allclose(got, want, rtol=RTOL)
    m_multi, a_multi = ckpt.load(tmp / "host0")
    m_single, a_single = ckpt.load(tmp / "single")
    # the same numbers would come from two processes each training a copy on its own device;
    # what makes it one run is that each batch was sharded over both processes' devices
    assert (m_multi["devices"], m_multi["processes"]) == (2, 2)
    assert (m_single["devices"], m_single["processes"]) == (2, 1)
    assert a_multi.keys() == a_single.keys()
    for k in a_single:  # model, EMA, optimiser state and step
        np.testing.assert_allclose(a_multi[k], a_single[k], rtol=RTOL, atol=1e-7, err_msg=k)


def test_only_process_0_writes_and_reports(runs):
    tmp, first, resumed = runs
    assert sorted(p.name for p in (tmp / "host0").iterdir()) == [  # .lock: the run-directory lock
        ".lock", "checkpoint-000000030.npz", "checkpoint-000000040.npz", "checkpoint.json", "config.json", "metrics.jsonl"]
    assert not (tmp / "host1").exists()  # process 1 never touched its --out
    for (_, out0, _), (_, out1, _) in (first, resumed):
        assert out0.startswith("trained ") and out1 == ""
    assert json.loads((tmp / "host0" / "config.json").read_text())["steps"] == 40


def test_an_error_on_process_0_stops_both_with_its_message(runs, tmp_path):
    """host0 already holds a run: process 0 refuses, process 1 gets the same one line and
    exit code instead of waiting in a collective; a batch that does not divide the 2 devices,
    or data that differ between the processes, are refused by both before anything is
    written."""
    tmp, _, _ = runs
    cfg = ["--config", str(tmp / "tiny.toml")]
    # three independent pairs at once: each fails within seconds of starting
    pairs = [_start_pair(lambda i: ["--data", DATA, *cfg, "--out", str(tmp / f"host{i}")]),
             _start_pair(lambda i: ["--data", DATA, *cfg, "--batch-size", "33", "--out", str(tmp_path / f"odd{i}")]),
             _start_pair(lambda i: ["--data", [DATA, "toy:checkerboard"][i], *cfg, "--out", str(tmp_path / f"mixed{i}")])]
    taken, odd, mixed = (_finish(p) for p in pairs)

    lines = [_error_lines(err) for _, _, err in taken]
    assert [rc for rc, _, _ in taken] == [2, 2]
    assert lines[0] == lines[1] and len(lines[0]) == 1 and "already holds a run" in lines[0][0]

    assert [rc for rc, _, _ in odd] == [2, 2]
    for _, _, err in odd:
        assert "batch_size=33 must be divisible by the 2 devices of the 2 processes" in err
    assert not (tmp_path / "odd0").exists()

    # process 1 loads other data than process 0: both refuse (else a silent mixture)
    assert [rc for rc, _, _ in mixed] == [2, 2]
    for _, _, err in mixed:
        assert "the training data differ between processes (process 1" in err
    assert not (tmp_path / "mixed0").exists()


@pytest.mark.parametrize("argv, env, says", [
    (["--num-processes", "2"], {}, "needs --coordinator (or JAX_COORDINATOR_ADDRESS) and --process-id"),
    (["--num-processes", "2", "--coordinator", "localhost:1", "--process-id", "2"], {}, "process id 2 is out of range for 2 processes"),
    (["--process-id", "0"], {}, "need --num-processes P (or JAX_NUM_PROCESSES) greater than 1"),
    ([], {"JAX_NUM_PROCESSES": "two"}, "JAX_NUM_PROCESSES='two' is not valid"),
    ([], {"JAX_NUM_PROCESSES": "2", "JAX_COORDINATOR_ADDRESS": "localhost:1", "JAX_PROCESS_ID": "-1"},
     "JAX_PROCESS_ID='-1' is not valid"),
])
def test_incomplete_multi_host_settings_are_one_line_usage_errors(tmp_path, monkeypatch, capsys, argv, env, says):
    """Checked before JAX is asked to connect (which would wait minutes for peers)."""
    from scorefield.cli import main

    for k in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "JAX_COORDINATOR_ADDRESS"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["train", "--data", DATA, "--out", str(tmp_path / "run"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert not (tmp_path / "run").exists()


def test_a_coordinator_that_cannot_be_reached_fails_in_one_line_within_the_join_timeout(tmp_path, monkeypatch,
                                                                                        capsys, server):
    """Issue 14 item 17: process 1 of a run whose coordinator address answers nothing (a
    port on this machine where nothing listens), and process 0 whose peer never comes, each
    stop after SCOREFIELD_JOIN_TIMEOUT seconds with exit 1 and one line saying what did not
    happen; nothing is written. (JAX alone waits its own timeout, then aborts the process
    from C++ with a stack trace and exit 134.) Process 0 runs as a child (it gives up by
    ending its process); process 1, which gives up before JAX is asked to join, in this one."""
    import time

    from scorefield.cli import main

    ports = {1: _free_port(), 0: _free_port()}  # free now: nobody listens on either
    t0 = time.monotonic()
    lead = _train(["--data", DATA, "--out", str(tmp_path / "run0"), "--coordinator", f"127.0.0.1:{ports[0]}",
                   "--num-processes", "2", "--process-id", "0"], dict(SCOREFIELD_JOIN_TIMEOUT="2"))
    for k in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "JAX_COORDINATOR_ADDRESS"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("SCOREFIELD_JOIN_TIMEOUT", "2")
    rc1 = main(["train", "--data", DATA, "--out", str(tmp_path / "run1"), "--quiet", "--coordinator",
                f"127.0.0.1:{ports[1]}", "--num-processes", "2", "--process-id", "1"])
    err1 = capsys.readouterr().err
    [(rc0, _, err0)] = _finish([lead])
    elapsed = time.monotonic() - t0
    for rc, err in ((rc1, err1), (rc0, err0)):
        lines = err.strip().splitlines()
        assert rc == 1 and len(lines) == 1 and "Traceback" not in err and "SCOREFIELD_JOIN_TIMEOUT" in lines[0], err
    assert f"could not reach the coordinator 127.0.0.1:{ports[1]} (--coordinator) within 2 s (connection refused" in err1
    assert f"process 0 could not join the run at 127.0.0.1:{ports[0]} within 2 s: the other processes" in err0
    assert elapsed < 60, elapsed  # a process start and a 2-s wait, on a loaded machine
    assert not list(tmp_path.iterdir())
