"""Console entry point: registers every command module and maps errors to exit codes.

Exit codes: 0 success, 1 internal failure, 2 usage error, 3 bad input, 130 interrupted.
Set ``EDITKIT_DEBUG=1`` to see the traceback of an internal failure.
"""
from __future__ import annotations

import importlib
import os
import sys

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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; expected failures print one line ``editkit: error: ...`` and no traceback."""
    try:
        rv = app(args=argv, prog_name="editkit", standalone_mode=False)
    except EditkitError as exc:
        print(f"editkit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("editkit: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # typer/click exit paths
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    except Exception as exc:  # noqa: BLE001 - last resort: still one line
        if _click_usage_error(exc):
            print(f"editkit: usage error: {exc}", file=sys.stderr)
            return 2
        if os.environ.get("EDITKIT_DEBUG"):
            raise
        print(f"editkit: internal error: {type(exc).__name__}: {exc} (set EDITKIT_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1
    if rv == 130:  # typer turns Ctrl-C into Exit(130), returned (not raised) when standalone_mode=False
        print("editkit: interrupted", file=sys.stderr)
    return rv if isinstance(rv, int) else 0  # typer.Exit(code) from a command is returned the same way


def _click_usage_error(exc: Exception) -> bool:
    return type(exc).__name__ in {"UsageError", "BadParameter", "NoSuchOption", "MissingParameter", "BadOptionUsage", "BadArgumentUsage"}


if __name__ == "__main__":
    sys.exit(main())
