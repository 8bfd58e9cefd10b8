"""editkit: edit real face photos with ContraFeat directions in StyleGAN2's W+ space.

Public names are imported lazily so that ``editkit --help`` and light commands start without torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Discriminator": "editkit.networks", "Generator": "editkit.networks",
    "Network": "editkit.checkpoints", "convert": "editkit.checkpoints", "load_generator": "editkit.checkpoints",
    "load_network": "editkit.checkpoints", "save_network": "editkit.checkpoints",
    "Editor": "editkit.editor", "EditResult": "editkit.editor",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .checkpoints import Network, convert, load_generator, load_network, save_network
    from .editor import EditResult, Editor
    from .networks import Discriminator, Generator


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'editkit' has no attribute {name!r}")
