"""The command-line face of scorefield: a thin layer over the library.

Each command lives in its own module ``scorefield.cli._<command>`` exposing
``register(subparsers)``; it sets ``func`` on its parser to a callable taking the parsed
arguments and returning an exit code. Library imports (JAX) happen inside ``func`` so that
``--help`` stays fast.

Exit codes (SPEC section 4): 0 done; 2 bad usage or input; 1 failure at run time; 130
interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP). Errors are one line
on stderr; ``--debug`` shows the traceback.

Signals: SIGTERM and SIGHUP are handled like Ctrl-C (they raise :class:`Terminated`, a
KeyboardInterrupt, so training checkpoints its last completed call); a second signal
while the first is being handled is ignored, so that the checkpoint is written and the
exit is clean. A signal that was ignored when the process started (``nohup``, a background
job) stays ignored.
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import importlib
import signal
import sys
import threading
import warnings

from .._errors import ScorefieldError

COMMANDS = ("train", "sample", "eval", "plot", "info", "demo")
USAGE = ("usage: scorefield [--version] [--debug] COMMAND ...; COMMAND is one of "
         + ", ".join(COMMANDS) + " (see 'scorefield --help')")
_HANDLED = ("SIGINT", "SIGTERM", "SIGHUP")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C. `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def interrupt_exit_code(e: BaseException) -> int:
    """130 for Ctrl-C, 128 + N for signal N (SIGTERM: 143, SIGHUP: 129)."""
    return int(getattr(e, "exit_code", 130))


def interrupt_name(e: BaseException) -> str:
    """'interrupted' for Ctrl-C, 'terminated by SIGTERM' (or SIGHUP) for the others."""
    return f"terminated by {e.args[0]}" if isinstance(e, Terminated) else "interrupted"


@contextlib.contextmanager
def handle_signals():
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt (Terminated for the last two) in
    the main thread; every further one is ignored while the first is handled. Signals
    ignored at start stay ignored; the previous handlers come back at the end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hit, raised = [], []

    def handler(signum, frame):
        if hit:  # already stopping: let the checkpoint be written and the exit finish
            return
        hit.append(signum)
        raised[:] = [KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)]
        raise raised[0]

    def unraisable(info):
        # Python drops (and reports here) an exception raised in a gc callback, a weakref
        # callback or a finaliser; JAX's gc callback runs often in a training loop, and a
        # signal landing there was lost, with every later one ignored. Deliver it again.
        if raised and info.exc_value is raised[0]:
            signum = hit[0]
            hit.clear()
            raised.clear()
            timer = threading.Timer(0.05, _thread.interrupt_main, (signum,))
            timer.daemon = True
            timer.start()
            return
        previous_hook(info)

    previous_hook = sys.unraisablehook
    sys.unraisablehook = unraisable
    old = {}
    for name in _HANDLED:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        prev = signal.getsignal(sig)
        if prev is signal.SIG_IGN or prev is None:
            continue
        old[sig] = prev
        signal.signal(sig, handler)
    try:
        yield hit
    finally:
        sys.unraisablehook = previous_hook
        for sig, prev in old.items():
            signal.signal(sig, signal.SIG_IGN if hit and _IGNORE_AFTER_INTERRUPT else prev)


# entry() (a process about to exit) keeps signals ignored after an interrupt, so that a
# further Ctrl-C cannot land in an exit handler (JAX's) and print its traceback
_IGNORE_AFTER_INTERRUPT = False


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        # a value with a newline or another control character is echoed escaped: still one line
        message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="scorefield",
        description="Score-based generative modelling: learn a score by score matching, sample it with Langevin-type samplers.",
        epilog="example: scorefield train --data mnist --out runs/five && "
        "scorefield sample --run runs/five --n 10000 --out five.npy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"scorefield {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"._{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}._{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Unknown words after a command: name the command's own help, not the top level's.
        cmd = f"scorefield {args.command}" if getattr(args, "command", None) else "scorefield"
        hint = ("; square brackets in a usage line mark an optional part, type it without them"
                if any(a.startswith("[") or a.endswith("]") for a in extra) else "")
        parser.exit(2, f"{cmd}: error: unrecognized arguments: {' '.join(extra)}{hint} (see '{cmd} --help')\n")
    if getattr(args, "func", None) is None:
        print(USAGE, file=sys.stderr)
        return 2
    debug = args.debug or "--debug" in argv
    try:
        with handle_signals(), warnings.catch_warnings():
            if not debug:  # a library's warning (say Pillow on odd EXIF data) as one line too
                warnings.showwarning = lambda message, category, *rest, **kw: print(
                    f"scorefield {args.command}: warning: {_one_line(message)}", file=sys.stderr)
            code = args.func(args)
        return 0 if code is None else int(code)
    except ScorefieldError as e:
        if debug:
            raise
        print(f"scorefield {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        if debug:
            raise
        print(f"scorefield {args.command}: {interrupt_name(e)}", file=sys.stderr)
        return interrupt_exit_code(e)
    except Exception as e:  # a bug, not bad input: still one line unless --debug
        if debug:
            raise
        print(
            f"scorefield {args.command}: internal error: {type(e).__name__}: {_one_line(e)} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def entry() -> None:  # pragma: no cover - console script
    global _IGNORE_AFTER_INTERRUPT
    _IGNORE_AFTER_INTERRUPT = True
    from ._cache import configure

    configure()  # the persistent XLA cache (cli/_cache.py), before JAX is imported
    sys.exit(main())
