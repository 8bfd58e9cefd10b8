"""editkit: edit real face photos with ContraFeat directions in StyleGAN2's W+ space."""
from __future__ import annotations

from .checkpoints import Network, convert, load_generator, load_network, save_network
from .networks import Discriminator, Generator

__version__ = "0.1.0"

__all__ = ["Discriminator", "Generator", "Network", "convert", "load_generator", "load_network", "save_network",
           "__version__"]


def __getattr__(name: str):  # lazy: the application layer imports inversion/navigator
    if name == "Editor":
        from .editor import Editor

        return Editor
    raise AttributeError(f"module 'editkit' has no attribute {name!r}")
