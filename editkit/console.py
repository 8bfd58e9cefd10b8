"""What the command line prints besides results: quiet mode, one-line notes and warnings, progress, JSON.

Everything here writes to stderr except :func:`emit_json` (stdout). ``--quiet`` silences notes, warnings
and progress; errors are always printed. Progress is a live bar with an ETA when stderr is a terminal,
and plain lines (``invert: 50/250 (20%), 4 s, ETA 16 s``) at every tenth of the work otherwise, so logs
stay readable.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import time
import warnings
from typing import Any, Callable, Iterator

_state: dict[str, Any] = {"quiet": False, "stdout": None}


class EditkitWarning(UserWarning):
    """A warning meant for users (printed as one line ``editkit: warning: ...``)."""


def set_quiet(quiet: bool = True) -> None:
    """Silence notes, warnings (ours, torch's, the VGG16 note) and progress for this process."""
    _state["quiet"] = bool(quiet)
    logging.disable(logging.WARNING if quiet else logging.NOTSET)


def is_quiet() -> bool:
    return _state["quiet"]


def note(message: str) -> None:
    """One line on stderr unless quiet."""
    if not _state["quiet"]:
        print(f"editkit: {message}", file=sys.stderr, flush=True)


def emit_json(data: Any) -> None:
    """Machine-readable result on stdout (printed even with --quiet)."""
    out = _state["stdout"] or sys.stdout
    out.write(json.dumps(data, indent=2, default=str) + "\n")
    out.flush()


class _OneLineLogHandler(logging.Handler):
    """Library log records (e.g. the VGG16 fallback note) as single ``editkit: note: ...`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        if _state["quiet"]:
            return
        msg = " ".join(record.getMessage().split())
        print(f"editkit: note: {msg}", file=sys.stderr, flush=True)


def _showwarning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings as one line; third-party warnings (torch, PIL) are not shown to CLI users."""
    if _state["quiet"]:
        return
    if issubclass(category, EditkitWarning):
        print(f"editkit: warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def command_output(quiet: bool) -> Iterator[None]:
    """Around one CLI command: with ``quiet`` its stdout chatter is dropped (JSON still reaches stdout)."""
    install_cli_output()
    old = (_state["quiet"], _state["stdout"])
    set_quiet(quiet)
    _state["stdout"] = sys.stdout
    try:
        if quiet:
            with contextlib.redirect_stdout(io.StringIO()):
                yield
        else:
            yield
    finally:
        set_quiet(old[0])
        _state["stdout"] = old[1]


def install_cli_output() -> None:
    """Route warnings and log records to one-line messages (called by the CLI for each command)."""
    warnings.showwarning = _showwarning
    handler = _OneLineLogHandler(logging.INFO)
    for name in ("inversion", "navigator", "editkit"):
        lg = logging.getLogger(name)
        if not any(isinstance(h, _OneLineLogHandler) for h in lg.handlers):
            lg.addHandler(handler)
        lg.propagate = False


def _fmt_s(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    m, s = divmod(int(seconds + 0.5), 60)
    return f"{m}:{s:02d} min" if m < 60 else f"{m // 60}:{m % 60:02d} h"


class Progress:
    """Progress of one task: ``update(done, total, info="")``; a bar on a terminal, plain lines otherwise."""

    def __init__(self, label: str, stream=None, interactive: bool | None = None, clock: Callable[[], float] = time.monotonic):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interactive = tty if interactive is None else interactive
        self.clock = clock
        self.t0 = clock()
        self._bar = None
        self._task = None
        self._last_decile = -1
        self._total = None

    def __enter__(self) -> "Progress":
        if self.interactive and not _state["quiet"]:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"),
                            console=Console(file=self.stream), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=None)
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    def eta(self, done: int, total: int, elapsed: float | None = None) -> float | None:
        """Seconds left, assuming the remaining steps take as long as the ones done."""
        if done <= 0 or total <= 0:
            return None
        elapsed = self.clock() - self.t0 if elapsed is None else elapsed
        return elapsed / done * (total - done)

    def line(self, done: int, total: int, info: str = "") -> str:
        elapsed = self.clock() - self.t0
        eta = self.eta(done, total, elapsed)
        pct = 100 * done // total if total else 0
        text = f"{self.label}: {done}/{total} ({pct}%), {_fmt_s(elapsed)}"
        if eta is not None and done < total:
            text += f", ETA {_fmt_s(eta)}"
        return text + (f", {info}" if info else "")

    def update(self, done: int, total: int, info: str = "") -> None:
        if _state["quiet"]:
            return
        if self._total != total:  # a new phase (e.g. a second batch of faces) restarts the clock
            if self._total is not None and done <= 1:
                self.t0 = self.clock()
            self._total = total
            self._last_decile = -1
            if self._bar is not None:
                self._bar.reset(self._task, total=total)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, description=info)
            return
        decile = 10 * done // total if total else 10
        if decile > self._last_decile:
            self._last_decile = decile
            print(self.line(done, total, info), file=self.stream, flush=True)

    def invert_callback(self) -> Callable[[int, int, float], None]:
        """A ``progress(step, total, loss)`` callback for ``inversion.invert``."""
        return lambda step, total, loss: self.update(step, total, f"loss {loss:.4f}")
