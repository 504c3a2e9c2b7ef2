"""The run-directory lock (issue 14, item 1): a second `scorefield train` with the same
--out refuses at once (exit 1, one line naming the holder's process id) while the first
runs, and the kernel frees the lock when the holder dies, even by SIGKILL. Real processes:
the lock is between processes."""

import os
import signal

import pytest

from _subproc import ForkServer
from _tiny import SIGMA_NET, tiny_toml

from scorefield.train._rundir import lock_run_dir
from test_reliability_signals import DATA, _cli, _wait, env  # noqa: F401  (env is a fixture)


def test_second_train_on_the_same_out_refuses_until_the_holder_dies(tmp_path, env):  # noqa: F811
    # every process forked from one warm interpreter (tests/_subproc.py: each its own
    # process, as a second command in another terminal would be, without ~1.7 CPU s of
    # imports); the holder is sent SIGSTOP and SIGKILL only, which no handler sees
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(tiny_toml(100_000) + SIGMA_NET)
    run = tmp_path / "run"
    argv = ("train", "--data", DATA, "--config", str(cfg), "--out", str(run), "--quiet")
    server = ForkServer(env, tmp_path)
    try:
        first, _, first_err = server.start(list(argv))
        _wait(lambda: server.poll(first) is not None or (run / "checkpoint.json").is_file())
        assert server.poll(first) is None, first_err.read_text()[-2000:]
        # the holder, stopped, keeps its lock (and leaves the cores to the refused commands)
        os.kill(first, signal.SIGSTOP)
        # a fresh train and a resume are both refused, at once: before the data are read (the
        # fresh one names a missing file, which would be exit 2 once it were looked at)
        missing = ("--data", f"image:{tmp_path / 'missing.png'}")
        for extra in (missing, ("--resume",)):
            second, _, err = server.start([*argv, *extra])
            code = server.wait(second, timeout=120)
            stderr = err.read_text()
            lines = stderr.strip().splitlines()
            assert code == 1, stderr[-2000:]
            assert len(lines) == 1 and "Traceback" not in stderr, stderr[-2000:]
            assert f"pid {first}" in lines[0] and str(run) in lines[0], lines[0]
            assert server.poll(first) is None  # the holder is untouched
        os.kill(first, signal.SIGKILL)
        assert server.wait(first, timeout=60) == -signal.SIGKILL
        # the kernel released the lock: the run resumes (to a short total)
        step = int(__import__("json").loads((run / "checkpoint.json").read_text())["step"])
        third, _, err = server.start(["train", "--out", str(run), "--resume", "--steps", str(step + 10), "--quiet"])
        assert server.wait(third, timeout=300) == 0, err.read_text()[-2000:]
    finally:
        server.close()  # kills a child left running by a failure, by its pid


def test_lock_is_exclusive_and_a_failed_new_run_leaves_nothing(tmp_path):
    from scorefield._errors import ScorefieldError
    from scorefield.train._rundir import LOCK, lock_run_dir

    out = tmp_path / "new"
    lock = lock_run_dir(out, resume=False)
    assert (out / LOCK).read_text().strip() == str(os.getpid())
    # a second descriptor in this process conflicts too (flock is per open file)
    with pytest.raises(ScorefieldError, match=rf"pid {os.getpid()}"):
        lock_run_dir(out, resume=False)
    lock.release()
    assert list(out.iterdir()) == []  # no run was written: the lock file goes too
    again = lock_run_dir(out, resume=False)
    again.release()


def test_refuse_if_locked_names_the_holder_and_creates_nothing(tmp_path):
    from scorefield._errors import ScorefieldError
    from scorefield.train._rundir import refuse_if_locked

    out = tmp_path / "run"
    refuse_if_locked(out)  # no directory: nothing to refuse, nothing created
    assert not out.exists()
    refuse_if_locked(tmp_path)  # a directory without a lock file
    assert list(tmp_path.iterdir()) == []
    lock = lock_run_dir(out, resume=False)
    with pytest.raises(ScorefieldError, match=rf"out={out} is in use .*pid {os.getpid()}"):
        refuse_if_locked(out)
    lock.release()
    refuse_if_locked(out)  # released: the probe passes and takes nothing
    again = lock_run_dir(out, resume=False)
    again.release()
