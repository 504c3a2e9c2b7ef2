"""The console script's persistent XLA compilation cache (scorefield/cli/_cache.py)."""

import os

import pytest

from scorefield import cli
from scorefield.cli import _cache


def test_default_cache_is_under_xdg_cache_home_and_sets_no_size_bound(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    got = _cache.configure(env)
    assert got == tmp_path / "scorefield" / "xla" and got.is_dir()
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(got)
    assert "JAX_COMPILATION_CACHE_MAX_SIZE" not in env  # JAX's LRU bound races between processes


def test_jax_setting_wins_and_off_disables(tmp_path):
    env = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "mine"), "SCOREFIELD_XLA_CACHE": "off"}
    assert _cache.configure(env) == tmp_path / "mine"
    for off in ("off", "0", "No", "false"):
        env = {"XDG_CACHE_HOME": str(tmp_path), "SCOREFIELD_XLA_CACHE": off}
        assert _cache.configure(env) is None and "JAX_COMPILATION_CACHE_DIR" not in env
    env = {"SCOREFIELD_XLA_CACHE": str(tmp_path / "here"), "JAX_COMPILATION_CACHE_MAX_SIZE": "123"}
    assert _cache.configure(env) == tmp_path / "here" and env["JAX_COMPILATION_CACHE_MAX_SIZE"] == "123"


def test_a_directory_that_cannot_be_made_is_skipped(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {"SCOREFIELD_XLA_CACHE": str(blocker / "xla")}
    assert _cache.configure(env) is None and "JAX_COMPILATION_CACHE_DIR" not in env


def test_the_console_script_configures_the_cache_before_running(tmp_path, monkeypatch):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("SCOREFIELD_XLA_CACHE", raising=False)
    monkeypatch.delenv("JAX_COMPILATION_CACHE_MAX_SIZE", raising=False)  # restored after the test
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    seen = {}
    monkeypatch.setattr(cli, "main", lambda: seen.setdefault("dir", os.environ.get("JAX_COMPILATION_CACHE_DIR")) and 0)
    monkeypatch.setattr(cli, "_IGNORE_AFTER_INTERRUPT", False)
    with pytest.raises(SystemExit):
        cli.entry()
    assert seen["dir"] == str(tmp_path / "scorefield" / "xla")
