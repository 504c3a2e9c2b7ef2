"""The one runner: many particles of any sampler, chunked, counted, checked."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._errors import ConfigError, DivergenceError, InputError
from .._types import ScoreFn
from ._base import SAMPLERS, AbstractLogDensitySampler, AbstractSampler, StepInfo
from ._init import AbstractInit


@dataclasses.dataclass(frozen=True)
class SampleResult:
    """What `sample` returns (host arrays).

    Attributes:
        samples: float32 (N, D), the final positions (after any finalize/denoise step).
        n_score_evals_per_sample: mean number of model evaluations (score, or gradient of
            the log-density for Metropolis samplers) one sample cost.
        trajectory: float32 (F, N, D) or None: the start, then positions every
            `trajectory_every` steps of each level, then the samples.
        trajectory_index: int (F, 2): (level, step) of each frame; the start is (-1, 0) and
            the samples (n_levels, 0).
        wall_time: seconds spent in `sample`.
        level_info: the steps' StepInfo fields averaged per level: name -> float64 (L,),
            the mean over particles and steps of that level (e.g. "n_evals",
            "acceptance" for Metropolis samplers, "solver_steps" for the ODE).
    """

    samples: np.ndarray
    n_score_evals_per_sample: float
    trajectory: np.ndarray | None
    trajectory_index: np.ndarray | None
    wall_time: float
    level_info: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def acceptance(self) -> np.ndarray | None:
        """The mean Metropolis acceptance rate per level (L,), or None for samplers without a test."""
        return self.level_info.get("acceptance")


# Particles one device steps together (a block), chosen by measurement on CPU
# (benchmarks/bench_samplers.py --block-sizes; ReferenceNet, annealed Langevin, 16,384
# particles, 2-core AMD EPYC). A device with one core runs fastest with small blocks whose
# activations stay in its cache (2 devices: 256 to 1024 particles per block all ~600k
# particle-steps/s, 2048 566k, 4096 542k). A device with several cores spreads an op over
# them only when the op is large enough, so small blocks leave cores idle (1 device, 2 cores:
# 256 ~390k, 512 ~470k, 1024 585k, 2048 601k, 4096 608k, one block of 16,384 578k).
_CPU_BLOCK_ONE_CORE = 256
_CPU_BLOCK_PER_CORE = 1024


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use, as XLA counts them
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_block_size(devices=None) -> int | None:
    """The runner's block size (particles stepped together, over all devices) for `devices`.

    On CPU: 256 particles per device when each device has one core (blocks stay in cache),
    else 1024 per core of a device (so that XLA's intra-op threads have work to share).
    On accelerators: None (one block per chunk; there is no cache to fit, and a sequential map
    over blocks would only serialise kernels).

    Arguments:
        devices: the devices the runner shards over (default `jax.local_devices()`).
    Returns:
        particles per block, or None for one block per chunk.
    """
    devices = jax.local_devices() if devices is None else list(devices)
    if devices[0].platform != "cpu":
        return None
    cores = max(1, _cpu_count() // len(devices))
    per_device = _CPU_BLOCK_ONE_CORE if cores == 1 else _CPU_BLOCK_PER_CORE * cores
    return per_device * len(devices)


def _fold(keys, data):
    return jax.vmap(jax.random.fold_in, (0, None))(keys, data)


@eqx.filter_jit
def _start(sampler, fn, init, x0, init_key, run_key, lo, n, chunk: int, dim: int, sharding):
    """Starting points, per-particle keys and sampler states of particles lo..lo+chunk-1."""
    idx = lo + jnp.arange(chunk, dtype=jnp.int32)
    if sharding is not None:
        # Particles split over the local devices (e.g. CPU cores); everything downstream
        # inherits the layout, and the network parameters are replicated.
        idx = jax.lax.with_sharding_constraint(idx, sharding)
        if x0 is not None:
            x0 = jax.lax.with_sharding_constraint(x0, sharding)
    if x0 is None:
        x0 = jax.vmap(lambda i: init.sample(jax.random.fold_in(init_key, i), dim))(idx)
    keys = jax.vmap(jax.random.fold_in, (None, 0))(run_key, idx)
    state, evals = jax.vmap(lambda x, k: sampler.init(fn, x, k))(x0, _fold(keys, sampler.n_levels))
    return x0, keys, idx < n, state, evals


def _to_blocks(tree, n_blocks):
    """(chunk, ...) -> (n_blocks, chunk // n_blocks, ...); block j holds particles j, j + n_blocks, ...

    This grouping keeps a particle-sharded layout local to each device."""
    return jax.tree.map(lambda a: jnp.swapaxes(a.reshape(a.shape[0] // n_blocks, n_blocks, *a.shape[1:]), 0, 1), tree)


def _from_blocks(tree):
    return jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1).reshape(-1, *a.shape[2:]), tree)


@eqx.filter_jit
def _segment(sampler, fn, state, evals, keys, level, t0, valid, n_steps: int, every: int | None, n_blocks: int):
    """`n_steps` steps of `level` for a chunk: a sequential map over blocks of particles, each
    running all its steps in one scan. On a one-core CPU device small blocks keep a block's
    activations in cache for the whole scan; see `default_block_size` for the sizes.

    Returns the new state and evaluation counts, the per-particle sums of the steps' StepInfo
    fields (a dict of (chunk,) arrays), the first step (absolute, within the level) at which
    any valid particle's position was not finite (int32 max if none), and the frames.
    The per-step finiteness flag costs nothing measurable (it is O(D) next to a network
    evaluation) and names the exact step without re-running anything."""
    step = jax.vmap(lambda s, k: _checked_step(sampler, fn, s, level, k))

    def run_block(args):
        state, evals, keys, valid = args
        level_keys = _fold(keys, level)
        # per-particle sums of every StepInfo field (those a sampler leaves None vanish); their
        # shapes come from a step on a stand-in model, so that the network is traced once
        shapes = jax.eval_shape(jax.vmap(lambda s, k: _checked_step(sampler, _stand_in(sampler), s, level, k)),
                                state, _fold(level_keys, t0))[1]
        sums0 = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), _info_dict(shapes))

        def body(carry, t):
            state, evals, sums, bad = carry
            state, inf = step(state, _fold(level_keys, t))
            finite = jnp.all(jnp.isfinite(jax.vmap(sampler.position)(state)), axis=-1)
            # First non-finite step per particle: cheap to track here, and it lets the
            # error name the step without re-running the level.
            bad = jnp.where((bad < 0) & ~finite & valid, t, bad)
            sums = jax.tree.map(jnp.add, sums, _info_dict(inf))
            return (state, evals + inf.n_evals, sums, bad), None

        carry = (state, evals, sums0, jnp.full(valid.shape, -1, jnp.int32))
        frames = None
        if every is None:
            carry, _ = jax.lax.scan(body, carry, t0 + jnp.arange(n_steps))
        else:
            n_frames, rem = divmod(n_steps, every)

            def frame(carry, ts):
                carry, _ = jax.lax.scan(body, carry, ts)
                return carry, jax.vmap(sampler.position)(carry[0])

            if n_frames:
                ts = t0 + jnp.arange(n_frames * every).reshape(n_frames, every)
                carry, frames = jax.lax.scan(frame, carry, ts)
            if rem:
                carry, _ = jax.lax.scan(body, carry, t0 + n_frames * every + jnp.arange(rem))
        return carry, frames

    (state, evals, sums, bad), frames = jax.lax.map(run_block, _to_blocks((state, evals, keys, valid), n_blocks))
    state, evals, sums, bad = _from_blocks((state, evals, sums, bad))
    if frames is not None:  # (n_blocks, F, B, D) -> (F, chunk, D)
        frames = jax.vmap(_from_blocks, in_axes=1)(frames)
    first_bad = jnp.min(jnp.where(bad >= 0, bad, jnp.iinfo(jnp.int32).max))
    return state, evals, sums, first_bad, frames


def _stand_in(sampler):
    """A model with the signature and output shape of the one `sampler` evaluates (a
    log-density: a scalar; a score: the point's shape), for tracing a step's structure only."""
    if isinstance(sampler, AbstractLogDensitySampler):
        return lambda x, *args: 0.0 * jnp.sum(x)
    return lambda x, *args: jnp.zeros_like(x)


def _info_dict(inf: StepInfo) -> dict:
    return {f: getattr(inf, f) for f in ("n_evals", "acceptance", "solver_steps") if getattr(inf, f) is not None}


def _checked_step(sampler, fn, state, level, key):
    out = sampler.step(fn, state, level, key)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], StepInfo)):
        raise TypeError(f"{type(sampler).__name__}.step must return (state, StepInfo), got {type(out).__name__}")
    return out


@eqx.filter_jit
def _begin_level(sampler, fn, state, evals, level):
    state, n = jax.vmap(lambda s: sampler.begin_level(fn, s, level))(state)
    return state, evals + n


def _has_begin_level(sampler) -> bool:
    return type(sampler).begin_level is not AbstractSampler.begin_level


@eqx.filter_jit
def _finalize(sampler, fn, state, keys):
    k = _fold(keys, sampler.n_levels + 1)
    return jax.vmap(lambda s, k: sampler.finalize(fn, s, k))(state, k)


def _segments(n_steps: int, max_per_call: int, every: int | None) -> list[tuple[int, int]]:
    """Split a level's steps into compiled calls of equal length (plus one remainder)."""
    size = max(1, min(n_steps, max_per_call))
    if every is not None and size < n_steps:
        size = max(every, size - size % every)
    return [(t0, min(size, n_steps - t0)) for t0 in range(0, n_steps, size)]


def _check(sampler, level: int, t0: int, bad, fr, frames: list | None, index: list | None, every: int | None):
    """Wait for one compiled call; raise DivergenceError if it diverged, else keep its frames."""
    bad = int(bad)
    if bad != np.iinfo(np.int32).max:
        sigma = sampler.level_sigma(level)
        at = f"level {level} of 0..{sampler.n_levels - 1}" + ("" if sigma is None else f" (sigma={sigma:.4g})")
        raise DivergenceError(
            f"sampler '{sampler.name}' diverged: particle positions became NaN or inf at {at}, "
            f"step {bad} of 0..{sampler.steps_per_level - 1}; lower the step size "
            f"({_step_options(sampler)}) or check the score function",
            step=bad,
            level=level,
        )
    if fr is not None:
        frames.append(np.asarray(fr))
        if index is not None:
            index.extend((level, t0 + (j + 1) * every - 1) for j in range(fr.shape[0]))


def _step_options(sampler) -> str:
    names = [o.name for o in type(sampler).options if o.name in ("step_size", "eps", "snr", "rtol", "atol")]
    return " or ".join(f"option {n}" for n in names) or "its step options"


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How `sample` lays particles out: `n_chunks` chunks of `chunk` particles (the last
    padded), each a sequential map over `n_blocks` blocks, optionally sharded; every level
    split into compiled calls `segments` of (first step, length)."""

    n: int
    dim: int
    chunk: int
    n_chunks: int
    n_blocks: int
    sharding: Any
    segments: list
    every: int | None


def _model_fn(sampler, score_fn, log_prob):
    """The function the sampler evaluates: the log-density for an AbstractLogDensitySampler,
    else the score."""
    if isinstance(sampler, AbstractLogDensitySampler):
        if log_prob is None:
            score_only = ", ".join(c.name for c in SAMPLERS if not issubclass(c, AbstractLogDensitySampler))
            raise ConfigError(
                f"sampler '{sampler.name}' needs a log-density (log_prob=...) and none was given; "
                f"score-only samplers are {score_only}"
            )
        return log_prob
    if score_fn is None:
        raise ConfigError(f"sampler '{sampler.name}' needs a score function and score_fn is None")
    return score_fn


def _starts(sampler, init, n: int, dim: int | None):
    """Validate `init`: returns (distribution or None, given points (n, D) or None, D)."""
    init = sampler.default_init() if init is None else init
    if init is None:
        raise ConfigError(f"sampler '{sampler.name}' has no prior of its own: pass init= (a distribution or points)")
    if isinstance(init, AbstractInit):
        if dim is None or int(dim) < 1:
            raise ConfigError("dim (the dimension D of a sample) is needed when init is a distribution")
        return init, None, int(dim)
    x = np.asarray(init, np.float32)
    if x.ndim == 1:
        x = np.broadcast_to(x, (n, x.shape[0]))
    if x.ndim != 2 or x.shape[0] != n or (dim is not None and x.shape[1] != dim):
        raise InputError(f"init of shape {np.shape(init)} must be (D,) or (n, D) with n={n}")
    if not np.all(np.isfinite(x)):
        raise InputError("init contains NaN or inf; starting points must be finite")
    return None, x, int(x.shape[1])


def _plan(sampler, n: int, dim: int, chunk_size: int, block_size, max_steps_per_call: int, every) -> _Plan:
    """Chunk, block and shard layout, and each level's compiled calls."""
    devices = jax.local_devices()
    if block_size is None:
        block_size = default_block_size(devices)
    elif int(block_size) < 1:
        raise ConfigError(f"block_size={block_size} must be at least 1 (or None for the default)")
    chunk = min(int(chunk_size), n)
    shard = len(devices) > 1 and chunk >= 64 * len(devices)
    # chunk = n_blocks * per_block, each block split evenly over the devices (padding
    # particles beyond n are computed and dropped)
    n_blocks = 1 if block_size is None else -(-chunk // int(block_size))
    per_block = -(-chunk // n_blocks)
    if shard:
        per_block = -(-per_block // len(devices)) * len(devices)
    chunk = n_blocks * per_block
    sharding = None
    if shard:
        mesh = jax.sharding.Mesh(np.asarray(devices), ("particles",))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("particles"))
    return _Plan(n=n, dim=dim, chunk=chunk, n_chunks=-(-n // chunk), n_blocks=n_blocks, sharding=sharding,
                 segments=_segments(sampler.steps_per_level, int(max_steps_per_call), every), every=every)


def _run_chunk(sampler, fn, plan: _Plan, c: int, dist, x_given, init_key, run_key, bar, record: bool):
    """Particles c*chunk .. of one chunk through every level and the final step.

    Returns (samples (m, D), total evaluations, per-level StepInfo sums {name: (L,)},
    frames (F, m, D) or None, frame index or None)."""
    lo, hi = c * plan.chunk, min((c + 1) * plan.chunk, plan.n)
    every = plan.every
    part = None
    if x_given is not None:
        part = x_given[lo:hi]
        part = jnp.asarray(np.concatenate([part, np.repeat(part[-1:], plan.chunk - len(part), 0)]))
    x0, keys, valid, state, evals = _start(
        sampler, fn, dist, part, init_key, run_key, jnp.asarray(lo, jnp.int32), jnp.asarray(plan.n, jnp.int32),
        plan.chunk, plan.dim, plan.sharding
    )
    frames = [np.asarray(x0)[None]] if every is not None else None
    index: list | None = [(-1, 0)] if (record and every is not None) else None
    L = sampler.n_levels
    level_sums: dict[str, np.ndarray] = {}
    # Each call is checked after the next one is dispatched, so the device never waits for
    # the host between calls; a divergence still stops the run at the first bad call (the one
    # in flight is dropped).
    pending = None

    def collect(level, t0, bad, fr, sums):
        _check(sampler, level, t0, bad, fr, frames, index, every)
        for k, v in sums.items():
            acc = level_sums.setdefault(k, np.zeros(L, np.float64))
            acc[level] += float(np.sum(np.asarray(v, np.float64)[: hi - lo]))
        bar.update(1)

    for level in range(L):
        lev = jnp.asarray(level, jnp.int32)
        if _has_begin_level(sampler):
            state, evals = _begin_level(sampler, fn, state, evals, lev)
        for t0, length in plan.segments:
            state, evals, sums, bad, fr = _segment(
                sampler, fn, state, evals, keys, lev, jnp.asarray(t0, jnp.int32), valid, length, every, plan.n_blocks,
            )
            if pending is not None:
                collect(*pending)
            pending = (level, t0, bad, fr, sums)
    x, n_final = _finalize(sampler, fn, state, keys)
    collect(*pending)
    x = np.asarray(x)[: hi - lo]
    if not np.all(np.isfinite(x)):
        raise DivergenceError(
            f"sampler '{sampler.name}' diverged: the final step (after level {L - 1}) produced NaN or inf",
            step=None,
            level=L,
        )
    total = float(np.sum(np.asarray(evals + n_final, np.float64)[: hi - lo]))
    traj = None
    if frames is not None:
        frames.append(x[None])
        traj = np.concatenate([f[:, : hi - lo] for f in frames], axis=0)
        if index is not None:
            index.append((L, 0))
    return x, total, level_sums, traj, index


def sample(
    sampler: AbstractSampler,
    score_fn: ScoreFn | None,
    key: PRNGKeyArray,
    *,
    n: int,
    dim: int | None = None,
    init: AbstractInit | Float[Array, "..."] | np.ndarray | None = None,
    log_prob=None,
    chunk_size: int = 65536,
    trajectory_every: int | None = None,
    max_steps_per_call: int = 10_000,
    block_size: int | None = None,
    progress: bool = False,
) -> SampleResult:
    """Run `sampler` on `n` particles and return their final positions.

    Particles are vmapped; the steps of a level run inside `lax.scan` in one compiled call
    (levels longer than `max_steps_per_call` are split). Particles are processed in chunks of
    `chunk_size` (bounded memory for any n); particle i's randomness depends only on `key`
    and i, so results do not depend on `chunk_size`. After each compiled call the runner
    checks that every position is finite and otherwise raises DivergenceError naming the
    level and step; NaNs are never returned.

    Arguments:
        sampler: any `AbstractSampler`.
        score_fn: `score_fn(x, sigma) -> s` on one example (x of shape (D,), sigma the std of
            the Gaussian perturbation); unused (may be None) by log-density samplers.
        key: PRNG key.
        n: number of particles (samples).
        dim: D; needed when `init` is a distribution.
        init: an `AbstractInit` (e.g. `UniformInit(-8, 8)`), one start point (D,), one per
            particle (n, D), or None for the sampler's prior.
        log_prob: `log_prob(x) -> scalar` on one example, for an `AbstractLogDensitySampler`.
        chunk_size: particles per compiled call.
        trajectory_every: record positions every this many steps of each level (None: no
            trajectory). Memory is F * n * D floats.
        max_steps_per_call: longest scan one compiled call runs (progress and checks happen
            between calls).
        block_size: particles stepped together inside a compiled call (a chunk is a
            sequential map over blocks); None picks it from the devices and cores
            (`default_block_size`). Does not change results.
        progress: show a tqdm bar over chunks x levels on stderr.
    Returns:
        a `SampleResult`.
    Raises:
        ConfigError for an invalid combination, DivergenceError when particles diverge.
    """
    start = time.perf_counter()
    if not isinstance(sampler, AbstractSampler):
        raise ConfigError(f"sampler must be a scorefield sampler (AbstractSampler), got {type(sampler).__name__}")
    fn = _model_fn(sampler, score_fn, log_prob)
    n = int(n)
    if n < 1:
        raise ConfigError(f"n={n} must be at least 1")
    if int(chunk_size) < 1 or int(max_steps_per_call) < 1:
        raise ConfigError("chunk_size and max_steps_per_call must be at least 1")
    if trajectory_every is not None and int(trajectory_every) < 1:
        raise ConfigError(f"trajectory_every={trajectory_every} must be at least 1 (or None)")
    every = None if trajectory_every is None else int(trajectory_every)
    from .._limits import MAX_COUNT

    steps = int(sampler.n_levels) * int(sampler.steps_per_level)
    if steps > MAX_COUNT:  # the step counter and the evaluation counts are int32
        raise ConfigError(f"sampler '{sampler.name}' would take {sampler.n_levels} levels x {sampler.steps_per_level} "
                          f"steps = {steps} steps per particle, more than {MAX_COUNT} (JAX counts steps in int32); "
                          "give fewer levels or steps per level")
    dist, x_given, dim = _starts(sampler, init, n, dim)
    plan = _plan(sampler, n, dim, chunk_size, block_size, max_steps_per_call, every)
    from .._limits import check_sample_memory, sample_frames  # before anything is allocated (issue 14)

    check_sample_memory(n, dim, sample_frames(sampler, every, max_steps_per_call), every=every)

    init_key, run_key = jax.random.split(key)
    out = np.empty((n, dim), np.float32)
    trajs: list[np.ndarray] = []
    index = None
    total_evals = 0.0
    level_sums: dict[str, np.ndarray] = {}

    from tqdm import tqdm

    bar = tqdm(total=plan.n_chunks * sampler.n_levels * len(plan.segments), disable=not progress, desc=sampler.name,
               unit="call", file=sys.stderr, leave=False, dynamic_ncols=True)
    try:
        for c in range(plan.n_chunks):
            x, evals, sums, traj, idx = _run_chunk(sampler, fn, plan, c, dist, x_given, init_key, run_key, bar, c == 0)
            out[c * plan.chunk: c * plan.chunk + len(x)] = x
            total_evals += evals
            for k, v in sums.items():
                level_sums[k] = level_sums.get(k, 0.0) + v
            if traj is not None:
                trajs.append(traj)
            index = idx if c == 0 else index
    finally:
        bar.close()
    return _assemble(out, total_evals, level_sums, trajs, index, plan, sampler, time.perf_counter() - start)


def _assemble(samples, total_evals, level_sums, trajs, index, plan: _Plan, sampler, wall) -> SampleResult:
    """The SampleResult: per-level means of the step infos, the trajectory in one array."""
    per_level = float(plan.n * sampler.steps_per_level)
    traj = np.concatenate(trajs, axis=1).astype(np.float32) if plan.every is not None else None
    return SampleResult(
        samples=samples,
        n_score_evals_per_sample=total_evals / plan.n,
        trajectory=traj,
        trajectory_index=np.asarray(index, np.int64) if plan.every is not None else None,
        wall_time=wall,
        level_info={k: v / per_level for k, v in level_sums.items()},
    )
