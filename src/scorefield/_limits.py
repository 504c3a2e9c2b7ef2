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


def sample_frames(sampler, every: int | None, max_steps_per_call: int = 10_000) -> int:
    """Frames a trajectory of `sampler` recorded every `every` steps holds: the start, those
    of every level, and the samples (0 without a trajectory)."""
    if every is None:
        return 0
    steps, per_call = int(sampler.steps_per_level), max(1, int(max_steps_per_call))
    per_level = sum(min(per_call, steps - s) // int(every) for s in range(0, steps, per_call))
    return 2 + int(sampler.n_levels) * per_level


def check_sample_memory(n: int, dim: int, frames: int = 0, *, every: int | None = None,
                        n_name: str = "n=", every_name: str = "trajectory_every=", error=None) -> None:
    """Refuse, before sampling, `n` samples of dimension `dim` (and a trajectory of `frames`
    frames) that do not fit in free memory: the samples are held once as float32 and once
    more while saved, a trajectory three times (its chunks, their concatenation, the float32
    result). Raises `error` (InputError by default, exit 2) naming the option and the
    largest value that fits."""
    from ._errors import InputError

    error = error or InputError
    free = available_memory()
    row = 4 * int(dim)
    need = row * int(n) * (2 + 3 * int(frames))
    if need <= free:
        return
    fits_n = int(free // (row * (2 + 3 * int(frames))))
    if frames and every is not None and 2 * row * int(n) < free:
        frames_fit = max(int((free / (row * int(n)) - 2) / 3), 0)
        more = f"; give a larger {every_name.rstrip('= ')} (at most {max(frames_fit, 2)} frames fit) or at most {fits_n} samples"
        raise error(f"{every_name}{every} records {frames} frames of {n} x {dim} floats, which need about "
                    f"{fmt_bytes(need)} of memory, more than is free ({fmt_bytes(free)}){more}")
    raise error(f"{n_name}{n} samples of dimension {dim} need about {fmt_bytes(need)} of memory, more than is free "
                f"({fmt_bytes(free)}); the largest {n_name.rstrip('= ')} that fits is {fits_n}")
