"""The training loop: many steps per compiled call (lax.scan), data drawn inside the
compiled step, the batch sharded over every device of every process, checkpoints between
calls.

Multi-process runs (after ``jax.distributed.initialize()``) are one data-parallel run: each
process holds the same replicated state and its devices' slices of every global batch;
process 0 alone owns the run directory (config, log, checkpoints, progress bar). Everything
process 0 decides or reads from disk reaches the others through small collectives
(:func:`_on_lead`), so a failure there stops every process with the same error instead of
leaving the others waiting in a collective."""

from __future__ import annotations

import collections
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .. import _errors
from .. import _fs
from .._fs import ensure_writable_dir
from .._errors import ConfigError, DivergenceError, InputError, ScorefieldError
from . import _checkpoint as ckpt
from ._build import build_objective, build_optimizer, is_resolved, keys, resolve
from ._config import TrainConfig, read_config_json
from ._state import TrainState, from_arrays, init_state, step_key, to_arrays

CONFIG = "config.json"
METRICS = "metrics.jsonl"

def _mesh(batch_size: int) -> Mesh | None:
    """A 1-D mesh over all devices of all processes for data parallelism, or None on one
    device. ``jax.devices()`` lists them in the same order on every process."""
    devices = jax.devices()
    if len(devices) == 1:
        return None
    if batch_size % len(devices):
        where = ("local devices" if jax.process_count() == 1
                 else f"devices of the {jax.process_count()} processes")
        raise ConfigError(f"batch_size={batch_size} must be divisible by the {len(devices)} {where}; "
                          f"choose a multiple of {len(devices)}")
    return Mesh(np.asarray(devices), ("batch",))

def _is_lead() -> bool:
    return jax.process_index() == 0

def _broadcast_json(obj=None):
    """Process 0's JSON-serialisable `obj` on every process (the others pass anything).

    Two collectives: the length, then the bytes padded to a multiple of 4 KiB, so that
    repeated calls reuse a few compiled shapes."""
    from jax.experimental import multihost_utils as mh

    data = json.dumps(obj).encode() if _is_lead() else b""
    n = int(mh.broadcast_one_to_all(np.asarray([len(data)], np.int32))[0])
    buf = np.zeros(-(-n // 4096) * 4096, np.uint8)
    buf[:len(data)] = np.frombuffer(data, np.uint8)
    got = mh.broadcast_one_to_all(buf.view(np.int32))
    return json.loads(np.asarray(got, np.int32).view(np.uint8)[:n].tobytes())

def _on_lead(fn: Callable[[], object]):
    """Run `fn` on process 0 alone and return its JSON-serialisable result on every process.

    An exception in `fn` is raised on process 0 as it is and on the others as the same
    scorefield error class with the same message (one line, same exit code everywhere)."""
    if jax.process_count() == 1:
        return fn()
    err = None
    msg = None
    if _is_lead():
        try:
            msg = {"value": fn()}
        except Exception as e:  # noqa: BLE001 - re-raised below, after the others are told
            err = e
            msg = {"error": type(e).__name__ if isinstance(e, ScorefieldError) else "ScorefieldError",
                   "message": str(e) if isinstance(e, ScorefieldError) else f"process 0 failed: {type(e).__name__}: {e}",
                   "step": getattr(e, "step", None)}
    msg = _broadcast_json(msg)
    if err is not None:
        raise err
    if "error" in msg:
        cls = getattr(_errors, msg["error"], ScorefieldError)
        if not (isinstance(cls, type) and issubclass(cls, ScorefieldError)):
            cls = ScorefieldError
        if issubclass(cls, DivergenceError):
            raise cls(msg["message"], step=msg["step"])
        raise cls(msg["message"])
    return msg["value"]

def _broadcast_arrays(tree):
    """Process 0's `tree` on every process; the others pass a tree of the same structure
    whose array leaves may be jax.ShapeDtypeStruct. A no-op in one process."""
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils as mh

    is_leaf = lambda x: eqx.is_array(x) or isinstance(x, jax.ShapeDtypeStruct)  # noqa: E731
    arrays, rest = eqx.partition(tree, is_leaf)
    host = jax.tree_util.tree_map(
        lambda a: np.zeros(a.shape, a.dtype) if isinstance(a, jax.ShapeDtypeStruct) else np.asarray(a), arrays)
    return eqx.combine(jax.tree_util.tree_map(jnp.asarray, mh.broadcast_one_to_all(host)), rest)

def make_chunk(config: TrainConfig, dataset, mesh: Mesh | None) -> Callable:
    """A compiled function ``chunk(state, static, dataset, n_steps) -> (state, losses)``
    running `n_steps` training steps in one lax.scan."""
    objective = build_objective(config)
    optimizer = build_optimizer(config)
    base_key = keys(config)["train"]
    decay = config.ema_decay
    batch = config.batch_size
    data_sharding = None if mesh is None else NamedSharding(mesh, PartitionSpec("batch"))
    replicated = None if mesh is None else NamedSharding(mesh, PartitionSpec())

    @eqx.filter_jit
    def chunk(state: TrainState, static, dataset, n_steps: int):
        def loss_fn(params, x, key):
            return objective(eqx.combine(params, static), x, key=key)

        def body(state: TrainState, _):
            kd, kl = jax.random.split(step_key(base_key, state.step))
            x = dataset.sample(kd, batch)
            if data_sharding is not None:
                x = jax.lax.with_sharding_constraint(x, data_sharding)
            loss, grads = eqx.filter_value_and_grad(loss_fn)(state.params, x, kl)
            # a finite loss with a non-finite gradient would put NaNs into the parameters
            # silently (and into the next checkpoint): count it as divergence at this step
            grad_ok = jnp.isfinite(optax.tree_utils.tree_norm(grads))
            loss = jnp.where(grad_ok, loss, jnp.nan)
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            params = eqx.apply_updates(state.params, updates)
            # the EMA's horizon grows with the step, (1 + t)/(10 + t) capped at `decay`, so
            # that short runs are not dominated by the initial weights
            t = state.step.astype(jnp.float32)
            d = jnp.minimum(decay, (1.0 + t) / (10.0 + t))
            ema = jax.tree_util.tree_map(lambda e, p: d * e + (1.0 - d) * p, state.ema, params)
            return TrainState(params, opt_state, ema, state.step + 1), loss

        state, losses = jax.lax.scan(body, state, None, length=n_steps)
        if replicated is not None:
            # every process reads the losses and checkpoints the state from its own devices
            state, losses = jax.tree_util.tree_map(
                lambda a: jax.lax.with_sharding_constraint(a, replicated), (state, losses))
        return state, losses

    return chunk

def _replicate(tree, mesh: Mesh | None):
    """Every array leaf of `tree` (identical on all processes) as a global array replicated
    over `mesh`."""
    if mesh is None:
        return tree
    rep = NamedSharding(mesh, PartitionSpec())

    def put(a):
        if not eqx.is_array(a):
            return a
        # from host memory: each process fills its own devices (no cross-process copy)
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, rep, lambda idx: host[idx])

    return jax.tree_util.tree_map(put, tree)

class _Progress:
    """A tqdm bar (step, loss, steps/s, time left), off when quiet or without a TTY."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr, desc="train")

    def update(self, n: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

def prepare_run_dir(out: str | Path, *, resume: bool) -> Path:
    """Check up front that `out` can hold a run: writable, and not an existing run unless
    resuming (so no work is ever overwritten by accident)."""
    out = Path(out)
    if resume:
        if not (out / CONFIG).is_file():
            raise InputError(f"--resume: {out} is not a scorefield run directory (no {CONFIG}); train it first without --resume")
        return out
    if (out / CONFIG).exists() or ckpt.exists(out):
        raise InputError(f"--out {out} already holds a run; pass --resume to continue it or choose another directory")
    return ensure_writable_dir(out)

def train(
    config: TrainConfig,
    out: str | Path,
    *,
    dataset=None,
    progress: bool | None = None,
    on_chunk: Callable[[int, float], None] | None = None,
):
    """Train a score model and write the new run directory `out`.

    In a multi-process run (``jax.distributed.initialize()`` called first, the same call on
    every process) this is one data-parallel run over all processes' devices: process 0
    alone writes `out` (which the others need not see); every process returns the same
    model. The data must load on every process (a mismatch is a ConfigError).

    Arguments:
        config: the configuration (see TrainConfig); "auto" values are resolved from data.
        out: the run directory to create: config.json, metrics.jsonl, checkpoint.json and
            checkpoint arrays. It must not hold a run already.
        dataset: a scorefield.data Dataset; default ``scorefield.data.load(config.data)``.
        progress: show a progress bar; default: when stderr is a terminal.
        on_chunk: called as ``on_chunk(step, mean loss)`` after every compiled call.
    Returns:
        the finished :class:`scorefield.train.Run`.
    Raises:
        DivergenceError if a loss becomes NaN or inf (the last good state is checkpointed);
        KeyboardInterrupt after writing a checkpoint of the last completed call.
    """
    if dataset is None:  # bad data specs fail before anything is written
        from ..data import load

        dataset = load(config.data)
    if not is_resolved(config):
        config = resolve(config, dataset)  # so does a config that does not fit the data
    return _fit(config, Path(out), False, dataset, progress, on_chunk)

def resume(
    out: str | Path,
    *,
    steps: int | None = None,
    dataset=None,
    progress: bool | None = None,
    on_chunk: Callable[[int, float], None] | None = None,
):
    """Continue the run in `out` from its last checkpoint, with its own config.json.

    Arguments:
        out: an existing run directory.
        steps: a new total number of steps (to extend a finished run); default the run's.
        dataset, progress, on_chunk: as for :func:`train`.
    Returns:
        the finished :class:`scorefield.train.Run`; a run stopped after k steps and resumed
        ends with the same parameters as an uninterrupted run (same seed).
    """
    out = Path(out)
    # process 0's run directory is the run; the others get its config
    config = TrainConfig.from_dict(
        _on_lead(lambda: read_config_json(prepare_run_dir(out, resume=True) / CONFIG).to_dict()),
        source=str(out / CONFIG))
    if steps is not None and steps != config.steps:
        config = config.replace(steps=steps)
    return _fit(config, out, True, dataset, progress, on_chunk)

def _fit(config: TrainConfig, out: Path, resume: bool, dataset, progress, on_chunk):
    from ._run import Run

    if dataset is None:
        from ..data import load

        dataset = load(config.data)
    if not is_resolved(config):
        config = resolve(config, dataset)
    mesh = _mesh(config.batch_size)  # a bad batch size fails before anything is written
    lead = _is_lead()
    if jax.process_count() > 1:
        _check_same_data(dataset)
        # process 0's resolved config is the run's (its "auto" values came from its data)
        config = TrainConfig.from_dict(_broadcast_json(config.to_dict()), source="process 0")

    loaded: dict = {}

    def open_run() -> dict:
        """On process 0: check and prepare `out`, load the checkpoint of a resumed run, write
        config.json; returns the bookkeeping every process needs."""
        prepare_run_dir(out, resume=resume)
        _remove_stale_temporaries(out)
        book = {"wall0": 0.0, "window": [], "last_saved": -1}
        if resume and ckpt.exists(out):
            meta, arrays = ckpt.load(out)
            loaded["state"] = from_arrays(config, arrays)
            # the losses behind the next logged mean, so a resumed log equals an uninterrupted one
            book = {"wall0": float(meta.get("wall", 0.0)),
                    "window": [float(v) for v in meta.get("loss_window", [])[-config.log_every:]],
                    "last_saved": int(loaded["state"][0].step)}
            _truncate_metrics(out / METRICS, book["last_saved"])
        else:
            loaded["state"] = init_state(config)
            (out / METRICS).unlink(missing_ok=True)
        _check_free_space(out, to_arrays(*loaded["state"]))
        _write_local(out / CONFIG, lambda: _fs.write_json_atomic(out / CONFIG, config.to_dict()), book["last_saved"])
        return book

    book = _on_lead(open_run)
    wall0 = book["wall0"]
    window: collections.deque = collections.deque(book["window"], maxlen=config.log_every)
    last_saved = book["last_saved"]  # -1: no checkpoint yet; the first interrupt or divergence writes one
    # the other processes take process 0's state (a fresh one, or the checkpoint only it reads)
    state, static = _broadcast_arrays(loaded["state"] if lead else eqx.filter_eval_shape(init_state, config))
    state, static, dataset = _replicate((state, static, dataset), mesh)
    chunk = make_chunk(config, dataset, mesh)
    n_devices = 1 if mesh is None else int(mesh.devices.size)  # recorded: what the batch was sharded over
    step = int(state.step)
    bar = _Progress(config.steps, step, lead and (sys.stderr.isatty() if progress is None else progress))
    t0 = time.perf_counter()
    # (state, loss window) after the last completed call, replaced in one assignment so that a
    # Ctrl-C between any two statements checkpoints a consistent pair
    current = (state, tuple(window))

    def save(st: TrainState, win: tuple, s: int, *, collective: bool = True) -> None:
        arrays = to_arrays(st, static)  # replicated: every process reads its own copy
        if not all(np.all(np.isfinite(a)) for a in arrays.values() if a.dtype.kind in "fc"):
            raise DivergenceError(f"training diverged: the state at step {s} holds NaN or inf; "
                                  f"the last good checkpoint is kept in {out}", step=s)
        meta = {"wall": wall0 + time.perf_counter() - t0, "loss_window": list(win),
                "devices": n_devices, "processes": jax.process_count()}
        write = lambda: ckpt.save(out, s, arrays, meta)  # noqa: E731
        if collective:
            _write(out / ckpt.POINTER, write, last_saved)
        elif lead:  # an interrupt may reach one process only: no collective, process 0 writes
            _write_local(out / ckpt.POINTER, write, last_saved)

    try:
        with (open(out / METRICS, "a") if lead else contextlib.nullcontext()) as log:
            while step < config.steps:
                n = min(config.steps_per_call, config.steps - step, config.checkpoint_every - step % config.checkpoint_every)
                new_state, losses = chunk(current[0], static, dataset, n)
                losses = np.asarray(losses)
                bad = np.flatnonzero(~np.isfinite(losses))
                if bad.size:
                    s_bad = step + int(bad[0])
                    if step > last_saved:  # the state before this call is still good: keep it
                        save(*current, step)
                        last_saved = step
                    raise DivergenceError(
                        f"training diverged: the loss or its gradient became NaN or inf at step {s_bad}; "
                        f"the last good checkpoint (step {last_saved}) is kept in {out}; "
                        "try a lower learning rate (--config with lr) or gradient clipping",
                        step=s_bad,
                    )
                wall = wall0 + time.perf_counter() - t0
                new_window = collections.deque(current[1], maxlen=config.log_every)
                lines = []
                for i, loss in enumerate(losses):
                    new_window.append(float(loss))
                    s = step + i
                    if s % config.log_every == 0:
                        lines.append(json.dumps({"step": s, "loss": float(np.mean(new_window)), "wall": round(wall, 3)}) + "\n")
                # log before moving on: records past the last checkpoint are dropped on resume
                _write(out / METRICS, lambda: (log.write("".join(lines)), log.flush()), last_saved)
                current = (new_state, tuple(new_window))
                step += n
                bar.update(n, float(np.mean(losses)))
                if on_chunk is not None:
                    on_chunk(step, float(np.mean(losses)))
                if step % config.checkpoint_every == 0 or step == config.steps:
                    save(*current, step)
                    last_saved = step
    except KeyboardInterrupt:
        if int(current[0].step) > last_saved:
            save(*current, int(current[0].step), collective=False)
        raise
    finally:
        bar.close()
    if last_saved != step:
        save(*current, step)
    if lead:
        return Run.load(out)
    # the run directory may not exist here: the same run, rebuilt from memory
    st = current[0]
    return Run(out, config, eqx.combine(st.params, static), eqx.combine(st.ema, static), int(st.step),
               {"step": int(st.step), "wall": wall0 + time.perf_counter() - t0})

def _write(path: Path, write: Callable[[], object], last_saved: int | None) -> None:
    """Run `write` on process 0 (see _write_local); every process must call it, and every
    process raises if the write failed."""
    _on_lead(lambda: _write_local(path, write, last_saved))

def _write_local(path: Path, write: Callable[[], object], last_saved: int | None) -> None:
    """Run `write`; an OSError (disk full, directory removed, ...) becomes one clear line."""
    try:
        write()
    except OSError as e:
        kept = ("no checkpoint was written yet" if last_saved is None or last_saved < 0
                else f"the last checkpoint (step {last_saved}) is intact")
        raise ScorefieldError(f"could not write {path} ({e.strerror or type(e).__name__}); {kept}; "
                              "free disk space or move the run directory, then resume with --resume") from None

def _check_same_data(dataset) -> None:
    """ConfigError unless every process loaded the same data (a file that differs between
    hosts would silently train on a mixture)."""
    import hashlib

    from jax.experimental import multihost_utils as mh

    h = hashlib.sha256(str(dataset.spec).encode())
    for leaf in jax.tree_util.tree_leaves(eqx.filter(dataset, eqx.is_array)):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(str((a.shape, a.dtype)).encode() + a.tobytes())
    digests = np.asarray(mh.process_allgather(np.frombuffer(h.digest(), np.uint8).view(np.int32)))
    differ = [i for i in range(digests.shape[0]) if not np.array_equal(digests[i], digests[0])]
    if differ:
        raise ConfigError(f"the training data differ between processes (process {differ[0]} loaded other data than "
                          "process 0); give every host the same data files")

def _check_free_space(out: Path, arrays: dict[str, np.ndarray]) -> None:
    """Fail before training if `out` cannot hold the checkpoints: up to `keep` = 2 array files
    plus the one being written, and a margin for the logs."""
    need = 3 * sum(a.nbytes for a in arrays.values()) + (1 << 20)
    try:
        free = shutil.disk_usage(out).free
    except OSError:
        return
    if free < need:
        raise ScorefieldError(f"--out {out} has {free / 2**20:.1f} MiB free but its checkpoints need about "
                              f"{need / 2**20:.1f} MiB; free disk space or choose another directory")

def _remove_stale_temporaries(out: Path) -> None:
    """Temporary files of a process killed mid-write: never read, safe to drop."""
    for pattern in _fs.TEMP_GLOBS:
        for p in out.glob(pattern):
            p.unlink(missing_ok=True)
    for p in (out / ".write-test", out / "metrics.tmp"):
        p.unlink(missing_ok=True)

def _truncate_metrics(path: Path, step: int) -> None:
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
