"""Save and load navigators as safetensors with their JSON config in the metadata."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file, safe_open

from editkit.atomic import atomic_path
from editkit.checkpoints.validate import check_tensors
from editkit.errors import CheckpointError

from .model import Navigator

FORMAT = "editkit-navigator"
VERSION = 1


def save_navigator(nav: Navigator, path: str | Path) -> Path:
    """Write ``nav`` to ``path`` (safetensors; config, labels and strengths as JSON metadata), atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in nav.state_dict().items()}
    meta = {"format": FORMAT, "version": str(VERSION), "config": json.dumps(nav.config())}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def read_navigator_config(path: str | Path) -> dict:
    """The JSON config stored in a navigator file."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError("navigator file not found", path=p)
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"not a safetensors navigator file ({exc})", path=p) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"not an editkit navigator (format={meta.get('format')!r})", path=p)
    try:
        return json.loads(meta["config"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"navigator config is unreadable ({exc})", path=p) from None


def load_navigator(path: str | Path, device: str | torch.device = "cpu") -> Navigator:
    """Load a navigator written by :func:`save_navigator`."""
    cfg = read_navigator_config(path)
    tensors = load_file(str(path), device="cpu")
    check_tensors(tensors, path, "navigator")  # finite, numeric tensors (a damaged file fails here)
    kwargs = dict(
        num_directions=cfg["num_directions"], num_ws=cfg["num_ws"], w_dim=cfg["w_dim"],
        direction_mode=cfg["direction_mode"], attention_mode=cfg["attention_mode"],
        labels=cfg.get("labels"), strength_range=cfg.get("strength_range"), info=cfg.get("info"),
    )
    if cfg["direction_mode"] == "pca":
        kwargs.update(basis=tensors.get("basis"), num_components=cfg["num_components"])
    if cfg["direction_mode"] == "fixed":
        kwargs["fixed_directions"] = tensors.get("fixed_directions")
    if cfg["attention_mode"] == "fixed":
        kwargs["fixed_attention"] = tensors.get("fixed_attention")
    try:
        nav = Navigator(**kwargs)
        nav.load_state_dict(tensors, strict=True)
    except Exception as exc:  # noqa: BLE001 - any mismatch means a damaged file
        raise CheckpointError(f"navigator weights do not match its config ({exc})", path=path) from None
    if not all(math.isfinite(float(v)) for pair in nav.strength_range for v in pair):
        raise CheckpointError("navigator config holds a non-finite recommended strength range", path=path)
    return nav.to(device)
