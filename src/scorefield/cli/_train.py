"""scorefield train: fit a noise-conditional score model to data."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

from ._common import formatter, non_negative_int, positive_int, seed, worded
from ._options import flag_error, given, lazy_options

EXAMPLES = """examples:
  scorefield train --data mnist --out runs/five
  scorefield train --data mnist --out runs/seed --preset seed --steps 5000
  scorefield train --data toy:two-moons --out runs/moons --config my.toml --quiet
  scorefield train --data toy:two-moons --out runs/moons --net grid --grid-features 8 --levels random
  scorefield train --out runs/five --resume --steps 6000   # continue, or extend, a run
  scorefield train --data mnist --out runs/five --resume   # the run's own command, resumed

multi-host (one data-parallel run over P processes; the same command on every host,
process 0 writes the run directory):
  JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0 scorefield train --data mnist --out runs/five
  JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=1 scorefield train --data mnist --out runs/five
  srun -N 2 scorefield train --data mnist --out runs/five --distributed   # Slurm or Open MPI: detected
"""

ENV = {"coordinator": "JAX_COORDINATOR_ADDRESS", "num_processes": "JAX_NUM_PROCESSES", "process_id": "JAX_PROCESS_ID"}


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a score model on data",
        description="Train a noise-conditional score model by denoising score matching (or sliced/exact "
        "score matching) and write a run directory: config.json, metrics.jsonl, checkpoints.",
        epilog=EXAMPLES,
        formatter_class=formatter,
    )
    p.add_argument("--data", metavar="SPEC", help="data spec: mnist, mnist:label=L,index=K, image:PATH, toy:NAME, points:PATH, ...")
    p.add_argument("--out", metavar="RUN", required=True, help="run directory to create (or continue with --resume)")
    p.add_argument("--preset", choices=("default", "seed", "fast", "images"),
                   help="hyperparameters: default (ours; the default), seed (the reference walkthrough exactly), fast (seconds)")
    p.add_argument("--config", metavar="FILE.toml", help="TOML file of configuration keys, applied over the preset")
    p.add_argument("--steps", type=positive_int, help="number of training steps (total, also when resuming)")
    p.add_argument("--batch-size", type=positive_int, help="samples per step")
    p.add_argument("--seed", type=seed, help="random seed")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint: alone (with --steps to extend it), or "
                   "added to the run's own command (every option must be the run's)")
    p.add_argument("--accept-changed-data", action="store_true",
                   help="with --resume: continue although the data file differs from the one the run was trained on "
                   "(its SHA-256 is recorded in config.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--net", metavar="NAME", help="a registered score network, or auto (grid for D <= 2, sigma above); "
                   "default: the preset's (or --config's)")
    p.add_argument("--objective", metavar="NAME", help="a registered objective; default: the preset's (or --config's)")
    # one flag per option of every registered network and objective, added when this command
    # parses; each is the config key of the same name (top level, or [net_options] / [objective_options])
    lazy_options(p, _nets, "network options (each says which networks take it; the config key of the same name)",
                 choices="--net", also_valid=("auto",))
    lazy_options(p, _objectives, "objective options (each says which objectives take it; the config key of the same name)",
                 choices="--objective")
    g = p.add_argument_group("multi-host", "one run over several processes through jax.distributed "
                             "(each flag defaults to its environment variable)")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0, where the coordinator listens ($JAX_COORDINATOR_ADDRESS)")
    g.add_argument("--num-processes", type=positive_int, metavar="P", help="number of processes in the run ($JAX_NUM_PROCESSES)")
    g.add_argument("--process-id", type=non_negative_int, metavar="I", help="this process, 0 to P-1; 0 writes the run ($JAX_PROCESS_ID)")
    g.add_argument("--distributed", action="store_true",
                   help="join a multi-process run; what is not given is detected by JAX (Slurm, Open MPI)")
    p.set_defaults(func=run)


def _nets():
    from ..nets import NETS

    return NETS


def _objectives():
    from ..losses import OBJECTIVES

    return OBJECTIVES


_TABLES = {"net": "net_options", "objective": "objective_options"}


def _component_flags(args: argparse.Namespace, values: dict, *, net: str | None = None) -> dict:
    """The network and objective option flags given, checked against the chosen components
    (`values["net"]`, `values["objective"]`, else the config's defaults) and put where the
    config keeps them: a top-level key (width, levels, ...) or the [net_options] /
    [objective_options] table. Returns the new config values (`values` is not changed).
    A network "auto" is checked once the data decide it: call again with `net` the network
    it becomes (only the check is made then).

    Raises:
        ConfigError naming the flag: one the chosen component does not take, or a value out of
        its range.
    """
    import dataclasses

    from .._registry import OptionError
    from ..train import TrainConfig
    from ..train._config import RULE_TABLES, without_keys

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    registries = {"net": _nets(), "objective": _objectives()}
    out = dict(values)
    for kind, registry in registries.items():
        if net is not None and kind != "net":
            continue
        name = net or values.get(kind, getattr(TrainConfig, kind))
        other = tuple(n for k, r in registries.items() if k != kind for n in r.all_options())
        offered = set(getattr(args, "_offered", None) or ())
        try:
            if name == "auto":  # placed now, checked when the data decide the network
                flags = {n: getattr(args, n) for n in registry.all_options()
                         if n in offered and getattr(args, n, None) is not None}
            else:
                flags = given(args, registry, name, also=other)
                registry.resolve(name, flags, fill=False)
        except OptionError as e:
            raise flag_error(e) from None
        if net is not None:
            continue
        table = dict(out.get(_TABLES[kind]) or {})
        for k, v in flags.items():
            if k in fields:
                out[k] = v
                for rules in RULE_TABLES:  # a flag given wins on every dimension and network
                    if k in (out.get(rules) or {}):
                        out[rules] = without_keys(out[rules], (k,))
            else:
                table[k] = v
        if table:
            out[_TABLES[kind]] = table
    return out


# the Python API's argument wording -> the command line's flags
_FLAG_WORDING = ((r"\baccept_changed_data=True", "--accept-changed-data"),
                 (r"\bresume=True", "--resume"), (r"\bresume=False", "without --resume"),
                 (r"(?<![\w.-])out=", "--out "), (r"(?<![\w.-])steps=", "--steps "),
                 (r"\(lr in the config\)", "(--config with lr)"))


def _flags(e: Exception) -> Exception:
    """The library's error `e`, its message worded with this command's flags."""
    return worded(e, _FLAG_WORDING)


def run(args: argparse.Namespace) -> int:
    from .._errors import InputError, ScorefieldError
    from ..train import PRESETS, TrainConfig, load_toml, merge_preset, resume, train
    from ..train._rundir import refuse_if_locked

    try:  # at once, before data are loaded or anything is compiled
        refuse_if_locked(args.out)
    except ScorefieldError as e:
        raise _flags(e) from None
    overrides = {}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.seed is not None:
        overrides["seed"] = args.seed
    # --resume alone (with --steps at most) continues the run with its own config.json; the
    # run's own command with --resume added continues it too, if every option is the run's
    component_flags = [n for n in (getattr(args, "_offered", None) or ()) if getattr(args, n, None) is not None]
    as_typed = not args.resume or bool(args.data or args.config or args.preset is not None
                                        or args.batch_size is not None or args.seed is not None
                                        or args.net or args.objective or component_flags)
    preset = args.preset or "default"
    config = None
    if as_typed:
        values = {}  # the user's keys, over the preset's below
        if args.config:
            values.update(load_toml(args.config))
        if args.data:
            values["data"] = args.data
        if "data" not in values and "data" not in PRESETS[preset]:
            raise InputError("--data is required: give a data spec such as mnist, image:PATH or toy:two-moons"
                             + (" (the run's own, to --resume it with its options)" if args.resume else ""))
        values.update(overrides)
        for kind in ("net", "objective"):
            if getattr(args, kind):
                values[kind] = getattr(args, kind)
        values = _component_flags(args, merge_preset(PRESETS[preset], values))
        config = TrainConfig.from_dict(values, source="--config" if args.config else "options")
        from ..data import absolute_spec, parse_spec

        spec = parse_spec(config.data)
        if spec.path is not None and spec.kind != "image-folder":  # a missing file fails here, before the banner
            from ..data._images import _check_file

            _check_file(spec.path, {"image": "image file", "points": "points file"}.get(spec.kind, "data file"))
        # stored with its path absolute, so that --resume works from any directory
        config = config.replace(data=absolute_spec(config.data))
    lead = _join_processes(args)
    dataset = None
    if config is not None and not args.resume:  # resolved here: the first line says what was chosen
        from ..data import load
        from ..train import resolve as resolve_config
        from ..train._build import auto_net

        try:
            dataset = load(config.data)
            if config.net == "auto":  # the flags given must be options of the network the data choose
                _component_flags(args, {}, net=auto_net(dataset.dim, getattr(dataset, "image_shape", None)))
            config = resolve_config(config, dataset)
        except ScorefieldError as e:
            raise _flags(e) from None

    def banner() -> None:  # once every check has passed: an error line never follows it
        if not args.quiet and not args.resume:
            print(f"scorefield train: {config.data} -> {args.out} (preset {preset}, {config.steps} steps, "
                  f"net {config.net}); {config.sigma_rule}" + (f"; {config.dim_rule}" if config.dim_rule else ""),
                  file=sys.stderr)

    progress = False if args.quiet else None
    try:
        if config is None:
            result = resume(args.out, steps=args.steps, progress=progress, accept_changed_data=args.accept_changed_data)
        else:
            result = train(config, args.out, resume=args.resume, dataset=dataset, progress=progress,
                           accept_changed_data=args.accept_changed_data, on_start=banner if lead else None)
    except ScorefieldError as e:
        raise _flags(e) from None
    except KeyboardInterrupt as e:
        import shlex

        from pathlib import Path

        from . import interrupt_exit_code, interrupt_name

        how = interrupt_name(e)
        if (Path(args.out) / "config.json").is_file():
            print(f"scorefield train: {how}; the last completed steps are checkpointed in {args.out}; "
                  f"resume with: scorefield train --out {shlex.quote(str(args.out))} --resume", file=sys.stderr)
        else:  # stopped before the run directory was written: nothing to resume
            print(f"scorefield train: {how} before training started; nothing was saved in {args.out}; "
                  "rerun the same command to start again", file=sys.stderr)
        return interrupt_exit_code(e)
    if not lead:  # process 0 reports the run
        return 0
    last = result.metrics()[-1]["loss"] if result.metrics() else float("nan")
    wall = result.checkpoint.get("wall", float("nan"))
    print(f"trained {result.step} steps in {wall:.1f} s; last logged loss {last:.4f}; run saved in {result.path}")
    return 0


def _env_int(args: argparse.Namespace, name: str) -> int | None:
    """--flag, else its environment variable (an InputError naming it if not an integer >= 0)."""

    from .._errors import InputError

    flag = getattr(args, name)
    if flag is not None:
        return flag
    text = os.environ.get(ENV[name], "").strip()
    if not text:
        return None
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < (1 if name == "num_processes" else 0):
        raise InputError(f"{ENV[name]}={text!r} is not valid; give an integer {'>= 1' if name == 'num_processes' else '>= 0'}")
    return v


def _join_processes(args: argparse.Namespace) -> bool:
    """Call jax.distributed.initialize when this is one process of several; returns whether
    this process is process 0 (the one that writes). Must run before any JAX computation."""

    from .._errors import InputError, ScorefieldError

    num, pid = _env_int(args, "num_processes"), _env_int(args, "process_id")
    coordinator = args.coordinator or os.environ.get(ENV["coordinator"]) or None
    if not args.distributed and num in (None, 1):
        if args.coordinator is not None or args.process_id is not None:
            raise InputError("--coordinator and --process-id need --num-processes P (or JAX_NUM_PROCESSES) "
                             "greater than 1, or --distributed")
        return True
    if not args.distributed:  # explicit: every value is needed
        missing = [f"--{k.replace('_', '-')} (or {ENV[k]})" for k, v in
                   (("coordinator", coordinator), ("process_id", pid)) if v is None]
        if missing:
            raise InputError(f"a run over {num} processes needs {' and '.join(missing)}")
        if pid >= num:
            raise InputError(f"process id {pid} is out of range for {num} processes; give 0 to {num - 1}")
    flag = "--coordinator" if args.coordinator else ENV["coordinator"]
    if coordinator is not None:
        _check_coordinator(coordinator, flag)
    timeout = _join_timeout()
    deadline = time.monotonic() + timeout
    if coordinator is not None and pid not in (None, 0):  # process 0 serves the address; the others reach it
        _reach_coordinator(coordinator, flag, deadline, timeout)
    import jax

    where = f"at {coordinator}" if coordinator else "(detected coordinator)"
    who = "process 0" if pid == 0 else f"process {pid}" if pid is not None else "this process"
    # JAX ends the process from C++ (SIGABRT, a stack trace, exit 134) when its own join
    # times out; a watchdog gives up first, with one line, before anything was written.
    done = threading.Event()

    def give_up() -> None:
        if not done.is_set():
            print(f"scorefield train: error: {who} could not join the run {where} within {timeout} s: "
                  f"{'the other processes did not all connect' if pid == 0 else 'the run did not start'}; "
                  "start every process with the same coordinator address and process count "
                  "(the wait is set by SCOREFIELD_JOIN_TIMEOUT, in seconds)", file=sys.stderr, flush=True)
            os._exit(1)

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num, process_id=pid,
                                   initialization_timeout=timeout + 60)
    except ValueError as e:  # JAX found no cluster to take the missing values from
        raise InputError(f"--distributed: {' '.join(str(e).split()).rstrip('.')}; give --coordinator, --num-processes and "
                         "--process-id (or the JAX_* variables)") from None
    except Exception as e:  # noqa: BLE001 - JAX raises XlaRuntimeError/RuntimeError on a failed join
        raise ScorefieldError(f"could not join the run {where} within "
                              f"{timeout} s ({type(e).__name__}: {' '.join(str(e).split())[:300]}); start "
                              "every process with the same coordinator address and process count (the wait is "
                              "set by SCOREFIELD_JOIN_TIMEOUT, in seconds)") from None
    finally:
        done.set()
        watchdog.cancel()
    return jax.process_index() == 0


def _reach_coordinator(address: str, flag: str, deadline: float, timeout: int) -> None:
    """Return once a TCP connection to `address` (HOST:PORT) succeeds; retried until
    `deadline` (time.monotonic()). InputError when the host name does not resolve,
    ScorefieldError (exit 1) when nothing answers in time, naming why."""
    import socket

    from .._errors import InputError, ScorefieldError

    host, _, port = address.strip().rpartition(":")
    host = host.strip("[]")
    why = "no answer"
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((host, int(port)), timeout=max(0.05, min(2.0, left))):
                return
        except socket.gaierror as e:
            raise InputError(f"{flag} {address!r}: the host {host!r} cannot be resolved ({e.strerror}); "
                             "give the address of process 0, such as host0:1234") from None
        except ConnectionRefusedError:
            why = "connection refused: nothing listens there"
        except TimeoutError:
            why = "no answer: the host is down, or a firewall drops the connection"
        except OSError as e:
            why = e.strerror or type(e).__name__
        left = deadline - time.monotonic()
        if left <= 0:
            raise ScorefieldError(f"could not reach the coordinator {address} ({flag}) within {timeout} s ({why}); "
                                  "start process 0 with the same address, or check the host and port "
                                  "(the wait is set by SCOREFIELD_JOIN_TIMEOUT, in seconds)")
        time.sleep(min(0.25, left))


def _check_coordinator(address: str, flag: str) -> None:
    """InputError unless `address` is HOST:PORT with a port in 1..65535 (JAX fails on other
    forms with an IndexError or waits for a host that cannot exist)."""
    from .._errors import InputError

    host, colon, port = address.strip().rpartition(":")
    host = host.strip("[]")
    if not colon or not host or any(c.isspace() for c in host) or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InputError(f"{flag} {address!r} is not HOST:PORT; give the address of process 0, such as host0:1234")


def _join_timeout() -> int:
    """Seconds to wait for every process to join: SCOREFIELD_JOIN_TIMEOUT, default 120."""

    try:
        return max(1, int(os.environ.get("SCOREFIELD_JOIN_TIMEOUT", "120")))
    except ValueError:
        return 120
