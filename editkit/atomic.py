"""Atomic file output: write to a temporary file in the same folder, then rename into place."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from .errors import UsageError


def check_writable(path: str | Path, overwrite: bool = False, inputs: tuple = ()) -> Path:
    """Refuse to clobber an input file, or an existing output unless ``overwrite``."""
    p = Path(path)
    for inp in inputs:
        try:
            if p.resolve() == Path(inp).resolve():
                raise UsageError("refusing to overwrite an input file", p)
        except OSError:
            pass
    if p.exists() and not overwrite:
        raise UsageError("output exists (use --overwrite to replace it)", p)
    return p


_UMASK = os.umask(0)  # read once at import (os.umask can only be read by setting it)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it is renamed onto ``path`` only on success.

    The temporary name keeps the suffix so format-sniffing writers (PIL, imageio, cv2) work.
    On any exception (Ctrl-C included) the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs get the usual permissions
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
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
