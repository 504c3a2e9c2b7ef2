"""The orchestration of training: resolve the configuration once, build the optimiser,
objective and model once (or take the instances given), open the run directory on process
0, then run compiled chunks (train/_step.py) between checkpoints.

Multi-process helpers live in train/_multiprocess.py, run-directory bookkeeping in
train/_rundir.py. Errors name Python arguments (``resume=True``, ``steps=``); the CLI words
them as flags."""

from __future__ import annotations

import collections
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Callable

import equinox as eqx
import jax
import numpy as np
import optax

from .. import _fs
from .._errors import ComponentRequiredError, DivergenceError, InputError, ScorefieldError
from . import _checkpoint as ckpt
from ._build import build_model, build_objective, build_optimizer, is_resolved, keys, resolve
from ._config import TrainConfig, read_config_json
from ._memory import check_levels, check_train_memory
from ._multiprocess import broadcast_arrays, broadcast_json, check_same_data, is_lead, make_mesh, on_lead, replicate
from ._rundir import (CONFIG, METRICS, Progress, check_free_space, lock_run_dir, log_lines, prepare_run_dir,
                      remove_stale_temporaries, truncate_metrics, write, write_local)
from ._state import TrainState, from_arrays, init_state, to_arrays
from ._step import loss_and_grad, make_chunk

_COMPONENTS = ("model", "objective", "optimizer")


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    model: eqx.Module | None = None,
    objective: Callable | None = None,
    optimizer: optax.GradientTransformation | None = None,
    dataset=None,
    resume: bool = False,
    progress: bool | None = None,
    on_chunk: Callable[[int, float], None] | None = None,
    accept_changed_data: bool = False,
    on_start: Callable[[], None] | None = None,
):
    """Train a score model and write the run directory `out`.

    In a multi-process run (``jax.distributed.initialize()`` called first, the same call on
    every process) this is one data-parallel run over all processes' devices: process 0
    alone writes `out` (which the others need not see); every process returns the same
    model. The data must load on every process (a mismatch is a ConfigError).

    Arguments:
        config: the configuration (see TrainConfig); "auto" values are resolved from data.
        out: the run directory to create: config.json, metrics.jsonl, checkpoint.json and
            checkpoint arrays. It must not hold a run already, unless `resume`.
        model: a score network instance (any Equinox module ``model(x, sigma) -> (D,)``) to
            train instead of the registered ``config.net``; its arrays named in a class
            attribute ``frozen`` are not trained.
        objective: ``objective(model, x, key=key) -> loss`` instead of ``config.objective``.
        optimizer: an optax GradientTransformation instead of the config's Adam recipe.
            Instances are recorded in config.json's ``injected``: loading or resuming the
            run needs them again (``load_run(out, model=...)``).
        dataset: a scorefield.data Dataset; default ``scorefield.data.load(config.data)``.
        resume: continue the run in `out` instead: every option must equal the run's own
            (config.json), except `steps`, which may extend the run.
        progress: show a progress bar; default: when stderr is a terminal.
        on_chunk: called as ``on_chunk(step, mean loss)`` after every compiled call.
        accept_changed_data: with `resume`, continue although the data file's content
            differs from the one the run was trained on (its SHA-256, recorded in
            config.json); otherwise that is a DataSpecError.
        on_start: called once on process 0 when every check has passed and the run
            directory is written, just before the first compiled call (e.g. to print a
            banner that no error line can follow).
    Returns:
        the finished :class:`scorefield.train.Run`.
    Raises:
        DivergenceError if a loss becomes NaN or inf (the last good state is checkpointed);
        ConfigError naming an option that differs from the run's when resuming;
        KeyboardInterrupt after writing a checkpoint of the last completed call.
    """
    out = Path(out)
    run_config = None
    if resume:  # a changed data file is named before it is loaded (it may no longer fit the run)
        run_config = _read_run_config(out)
        _check_data(run_config, out, accept_changed_data)
    if dataset is None:  # bad data specs fail before anything is written
        from ..data import load

        dataset = load(config.data)
    if not is_resolved(config):
        config = resolve(config, dataset)  # so does a config that does not fit the data
    given = {"model": model, "objective": objective, "optimizer": optimizer}
    config = config.replace(injected=[k for k in _COMPONENTS if given[k] is not None])
    if resume:
        _check_same_config(config, run_config, out)
        config = run_config.replace(steps=config.steps)
    return _fit(config, out, resume, dataset, given, progress, on_chunk, accept_changed_data, on_start)


def resume(
    out: str | Path,
    *,
    steps: int | None = None,
    model: eqx.Module | None = None,
    objective: Callable | None = None,
    optimizer: optax.GradientTransformation | None = None,
    dataset=None,
    progress: bool | None = None,
    on_chunk: Callable[[int, float], None] | None = None,
    accept_changed_data: bool = False,
    on_start: Callable[[], None] | None = None,
):
    """Continue the run in `out` from its last checkpoint, with its own config.json.

    Arguments:
        out: an existing run directory.
        steps: a new total number of steps (to extend a run; not below the steps done);
            default the run's.
        model, objective, optimizer: the instances the run was trained with, where it was
            (config.json's ``injected``); otherwise built from config.json.
        dataset, progress, on_chunk, accept_changed_data, on_start: as for :func:`train`.
    Returns:
        the finished :class:`scorefield.train.Run`; a run stopped after k steps and resumed
        ends with the same parameters as an uninterrupted run (same seed).
    """
    out = Path(out)
    config = _read_run_config(out)
    _check_data(config, out, accept_changed_data)
    if steps is not None and steps != config.steps:
        config = config.replace(steps=steps)
    given = {"model": model, "objective": objective, "optimizer": optimizer}
    return _fit(config, out, True, dataset, given, progress, on_chunk, accept_changed_data, on_start)


def _fingerprint(spec: str) -> dict | None:
    """The data file's fingerprint, or None when the spec names no readable file (a dataset
    given as an instance may not need one)."""
    from .._errors import DataSpecError
    from ..data import data_fingerprint

    try:
        return data_fingerprint(spec)
    except DataSpecError:
        return None


def _check_data(config: TrainConfig, out: Path, accept: bool) -> None:
    """DataSpecError (exit 2) naming the file when the data file of the run in `out` has
    changed since it was recorded, unless `accept` (checked on process 0, raised on all)."""
    from ..data import check_data_unchanged

    if config.data_file is None:  # data without a file (or a run from before data files were recorded)
        return
    on_lead(lambda: check_data_unchanged(config.data, config.data_file, accept=accept, flag="accept_changed_data=True")
            and None)


def _read_run_config(out: Path) -> TrainConfig:
    """Process 0's config.json of the run in `out`, on every process."""
    return TrainConfig.from_dict(
        on_lead(lambda: read_config_json(prepare_run_dir(out, resume=True) / CONFIG).to_dict()),
        source=str(out / CONFIG))


def _check_same_config(given: TrainConfig, run: TrainConfig, out: Path) -> None:
    """ConfigError naming every option of `given` that differs from the run's (all but
    `steps` must be equal to resume; components given as instances are checked later)."""
    a = json.loads(json.dumps(given.to_dict()))
    b = run.to_dict()
    differ = [k for k in a if k not in ("steps", "injected", "data_file") and a[k] != b.get(k)]
    if differ:
        what = "; ".join(f"{k}: the run has {b.get(k)!r}, given {a[k]!r}" for k in differ)
        raise InputError(f"cannot resume the run in {out} with other options ({what}); "
                         "resume with the run's own options (only steps may change) or train a new run")


def _fit(config: TrainConfig, out: Path, resume: bool, dataset, given: dict, progress, on_chunk,
         accept_changed_data: bool = False, on_start=None):
    locks: list = []  # process 0's lock of `out`, held until the run ends, however it ends
    try:
        return _fit_locked(config, out, resume, dataset, given, progress, on_chunk, locks, accept_changed_data,
                           on_start)
    finally:
        for lock in locks:
            lock.release()


def _fit_locked(config: TrainConfig, out: Path, resume: bool, dataset, given: dict, progress, on_chunk,
                locks: list, accept_changed_data: bool = False, on_start=None):
    from ._run import Run

    if dataset is None:
        from ..data import load

        dataset = load(config.data)
    if not is_resolved(config):
        config = resolve(config, dataset)
    if config.dim is not None and int(dataset.dim) != int(config.dim):  # a changed file accepted, or an old run
        raise InputError(f"the data {config.data} now have dimension {int(dataset.dim)} but the run in {out} was "
                         f"trained on {config.dim}-D data; give data of dimension {config.dim}, or train a new run")
    if not resume or accept_changed_data or config.data_file is None:
        # what the run trains on from now, recorded in config.json (a resumed run checks it)
        config = config.replace(data_file=on_lead(lambda: _fingerprint(config.data)))
    missing = [k for k in config.injected if given[k] is None]
    if missing:
        raise ComponentRequiredError(
            f"the run in {out} was trained with a {missing[0]} given as an instance, which config.json cannot "
            f"rebuild; give it again, e.g. resume(out, {missing[0]}=...)")
    mesh = make_mesh(config.batch_size)  # a bad batch size fails before anything is written
    lead = is_lead()
    if jax.process_count() > 1:
        check_same_data(dataset)
        # process 0's resolved config is the run's (its "auto" values came from its data)
        config = TrainConfig.from_dict(broadcast_json(config.to_dict()), source="process 0")
    # the pieces, built once (or the instances given)
    optimizer = given["optimizer"] if given["optimizer"] is not None else build_optimizer(config)
    if given["objective"] is None:
        check_levels(int(config.n_levels))  # the noise grid is built with the objective
    objective = given["objective"] if given["objective"] is not None else build_objective(config)
    # memory estimated from shapes before the network is allocated (a lower bound: what cannot fit is refused)
    value_and_grad = loss_and_grad(objective)  # traced once: by the memory estimate, reused by the chunk
    check_train_memory(config, objective, (lambda: given["model"]) if given["model"] is not None
                       else (lambda: build_model(config, key=keys(config)["model"])),
                       optimizer=optimizer, dataset=dataset if jax.process_count() == 1 else None,
                       value_and_grad=value_and_grad)
    model = given["model"] if given["model"] is not None else build_model(config, key=keys(config)["model"])

    loaded: dict = {}

    def open_run() -> dict:
        """On process 0: check and prepare `out`, load the checkpoint of a resumed run, write
        config.json; returns the bookkeeping every process needs."""
        locks.append(lock_run_dir(out, resume=resume))  # first: a second process refuses at once
        prepare_run_dir(out, resume=resume)
        remove_stale_temporaries(out)
        book = {"wall0": 0.0, "window": [], "last_saved": -1}
        recovered = None
        if resume and not ckpt.exists(out):
            recovered = ckpt.recover(out)  # a kill between the array write and the pointer write
        if resume and (recovered is not None or ckpt.exists(out)):
            meta, arrays = recovered if recovered is not None else ckpt.load(out)
            window = meta.get("loss_window", arrays.get("loss_window", []))
            if recovered is not None:
                print(f"scorefield: {out / ckpt.POINTER} was missing; resuming from step {meta['step']} of "
                      f"{meta['file']} (verified" + ("" if "loss_window" in arrays else
                                                     "; the loss log's running mean restarts there") + ")",
                      file=sys.stderr)
            loaded["state"] = from_arrays(model, arrays, optimizer)
            done = int(loaded["state"][0].step)
            if config.steps < done:
                raise InputError(f"steps={config.steps} is below the {done} steps the run in {out} has done; "
                                 f"give steps >= {done}")
            # the losses behind the next logged mean, so a resumed log equals an uninterrupted one
            book = {"wall0": float(meta.get("wall", 0.0)),
                    "window": [float(v) for v in list(window)[-config.log_every:]],
                    "last_saved": done}
            # the room for the checkpoints first, then the log: a full disk changes nothing
            check_free_space(out, to_arrays(*loaded["state"]))
            write_local(out / METRICS, lambda: truncate_metrics(out / METRICS, book["last_saved"]), done)
        else:
            loaded["state"] = init_state(model, optimizer)
            (out / METRICS).unlink(missing_ok=True)
            check_free_space(out, to_arrays(*loaded["state"]))
        write_local(out / CONFIG, lambda: _fs.write_json_atomic(out / CONFIG, config.to_dict()), book["last_saved"])
        return book

    book = on_lead(open_run)
    wall0 = book["wall0"]
    window: collections.deque = collections.deque(book["window"], maxlen=config.log_every)
    last_saved = book["last_saved"]  # -1: no checkpoint yet; the first interrupt or divergence writes one
    # the other processes take process 0's state (a fresh one, or the checkpoint only it reads)
    state, static = broadcast_arrays(loaded["state"] if lead else eqx.filter_eval_shape(init_state, model, optimizer))
    state, static, dataset = replicate((state, static, dataset), mesh)
    chunk = make_chunk(objective, optimizer, key=keys(config)["train"], batch_size=config.batch_size,
                       ema_decay=config.ema_decay, mesh=mesh, value_and_grad=value_and_grad,
                       **_conditioning(config, model, dataset))
    n_devices = 1 if mesh is None else int(mesh.devices.size)  # recorded: what the batch was sharded over
    step = int(state.step)
    if lead and on_start is not None:
        on_start()
    bar = Progress(config.steps, step, lead and (sys.stderr.isatty() if progress is None else progress))
    t0 = time.perf_counter()
    # (state, loss window) after the last completed call, replaced in one assignment so that a
    # Ctrl-C between any two statements checkpoints a consistent pair
    current = (state, tuple(window))

    def save(st: TrainState, win: tuple, s: int, *, collective: bool = True) -> None:
        # replicated: every process reads its own copy. The loss window travels in the array
        # file too, so that a run recovered from it (its pointer lost to a kill) logs the
        # same running mean as an uninterrupted one
        arrays = {**to_arrays(st, static), "loss_window": np.asarray(win, np.float64)}
        if not all(np.all(np.isfinite(a)) for a in arrays.values() if a.dtype.kind in "fc"):
            raise DivergenceError(f"training diverged: the state at step {s} holds NaN or inf; "
                                  f"the last good checkpoint is kept in {out}", step=s)
        meta = {"wall": wall0 + time.perf_counter() - t0, "loss_window": list(win),
                "devices": n_devices, "processes": jax.process_count()}
        fn = lambda: ckpt.save(out, s, arrays, meta)  # noqa: E731
        if collective:
            write(out / ckpt.POINTER, fn, last_saved)
        elif lead:  # an interrupt may reach one process only: no collective, process 0 writes
            write_local(out / ckpt.POINTER, fn, last_saved)

    try:
        with (open(out / METRICS, "a") if lead else contextlib.nullcontext()) as log:
            while step < config.steps:
                n = min(config.steps_per_call, config.steps - step, config.checkpoint_every - step % config.checkpoint_every)
                try:
                    new_state, losses = chunk(current[0], static, dataset, n)
                    losses = np.asarray(losses)
                except Exception as e:  # noqa: BLE001 - XLA's out-of-memory (or another failure) at run time
                    if lead and not resume and last_saved < 0 and step == 0:
                        log.close()
                        _undo_new_run(out)  # the first call failed: leave the directory as it was
                    if "RESOURCE_EXHAUSTED" in str(e) or "out of memory" in str(e).lower():
                        raise ScorefieldError(
                            f"training ran out of memory in its first compiled call (batch_size={config.batch_size}, "
                            f"steps_per_call={config.steps_per_call}); lower batch_size or use a smaller network"
                            + ("" if resume or step else "; nothing was written")) from None
                    raise
                bad = np.flatnonzero(~np.isfinite(losses))
                if bad.size:
                    s_bad = step + int(bad[0])
                    if step > last_saved:  # the state before this call is still good: keep it
                        save(*current, step)
                        last_saved = step
                    raise DivergenceError(
                        f"training diverged: the loss or its gradient became NaN or inf at step {s_bad}; "
                        f"the last good checkpoint (step {last_saved}) is kept in {out}; "
                        "try a lower learning rate (lr in the config) or gradient clipping (grad_clip)",
                        step=s_bad,
                    )
                new_window = collections.deque(current[1], maxlen=config.log_every)
                lines = log_lines(losses, step, new_window, config.log_every, wall0 + time.perf_counter() - t0)
                # log before moving on: records past the last checkpoint are dropped on resume
                write(out / METRICS, lambda lines=lines: (log.write("".join(lines)), log.flush()), last_saved)
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
        return Run.load(out, model=given["model"])
    # the run directory may not exist here: the same run, rebuilt from memory
    st = current[0]
    return Run(out, config, eqx.combine(st.params, static), eqx.combine(st.ema, static), int(st.step),
               {"step": int(st.step), "wall": wall0 + time.perf_counter() - t0})


def _conditioning(config: TrainConfig, model, dataset) -> dict:
    """make_chunk's class-conditioning arguments: labels for a conditional network on
    labelled data (config.n_classes > 0), none otherwise."""
    n = int(config.n_classes or 0)
    if not (n and getattr(model, "conditional", False) and getattr(model, "n_classes", 0) == n
            and hasattr(dataset, "sample_labelled") and getattr(dataset, "n_classes", 0)):
        return {}
    return {"n_classes": n, "label_dropout": float(config.label_dropout)}


def _undo_new_run(out: Path) -> None:
    """Remove what opening a new run wrote (config.json, the empty log), so that a run whose
    first compiled call failed leaves no run behind and the same command can be rerun; the
    lock file goes when the lock is released."""
    for name in (CONFIG, METRICS):
        try:
            (out / name).unlink(missing_ok=True)
        except OSError:
            pass
