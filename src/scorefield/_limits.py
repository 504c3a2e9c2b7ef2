"""Resource limits checked before work starts: what this machine has (free memory) and the
integer ranges every count and seed must lie in, so that impossible requests fail at once
with one line instead of late with an out-of-memory error or an overflow."""

from __future__ import annotations

import os

# counts (steps, batch sizes, particles, levels, ...): JAX indexes and counts steps in int32
MAX_COUNT = 2**31 - 1
# seeds: integers in [0, 2^63); every seed gives its own key (see scorefield._seed)
SEED_LIMIT = 2**63


def available_memory() -> int:
    """Bytes of memory a new allocation can get without swapping: MemAvailable of
    /proc/meminfo (Linux), else free physical pages, else 8 GiB when neither is known.
    ``SCOREFIELD_MEMORY_LIMIT`` (bytes) overrides it, for tests and for shared machines."""
    env = os.environ.get("SCOREFIELD_MEMORY_LIMIT", "").strip()
    if env:
        try:
            return max(0, int(float(env)))
        except ValueError:
            pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def fmt_bytes(n: float) -> str:
    """`n` bytes as a short human figure: 512 B, 3.2 MiB, 1.5 GiB."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"
