"""Test-session settings.

One persistent XLA compilation cache for the whole session, shared by both xdist workers and
by every CLI subprocess a test starts (they inherit the environment): the tests build the
same tiny models again and again, and each new process or closure would otherwise recompile
identical programs. A cached executable is the same compiled code, so results are unchanged.
The cache starts empty in every session, so a clean clone measures what CI measures.
"""

import os
import shutil
import tempfile

_OWN_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # set here before JAX is imported
    _OWN_CACHE = tempfile.mkdtemp(prefix="scorefield-test-xla-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def pytest_unconfigure(config):
    if _OWN_CACHE is not None:  # only the process that made it (the xdist controller) removes it
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
