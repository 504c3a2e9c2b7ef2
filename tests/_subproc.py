"""What the tests that run the real command line in child processes share: an environment
with a persistent JAX compilation cache (children start in seconds) and this tree's
sources, a child whose Ctrl-C, SIGTERM and SIGHUP behave as in a terminal, and a wait."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest


def xla_flags(*extra: str) -> str:
    """XLA_FLAGS for a child: this process's (the quick settings of tests/conftest.py, if on),
    then `extra` (such as a host device count), so that parent and child compile alike."""
    return " ".join([os.environ.get("XLA_FLAGS", ""), *extra]).strip()


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """os.environ for a child: CPU, one device, the parent's XLA settings, a compilation cache
    (the session's, from tests/conftest.py, shared with every other child and both xdist
    workers: the tiny training the reliability tests start compiles once; else the module's
    own), and PYTHONPATH at this tree's src."""
    cache = os.environ.get("JAX_COMPILATION_CACHE_DIR") or tmp_path_factory.mktemp("jax-cache")
    e = dict(os.environ)
    e.update(JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache), PYTHONPATH=str(Path(__file__).parents[1] / "src"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return e


def cli_in_terminal(*argv: str) -> list[str]:
    """`scorefield ARGV` in a child whose SIGINT, SIGTERM and SIGHUP are as in a terminal: a
    suite started in the background of a non-interactive shell (or nohup'd) passes some on
    as ignored or blocked, and a child started while one is blocked inherits the block;
    either would make the child deaf to the test's signal."""
    sigs = "[signal.SIGINT, signal.SIGTERM, signal.SIGHUP]"
    boot = (f"import runpy, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, {sigs}); "
            "signal.signal(signal.SIGINT, signal.default_int_handler); "
            "signal.signal(signal.SIGTERM, signal.SIG_DFL); signal.signal(signal.SIGHUP, signal.SIG_DFL); "
            "sys.argv = ['scorefield', *sys.argv[1:]]; runpy.run_module('scorefield.cli', run_name='__main__')")
    return [sys.executable, "-c", boot, *argv]


def wait(cond, timeout: float = 180.0) -> None:
    """Poll `cond()` every 20 ms until it is true; AssertionError after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the child")
        time.sleep(0.02)


# A fork server: imports JAX and most of scorefield once (not blackjax, which starts the JAX
# backend at import; before that, forking is safe), then forks one child per request that
# runs the command line in a process of its own; a child pays only for its own work, not for
# the ~1.7 CPU s of imports a fresh interpreter pays. A child sets its environment (read by
# JAX when its backend starts: XLA_FLAGS; and by the command line: JAX_PROCESS_ID, ...)
# before anything starts the backend, writes its stdout and stderr to files, and ends as a
# normal exit does (exit handlers run, streams flushed).
# Protocol, one JSON line each: ["start", argv, env, stdout file, stderr file] -> the pid;
# ["wait", pid] -> its exit code once it ends (negative: killed by that signal); ["poll",
# pid] -> its exit code if it has ended, else null.
FORK_SERVER = r"""
import atexit, json, os, sys, traceback
import equinox, jax, jax.numpy, optax, tqdm
import scorefield.cli, scorefield.data, scorefield.losses, scorefield.nets, scorefield.noise
from jax._src import xla_bridge
assert not xla_bridge.backends_are_initialized()
done = {}
for line in sys.stdin:
    req = json.loads(line)
    if req[0] in ("wait", "poll"):
        pid = req[1]
        if pid not in done:
            got, status = os.waitpid(pid, os.WNOHANG if req[0] == "poll" else 0)
            if got:
                done[pid] = os.waitstatus_to_exitcode(status)
        print(json.dumps(done.get(pid) if req[0] == "poll" else done.pop(pid)), flush=True)
        continue
    _, argv, env, out, err = req
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            sys.stdin.close()
            for fd, path in ((1, out), (2, err)):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            os.environ.update(env)
            code = scorefield.cli.main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                atexit._run_exitfuncs()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
    print(pid, flush=True)
"""


class ForkServer:
    """`scorefield ARGV` in child processes forked from one warm interpreter (FORK_SERVER)."""

    def __init__(self, env: dict[str, str], tmp: Path):
        import subprocess

        self._tmp, self._n = tmp, 0
        self._proc = subprocess.Popen([sys.executable, "-c", FORK_SERVER], env=env, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        self._live: set[int] = set()

    def _ask(self, req) -> int:
        import json

        self._proc.stdin.write(json.dumps(req) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        assert line, "the fork server died"
        return json.loads(line)

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> tuple[int, Path, Path]:
        """Start `scorefield ARGV` with `env` added to the server's environment: (pid, stdout
        file, stderr file)."""
        self._n += 1
        out, err = self._tmp / f"child{self._n}.out", self._tmp / f"child{self._n}.err"
        pid = self._ask(["start", list(argv), dict(env or {}), str(out), str(err)])
        self._live.add(pid)
        return pid, out, err

    def poll(self, pid: int) -> int | None:
        """The exit code of child `pid` if it has ended, else None (as Popen.poll)."""
        code = self._ask(["poll", pid])
        if code is not None:
            self._live.discard(pid)
        return code

    def wait(self, pid: int, timeout: float = 240.0) -> int:
        """The exit code of child `pid`; it is killed (SIGKILL) if it runs past `timeout` s."""
        import signal
        import threading

        def kill():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            code = self._ask(["wait", pid])
        finally:
            timer.cancel()
        self._live.discard(pid)
        return code

    def close(self) -> None:
        import signal

        for pid in self._live:  # children left by a failed test, by their pids
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        except Exception:  # noqa: BLE001 - a stuck server is killed
            self._proc.kill()
            self._proc.wait()
