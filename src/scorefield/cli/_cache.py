"""The command line's persistent XLA compilation cache.

A command compiles the same programs every time it runs the same recipe: the training step
of the default preset takes longer to compile than a thousand of its steps take to run on
2 CPU cores. `scorefield` (the console script) therefore keeps JAX's persistent compilation
cache in ``$XDG_CACHE_HOME/scorefield/xla`` (``~/.cache/scorefield/xla``), so that running
the same training again (the same recipe, data and seed: the noise levels and, for
sampling, the run's weights are compiled in as constants, so another seed or image compiles
anew) reuses the compiled programs. A cached executable is the same compiled code, so
results are unchanged bit for bit.

``SCOREFIELD_XLA_CACHE`` chooses: unset, the directory above; a path, that directory;
``off`` (or 0, no, false), no cache. ``JAX_COMPILATION_CACHE_DIR``, JAX's own setting, wins
when it is set. A directory that cannot be created or written is skipped silently (the
command compiles as without a cache). No size bound is set: JAX's bounded (LRU) cache
races when several processes share one directory (an entry evicted by one while another
reads it: a warning on every command), so the cache grows by about 1 MB per new recipe
and is safe to delete; ``JAX_COMPILATION_CACHE_MAX_SIZE``, when a user sets it, is JAX's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import MutableMapping

_OFF = ("0", "off", "no", "false")


def cache_dir(environ: MutableMapping[str, str] | None = None) -> Path | None:
    """The cache directory the settings in `environ` (default os.environ) ask for, or None
    for no cache (``SCOREFIELD_XLA_CACHE=off``)."""
    env = os.environ if environ is None else environ
    if env.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(env["JAX_COMPILATION_CACHE_DIR"])
    setting = env.get("SCOREFIELD_XLA_CACHE", "").strip()
    if setting.lower() in _OFF:
        return None
    if setting:
        return Path(setting).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scorefield" / "xla"


def configure(environ: MutableMapping[str, str] | None = None) -> Path | None:
    """Point JAX's persistent compilation cache at :func:`cache_dir` through the
    environment (call before JAX is imported); returns the directory used, or None.

    A directory that cannot be created or written is not used (None)."""
    env = os.environ if environ is None else environ
    path = cache_dir(env)
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not (path.is_dir() and os.access(path, os.W_OK | os.X_OK)):
        return None
    env["JAX_COMPILATION_CACHE_DIR"] = str(path)
    # JAX keeps only programs that took 1 s or more to compile; a sampler's start (its prior
    # draws and states, about 0.45 s on 2 CPU cores) would compile again on every command
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", str(MIN_COMPILE_SECONDS))
    return path


MIN_COMPILE_SECONDS = 0.1  # programs that compile faster are not worth a file each
