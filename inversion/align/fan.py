"""Optional FAN landmark backend (the ``face-alignment`` package: ``pip install -e '.[fan]'``).

Faces are still found by our dlib detector; FAN (2D, 4 hourglass modules) only replaces the
68-point predictor. ``face-alignment`` downloads its weights when constructed, which fails
offline, so this backend never constructs ``FaceAlignment``: it builds the package's own ``FAN``
network and loads the weights file from the torch hub cache (where the package keeps it,
``$TORCH_HOME/hub/checkpoints/2DFAN4-….pth.tar``) or from a folder/file the user gives. No
file, no download: a :class:`MissingWeightsError` that says where to put it.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from editkit.errors import MissingWeightsError, UsageError

NETWORK = "2DFAN-4"
_lock = threading.Lock()
_nets: dict[str, object] = {}


def _face_alignment():
    """Import the optional package, or explain how to get it."""
    try:
        import face_alignment.api as api
        import face_alignment.models as models
        import face_alignment.utils as utils
    except ImportError as exc:
        raise MissingWeightsError(
            "the FAN landmark backend needs the optional 'face-alignment' package "
            f"(pip install -e '.[fan]'); it is not importable here: {exc}") from None
    if not isinstance(getattr(api, "models_urls", {}).get(NETWORK), str) or not hasattr(models, "FAN"):
        raise UsageError("unsupported face-alignment version: editkit's FAN backend needs face-alignment>=1.5 "
                         "(plain FAN state_dict weights)")
    return api, models, utils


def weights_filename() -> str:
    """File name of the 2D FAN weights as face-alignment names them (e.g. ``2DFAN4-11f355bf06.pth.tar``)."""
    api, _, _ = _face_alignment()
    return os.path.basename(urlparse(api.models_urls[NETWORK]).path)


def find_weights(weights: str | Path | None = None) -> Path:
    """The weights file: ``weights`` (a file, or a folder holding it) or the torch hub cache."""
    api, _, _ = _face_alignment()
    name = weights_filename()
    url = api.models_urls[NETWORK]
    if weights is not None:
        p = Path(weights).expanduser()
        path = p / name if p.is_dir() else p
        where = f"{p}" if p.is_dir() else "the given path"
    else:
        import torch.hub

        path = Path(torch.hub.get_dir()) / "checkpoints" / name
        where = f"the torch hub cache ({path.parent})"
    if not path.is_file():
        raise MissingWeightsError(
            f"FAN landmark weights {name} not found in {where}; they cannot be downloaded here. "
            f"Fetch {url} on a machine with internet and copy it to {path.parent} "
            "(or pass --fan-weights FOLDER), or use the default dlib landmarks")
    return path


def load_fan(weights: str | Path | None = None):
    """The FAN network with the found weights (cached per file), in eval mode on the CPU."""
    import torch

    path = find_weights(weights)
    key = str(path.resolve())
    with _lock:
        net = _nets.get(key)
        if net is None:
            _, models, _ = _face_alignment()
            net = models.FAN(4)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                if isinstance(state, dict) and "state_dict" in state:
                    state = state["state_dict"]
                net.load_state_dict(state)
            except Exception as exc:  # noqa: BLE001 - any unreadable or mismatched file
                from editkit.errors import CheckpointError

                raise CheckpointError(f"not usable as FAN weights: {str(exc).splitlines()[0]}", path) from None
            net.eval()
            _nets[key] = net
        return net


def fan_landmarks(image: np.ndarray, boxes: list[tuple[int, int, int, int]],
                  weights: str | Path | None = None) -> list[np.ndarray]:
    """68×2 landmarks (photo pixels) for each box, with face-alignment's own crop and decoding."""
    import torch

    _, _, utils = _face_alignment()
    net = load_fan(weights)
    img = np.ascontiguousarray(image, dtype=np.uint8)
    out = []
    with torch.no_grad():
        for (l, t, r, b) in boxes:
            center = np.array([r - (r - l) / 2.0, b - (b - t) / 2.0])
            center[1] -= (b - t) * utils.CENTER_Y_OFFSET
            scale = (r - l + b - t) / utils.REFERENCE_SCALE
            inp = utils.crop(img, center, scale).transpose(2, 0, 1).astype(np.float32) / 255.0
            heat = net(torch.from_numpy(inp)[None])
            if isinstance(heat, (list, tuple)):
                heat = heat[-1]
            _, pts_img, _ = utils.get_preds_fromhm(heat.float().numpy(), center, scale)
            out.append(np.asarray(pts_img, dtype=np.float64).reshape(68, 2))
    return out
