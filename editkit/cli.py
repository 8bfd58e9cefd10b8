"""Console entry point: registers every command module and maps errors to exit codes.

Exit codes: 0 success, 1 internal failure, 2 usage error or unwritable output (bad option, unsupported output
format, read-only folder, disk full), 3 bad input (photo, weights file), 130 interrupted (Ctrl-C),
143 terminated (SIGTERM). Set ``EDITKIT_DEBUG=1`` to see the traceback of an internal failure.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import os
import signal
import sys

import typer

from .cli_app import app
from .errors import EditkitError

# Each module registers its commands on ``editkit.cli_app`` objects when imported.
COMMAND_MODULES = [
    "editkit.commands.models",
    "editkit.commands.train_generator",
    "editkit.commands.align",
    "editkit.commands.edit",
    "editkit.commands.train_navigator",
    "editkit.commands.evaluate",
    "editkit.commands.invert",
    "editkit.commands.train_encoder",
    "editkit.commands.serve",
]

for _name in COMMAND_MODULES:
    importlib.import_module(_name)

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
_QUIET_HELP = "Print nothing but errors (no progress, notes, warnings or summary; --json output is still printed)."


def _with_quiet(fn):
    """Give a command a ``--quiet/-q`` option (when it has none) and apply quiet mode around it."""
    sig = inspect.signature(fn)
    own = "quiet" in sig.parameters

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .console import command_output

        quiet = kwargs.get("quiet", False) if own else kwargs.pop("quiet", False)
        with command_output(bool(quiet)):
            return fn(*args, **kwargs)

    if not own:
        extra = inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                                  default=typer.Option(False, "--quiet", "-q", help=_QUIET_HELP))
        params = list(sig.parameters.values())
        wrapper.__signature__ = sig.replace(parameters=params + [extra])
    return wrapper


def _add_quiet_everywhere(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.callback is not None and not getattr(info.callback, "_editkit_quiet", False):
            info.callback = _with_quiet(info.callback)
            info.callback._editkit_quiet = True
    for group in typer_app.registered_groups:
        _add_quiet_everywhere(group.typer_instance)


_add_quiet_everywhere(app)

_received: list[int] = []


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    """SIGTERM runs the same clean-up as Ctrl-C (temporary files removed, batch report written)."""
    _received.append(signum)
    raise KeyboardInterrupt


def _interrupted() -> int:
    if _received and _received[-1] == signal.SIGTERM:
        print("editkit: terminated (SIGTERM); finished outputs are kept, no partial files", file=sys.stderr)
        return EXIT_TERMINATED
    print("editkit: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; expected failures print one line ``editkit: error: ...`` and no traceback."""
    _received.clear()
    old = None
    if hasattr(signal, "SIGTERM"):
        try:
            old = signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread (e.g. called from a worker thread): leave signals alone
            old = None
    try:
        return _run(argv)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _run(argv: list[str] | None) -> int:
    try:
        rv = app(args=argv, prog_name="editkit", standalone_mode=False)
    except EditkitError as exc:
        print(f"editkit: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return _interrupted()
    except SystemExit as exc:  # typer/click exit paths
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    except Exception as exc:  # noqa: BLE001 - last resort: still one line
        if _click_usage_error(exc):
            msg = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            print(f"editkit: usage error: {_one_line(msg)}", file=sys.stderr)
            return 2
        if os.environ.get("EDITKIT_DEBUG"):
            raise
        print(f"editkit: internal error: {type(exc).__name__}: {_one_line(exc)} (set EDITKIT_DEBUG=1 for the "
              "traceback)", file=sys.stderr)
        return 1
    if rv == EXIT_INTERRUPTED:  # typer turns Ctrl-C into Exit(130), returned (not raised) when standalone_mode=False
        return _interrupted()
    return rv if isinstance(rv, int) else 0  # typer.Exit(code) from a command is returned the same way


def _one_line(exc) -> str:
    return " ".join(str(exc).split())


def _click_usage_error(exc: Exception) -> bool:
    return type(exc).__name__ in {"UsageError", "BadParameter", "NoSuchOption", "MissingParameter", "BadOptionUsage",
                                  "BadArgumentUsage"}


if __name__ == "__main__":
    sys.exit(main())
