"""Run-directory bookkeeping: preparing a new or resumed run directory, the free-space
check, temporaries of killed writers, the metrics log, and writes that fail with one line.

Messages name Python arguments (``out=``, ``resume=True``); the CLI words them as flags."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from .. import _fs
from .._errors import InputError, ScorefieldError
from . import _checkpoint as ckpt
from ._multiprocess import on_lead

CONFIG = "config.json"
METRICS = "metrics.jsonl"
LOCK = ".lock"


class RunDirLock:
    """An exclusive lock on a run directory: ``fcntl.flock`` on `out`/.lock, which holds the
    holder's process id. The kernel releases it when the process ends, however it ends
    (SIGKILL included), so a stale lock file never blocks anyone."""

    def __init__(self, out: Path, fh):
        self.out, self.fh = out, fh

    def release(self) -> None:
        """Release the lock; the lock file of a directory left without a run is removed, so a
        run that failed before writing anything leaves nothing behind."""
        if self.fh is None:
            return
        try:
            if not (self.out / CONFIG).exists():
                (self.out / LOCK).unlink(missing_ok=True)  # still held: nobody else can be using it
        except OSError:
            pass
        self.fh.close()  # closing the descriptor releases the flock
        self.fh = None


def _in_use(out: Path, pid: str) -> ScorefieldError:
    return ScorefieldError(f"out={out} is in use by another scorefield process (pid {pid or 'unknown'}); "
                           "wait for it to end or stop it, or choose another directory")


def refuse_if_locked(out: str | Path) -> None:
    """ScorefieldError (exit 1), the message of :func:`lock_run_dir`, when another process
    holds the lock of `out`: a check that costs microseconds, so that a command can refuse
    before it loads data or compiles anything. Creates nothing and leaves no lock taken
    (the run's own lock is taken later, by lock_run_dir, which decides)."""
    try:
        fh = open(Path(out) / LOCK)
    except OSError:  # no lock file: nobody holds it
        return
    with fh:
        try:  # shared: conflicts with a holder's exclusive lock only
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            raise _in_use(Path(out), fh.read().strip()) from None
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def lock_run_dir(out: str | Path, *, resume: bool) -> RunDirLock:
    """Take the exclusive lock of the run directory `out` (created if needed for a new run).

    Raises:
        ScorefieldError (exit 1) at once, naming the holder's process id, when another process
        holds it; InputError when `out` cannot be written.
    """
    out = Path(out)
    if not resume:
        _fs.ensure_writable_dir(out, flag="out=")
    path = out / LOCK
    while True:
        try:
            fh = open(path, "a+")
        except OSError as e:
            raise InputError(f"out={out} cannot be written ({e.strerror or type(e).__name__}); "
                             "give a writable directory") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            pid = fh.read().strip()
            fh.close()
            raise _in_use(out, pid) from None
        try:  # the file may have been removed (a failed run's release) between open and lock
            same = os.path.samestat(os.fstat(fh.fileno()), os.stat(path))
        except OSError:
            same = False
        if same:
            break
        fh.close()
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return RunDirLock(out, fh)


def prepare_run_dir(out: str | Path, *, resume: bool) -> Path:
    """Check up front that `out` can hold a run: writable, and not an existing run unless
    resuming (so no work is ever overwritten by accident)."""
    out = Path(out)
    if resume:
        if not (out / CONFIG).is_file():
            raise InputError(f"out={out} is not a scorefield run directory (no {CONFIG}) to resume; "
                             "train it first with resume=False")
        return out
    if (out / CONFIG).exists() or ckpt.exists(out):
        raise InputError(f"out={out} already holds a run; pass resume=True to continue it or choose another directory")
    return _fs.ensure_writable_dir(out, flag="out=")


def check_free_space(out: Path, arrays: dict[str, np.ndarray]) -> None:
    """Fail before training if `out` cannot hold the checkpoints: up to `keep` = 2 array files
    plus the one being written, and a margin for the logs."""
    need = 3 * sum(a.nbytes for a in arrays.values()) + (1 << 20)
    try:
        free = shutil.disk_usage(out).free
    except OSError:
        return
    if free < need:
        raise ScorefieldError(f"out={out} has {free / 2**20:.1f} MiB free but its checkpoints need about "
                              f"{need / 2**20:.1f} MiB; free disk space or choose another directory")


def remove_stale_temporaries(out: Path) -> None:
    """Temporary files of a process killed mid-write: never read, safe to drop."""
    for pattern in _fs.TEMP_GLOBS:
        for p in out.glob(pattern):
            p.unlink(missing_ok=True)
    for p in (out / ".write-test", out / "metrics.tmp"):
        p.unlink(missing_ok=True)


def truncate_metrics(path: Path, step: int) -> None:
    """Drop log records past `step`, the checkpoint a resumed run restarts from."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] < step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    _fs.write_atomic(path, "".join(k + "\n" for k in keep))


def log_lines(losses, first_step: int, window, log_every: int, wall: float) -> list[str]:
    """The metrics.jsonl records of one compiled call: `losses` of steps first_step, ...
    appended to the rolling `window` (a deque, updated in place); a record every
    `log_every` steps with the window's mean loss."""
    lines = []
    for i, loss in enumerate(losses):
        window.append(float(loss))
        s = first_step + i
        if s % log_every == 0:
            lines.append(json.dumps({"step": s, "loss": float(np.mean(window)), "wall": round(wall, 3)}) + "\n")
    return lines


def write(path: Path, fn: Callable[[], object], last_saved: int | None) -> None:
    """Run `fn` on process 0 (see write_local); every process must call it, and every
    process raises if the write failed."""
    on_lead(lambda: write_local(path, fn, last_saved))


def write_local(path: Path, fn: Callable[[], object], last_saved: int | None) -> None:
    """Run `fn`; an OSError (disk full, directory removed, ...) becomes one clear line."""
    try:
        fn()
    except OSError as e:
        kept = ("no checkpoint was written yet" if last_saved is None or last_saved < 0
                else f"the last checkpoint (step {last_saved}) is intact")
        raise ScorefieldError(f"could not write {path} ({e.strerror or type(e).__name__}); {kept}; "
                              "free disk space or move the run directory, then resume it with resume=True") from None


class Progress:
    """A tqdm bar (step, loss, steps/s, time left), off when quiet or without a TTY.

    Until the first compiled call returns it says "compiling"; the rate and the time left
    are then estimated from the compiled calls only (the compilation would make the first
    estimate several times too slow). The presets keep one compiled call under a second on
    2 CPU cores, so the bar moves at least once a second.
    """

    def __init__(self, total: int, initial: int, enabled: bool):
        self.bar = None
        self.compiled = False
        if enabled:
            from tqdm.auto import tqdm

            # smoothing=0: rate = (n - initial) / elapsed, which the first update resets
            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr,
                            desc="train (compiling)", smoothing=0)

    def update(self, n: int, loss: float) -> None:
        if self.bar is None:
            return
        self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if not self.compiled:
            self.compiled = True
            self.bar.set_description("train", refresh=False)
            self.bar.n += n  # the steps of the compiling call count, its time does not
            self.bar.initial = self.bar.n
            self.bar.start_t = self.bar.last_print_t = self.bar._time()
            self.bar.refresh()
            return
        self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
