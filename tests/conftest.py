"""Test-session settings.

One persistent XLA compilation cache for the whole session, shared by both xdist workers and
by every CLI subprocess a test starts (they inherit the environment): the tests build the
same tiny models again and again, and each new process or closure would otherwise recompile
identical programs. A cached executable is the same compiled code, so results are unchanged.
The cache starts empty in every session, so a clean clone measures what CI measures.

With SCOREFIELD_TEST_XLA=quick (`make test`'s first pass) XLA compiles for the CPU with its
quick settings: no LLVM optimisation and the classic loop emitters. Compilation is most of
the suite's time, and these settings halve it; results change only in the last bits of a
float, and the tests compare against closed forms with tolerances. Children a test starts
inherit the settings. A test that compares two differently shaped programs bit for bit
(blocks, chunks, devices, processes), or whose time is spent running compiled code rather
than compiling it, is marked `xla_default`: it runs in the second pass with XLA's default
settings, the ones a user's runs compile with, and is skipped in a quick session.
"""

import os
import shutil
import tempfile

import pytest

QUICK_XLA = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
QUICK = os.environ.get("SCOREFIELD_TEST_XLA") == "quick"
if QUICK and QUICK_XLA not in os.environ.get("XLA_FLAGS", ""):  # xdist workers inherit the controller's
    os.environ["XLA_FLAGS"] = f"{QUICK_XLA} {os.environ.get('XLA_FLAGS', '')}".strip()

_OWN_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # set here before JAX is imported
    _OWN_CACHE = tempfile.mkdtemp(prefix="scorefield-test-xla-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def pytest_unconfigure(config):
    if _OWN_CACHE is not None:  # only the process that made it (the xdist controller) removes it
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


# The files that take longest (CPU seconds measured on 2 cores, 2026-12-01), heaviest first:
# `--dist loadfile` hands whole files to the two workers in collection order, so these go out
# first and the many short files fill in at the end, and both workers finish together
# instead of one running a heavy file alone while the other waits.
HEAVY_FIRST = (
    "test_train.py", "test_energy.py", "test_energy_cli.py", "test_reliability_kill.py", "test_distributed.py",
    "test_contract_samplers.py", "test_points.py", "test_cli_plot.py", "test_nets.py", "test_unet.py",
    "test_demo.py", "test_samplers.py", "test_contract_nets.py", "test_reliability_lock.py", "test_likelihood.py",
    "test_fewstep.py", "test_reliability_resources.py", "test_cli_sample.py", "test_targets.py",
)


# The second pass (`--dist load`, 16 tests): its longest tests first (CPU seconds measured
# 2026-12-02), so that the last test to start is a short one and neither worker idles long.
XLA_DEFAULT_FIRST = ("test_bitwise_equal_on_two_devices", "[nuts]", "[ode]", "[anuts]", "[amala]", "[mala]")


# The files holding `xla_default` tests. `make test`'s second pass (-m xla_default) collects
# only these: importing every test module again costs each worker ~7 CPU s. The first pass
# fails if an `xla_default` test sits anywhere else, so this list cannot silently drop one.
XLA_DEFAULT_FILES = ("test_contract_samplers.py",)


def pytest_ignore_collect(collection_path, config):
    if config.getoption("markexpr", "") == "xla_default" and collection_path.suffix == ".py":
        return collection_path.name.startswith("test_") and collection_path.name not in XLA_DEFAULT_FILES
    return None


def _xla_default_rank(item) -> int:
    return next((i for i, part in enumerate(XLA_DEFAULT_FIRST) if part in item.nodeid), len(XLA_DEFAULT_FIRST))


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
    if not QUICK:
        items.sort(key=lambda item: _xla_default_rank(item) if "xla_default" in item.keywords else len(XLA_DEFAULT_FIRST))
    if QUICK:
        skip = pytest.mark.skip(reason="compiled with XLA's default settings: run without SCOREFIELD_TEST_XLA=quick")
        stray = sorted({item.path.name for item in items if "xla_default" in item.keywords} - set(XLA_DEFAULT_FILES))
        if stray:
            raise pytest.UsageError(f"xla_default tests outside conftest.XLA_DEFAULT_FILES: {stray}; add the files there")
        for item in items:
            if "xla_default" in item.keywords:
                item.add_marker(skip)
