"""Error types shared by every layer; the CLI turns them into one-line messages and exit codes."""
from __future__ import annotations

from pathlib import Path


class EditkitError(Exception):
    """Base class: an expected failure with a message meant for users (no traceback)."""

    exit_code = 1

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)


class UsageError(EditkitError):
    """The command was called wrongly (bad option value, missing model, ...)."""

    exit_code = 2


class OutputError(EditkitError):
    """An output cannot be written: folder missing or read-only, disk full, a folder in the way (exit 2)."""

    exit_code = 2


class BadInputError(EditkitError):
    """An input file is unusable (missing, truncated, not an image, no face, wrong format, ...)."""

    exit_code = 3


class CheckpointError(BadInputError):
    """A weights file is unreadable, of an unknown format, or unsafe to load."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle referenced a global outside the allow-list; nothing was executed."""


class MissingWeightsError(UsageError):
    """Pretrained weights that cannot be downloaded here are needed (says which file and where)."""


class NoFaceError(BadInputError):
    """No face was found in a photo."""
