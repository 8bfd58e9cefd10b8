"""Where editkit finds things on disk: the user cache folder and dlib's landmark models."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import MissingWeightsError


def cache_dir() -> Path:
    """The user cache folder: ``$EDITKIT_CACHE`` if set, else ``$XDG_CACHE_HOME/editkit`` or ``~/.cache/editkit``."""
    root = os.environ.get("EDITKIT_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "editkit"


def dlib_models_dir() -> Path:
    """The ``models/`` folder of the installed ``face-recognition-models`` package (never imported:
    its ``__init__`` needs ``pkg_resources``, which current setuptools no longer has)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            "dlib face models not found: install the 'face-recognition-models' package "
            "(pip install face-recognition-models==0.3.0)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def dlib_model_path(name: str) -> Path:
    """One dlib model file (e.g. ``shape_predictor_68_face_landmarks.dat``), checked to exist."""
    path = dlib_models_dir() / name
    if not path.is_file():
        raise MissingWeightsError(f"dlib model file missing: {path} (reinstall face-recognition-models)")
    return path
