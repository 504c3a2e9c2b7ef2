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
