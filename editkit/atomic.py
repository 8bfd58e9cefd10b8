"""Atomic file output: write to a temporary file in the same folder, then rename into place."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from . import testhooks
from .errors import EditkitError, OutputError, UsageError


def check_writable(path: str | Path, overwrite: bool = False, inputs: tuple = (), probe: bool = True) -> Path:
    """Refuse to clobber an input file, or an existing output unless ``overwrite``; with ``probe``, also
    check that the file's folder can be written (see :func:`check_folder_writable`)."""
    p = Path(path)
    for inp in inputs:
        try:
            if p.resolve() == Path(inp).resolve():
                raise UsageError("refusing to overwrite an input file", p)
        except OSError:
            pass
    if p.exists() and not overwrite:
        raise UsageError("output exists (use --overwrite to replace it)", p)
    if p.is_dir():
        raise OutputError("is a folder, not a file", p)
    if probe:
        check_folder_writable(p.parent, p)
    return p


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def check_folder_writable(folder: str | Path, for_path: str | Path | None = None) -> None:
    """Fail now (:class:`OutputError`, exit 2) if files cannot be created in ``folder`` (or, when it does
    not exist yet, in its nearest existing ancestor, where it would be created). Leaves nothing behind."""
    named = Path(for_path) if for_path is not None else Path(folder)
    d = Path(folder)
    while not d.exists():
        if d.parent == d:
            break
        d = d.parent
    if d.exists() and not d.is_dir():
        raise OutputError(f"cannot write here: {d} is a file, not a folder", named)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".editkit-probe.", dir=d)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"cannot write in {d} ({_reason(exc)})", named) from None


_UMASK = os.umask(0)  # read once at import (os.umask can only be read by setting it)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it is renamed onto ``path`` only on success.

    The temporary name keeps the suffix so format-sniffing writers (PIL, imageio, cv2) work.
    On any exception (Ctrl-C included) the temporary file is removed and ``path`` is untouched.
    On an operating-system write error (disk full, read-only or missing folder, permission) the error is an
    :class:`OutputError` naming ``path`` (never the temporary file) and the reason.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write ({_reason(exc)})", target) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs get the usual permissions
        testhooks.pause("atomic-write")
        os.replace(tmp_path, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, EditkitError):
            raise OutputError(f"cannot write ({_reason(exc)})", target) from None
        raise


def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
