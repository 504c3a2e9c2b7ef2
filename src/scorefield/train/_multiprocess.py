"""Multi-process helpers of the training loop: the data-parallel mesh, collectives that
carry process 0's decisions to the others, and the same-data check.

Multi-process runs (after ``jax.distributed.initialize()``) are one data-parallel run: each
process holds the same replicated state and its devices' slices of every global batch;
process 0 alone owns the run directory. Everything process 0 decides or reads from disk
reaches the others through :func:`on_lead` (one collective), so a failure there stops every
process with the same error instead of leaving the others waiting in a collective."""

from __future__ import annotations

import hashlib
import json
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .. import _errors
from .._errors import ConfigError, DivergenceError, ScorefieldError


def make_mesh(batch_size: int) -> Mesh | None:
    """A 1-D mesh ``batch`` over all devices of all processes for data parallelism, or None
    on one device. ``jax.devices()`` lists them in the same order on every process.

    Raises:
        ConfigError when `batch_size` does not divide over the devices.
    """
    devices = jax.devices()
    if len(devices) == 1:
        return None
    if batch_size % len(devices):
        where = ("local devices" if jax.process_count() == 1
                 else f"devices of the {jax.process_count()} processes")
        raise ConfigError(f"batch_size={batch_size} must be divisible by the {len(devices)} {where}; "
                          f"choose a multiple of {len(devices)}")
    return Mesh(np.asarray(devices), ("batch",))


def is_lead() -> bool:
    """Whether this is process 0, the one that owns the run directory."""
    return jax.process_index() == 0


def broadcast_json(obj=None):
    """Process 0's JSON-serialisable `obj` on every process (the others pass anything).

    Two collectives: the length, then the bytes padded to a multiple of 4 KiB, so that
    repeated calls reuse a few compiled shapes."""
    from jax.experimental import multihost_utils as mh

    data = json.dumps(obj).encode() if is_lead() else b""
    n = int(mh.broadcast_one_to_all(np.asarray([len(data)], np.int32))[0])
    buf = np.zeros(-(-n // 4096) * 4096, np.uint8)
    buf[:len(data)] = np.frombuffer(data, np.uint8)
    got = mh.broadcast_one_to_all(buf.view(np.int32))
    return json.loads(np.asarray(got, np.int32).view(np.uint8)[:n].tobytes())


def on_lead(fn: Callable[[], object]):
    """Run `fn` on process 0 alone and return its JSON-serialisable result on every process.

    An exception in `fn` is raised on process 0 as it is and on the others as the same
    scorefield error class with the same message (one line, same exit code everywhere)."""
    if jax.process_count() == 1:
        return fn()
    err = None
    msg = None
    if is_lead():
        try:
            msg = {"value": fn()}
        except Exception as e:  # noqa: BLE001 - re-raised below, after the others are told
            err = e
            msg = {"error": type(e).__name__ if isinstance(e, ScorefieldError) else "ScorefieldError",
                   "message": str(e) if isinstance(e, ScorefieldError) else f"process 0 failed: {type(e).__name__}: {e}",
                   "step": getattr(e, "step", None)}
    msg = broadcast_json(msg)
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


def broadcast_arrays(tree):
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


def replicate(tree, mesh: Mesh | None):
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


def check_same_data(dataset) -> None:
    """ConfigError unless every process loaded the same data (a file that differs between
    hosts would silently train on a mixture)."""
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
