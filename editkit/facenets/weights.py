"""The shipped face-api weights: tfjs ↔ PyTorch naming and layout, and the safe, validated loader.

The weights live in ``editkit/facenets/weights/<name>.safetensors`` (float32, PyTorch layout), made
once from the package's tfjs files by ``scripts/convert_faceapi.py``; each file's metadata maps every
tensor back to its tfjs name and layout. Loading reads safetensors only (no pickle, no code) and
checks names, shapes, dtype and finiteness against the architecture before anything is used.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import CheckpointError, MissingWeightsError
from .age_gender import AgeGenderNet
from .dense import expression_net, landmarks68_net
from .recognition import FaceRecognitionNet

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: network name → (builder, tfjs model file stem)
NETWORKS: dict[str, tuple[Callable[[], nn.Module], str]] = {
    "recognition": (FaceRecognitionNet, "face_recognition_model"),
    "age_gender": (AgeGenderNet, "age_gender_model"),
    "expression": (expression_net, "face_expression_model"),
    "landmarks68": (landmarks68_net, "face_landmark_68_model"),
}

# layout names: how a tfjs array becomes a PyTorch tensor (and back)
_TO_TORCH = {
    "hwio": lambda t: t.permute(3, 2, 0, 1),        # conv filters [kh,kw,in,out] → [out,in,kh,kw]
    "depthwise": lambda t: t.permute(2, 3, 0, 1),   # [kh,kw,C,1] → [C,1,kh,kw]
    "linear": lambda t: t.t(),                      # [in,out] → [out,in]
    "plain": lambda t: t,
}
_TO_TFJS = {
    "hwio": lambda t: t.permute(2, 3, 1, 0),
    "depthwise": lambda t: t.permute(2, 3, 0, 1),
    "linear": lambda t: t.t(),
    "plain": lambda t: t,
}


def torch_name(tfjs_name: str, separable: bool) -> tuple[str, str]:
    """(PyTorch state-dict key, layout) of one tfjs tensor; ``separable``: its layer is a separable conv."""
    parts = tfjs_name.split("/")
    leaf, base = parts[-1], ".".join(parts[:-1])
    if tfjs_name == "fc":  # recognition's bias-free final layer
        return "fc.weight", "linear"
    if leaf == "filters":
        return f"{base}.weight", "hwio"
    if leaf == "depthwise_filter":
        return f"{base}.depthwise.weight", "depthwise"
    if leaf == "pointwise_filter":
        return f"{base}.pointwise.weight", "hwio"
    if leaf in ("bias", "biases"):
        return (f"{base}.pointwise.bias" if separable else f"{base}.bias"), "plain"
    if leaf == "weights":  # fc weights [in,out] or the affine scale [C]
        return f"{base}.weight", ("plain" if parts[-2] == "scale" else "linear")
    raise ValueError(f"unknown tfjs tensor name {tfjs_name!r}")


def tfjs_to_torch(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """Convert a whole tfjs model (name → array in tfjs layout) to a PyTorch state dict, plus the
    key → [tfjs name, layout] map that is kept in the safetensors metadata."""
    sep = {n.rsplit("/", 1)[0] for n in tensors if n.endswith("/depthwise_filter")}
    state, origin = {}, {}
    for name, value in tensors.items():
        key, layout = torch_name(name, name.rsplit("/", 1)[0] in sep)
        state[key] = _TO_TORCH[layout](value).contiguous()
        origin[key] = [name, layout]
    return state, origin


def to_tfjs_layout(tensor: torch.Tensor, layout: str) -> torch.Tensor:
    """A shipped tensor back in its tfjs layout (to compare with the package's dequantised tensors)."""
    return _TO_TFJS[layout](tensor).contiguous()


def weights_path(name: str) -> Path:
    """The shipped safetensors file of network ``name``."""
    _check_name(name)
    return WEIGHTS_DIR / f"{name}.safetensors"


def _check_name(name: str) -> None:
    if name not in NETWORKS:
        from ..errors import UsageError
        raise UsageError(f"unknown face network {name!r} (choose from {', '.join(NETWORKS)})")


def read_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; never unpickles."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise MissingWeightsError(f"face network weights missing: {path} (reinstall editkit, or run "
                                  "scripts/convert_faceapi.py)")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"unreadable safetensors file ({str(exc)[:150]})", path) from None
    return state, meta


def validate_state(state: dict[str, torch.Tensor], module: nn.Module, path: Path) -> None:
    """Exactly the module's keys, with its shapes, float32 and finite; else a one-line CheckpointError."""
    expected = module.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(f"tensor names do not match the architecture (missing {missing[:3]}, "
                              f"unexpected {extra[:3]})", path)
    for key, ref in expected.items():
        t = state[key]
        if t.shape != ref.shape:
            raise CheckpointError(f"tensor {key} has shape {tuple(t.shape)}, expected {tuple(ref.shape)}", path)
        if t.dtype != torch.float32:
            raise CheckpointError(f"tensor {key} is {t.dtype}, expected float32", path)
        if not torch.isfinite(t).all():
            raise CheckpointError(f"tensor {key} holds NaN or infinite values", path)


_CACHE: dict[tuple[str, str], nn.Module] = {}
_LOCK = threading.Lock()


def load(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """The pretrained network ``name`` ("recognition", "age_gender", "expression", "landmarks68"),
    in eval mode with frozen parameters (gradients still flow to its input), loaded once per device."""
    _check_name(name)
    dev = torch.device(device)
    key = (name, str(dev))
    # normal tensors even when first called under torch.inference_mode (they must serve autograd later)
    with _LOCK, torch.inference_mode(False):
        net = _CACHE.get(key)
        if net is None:
            cpu = _CACHE.get((name, "cpu"))
            if cpu is None:
                cpu = _CACHE[(name, "cpu")] = load_file(name, weights_path(name))
            net = cpu if dev.type == "cpu" else _copy_to(cpu, dev)
            _CACHE[key] = net
    return net


def load_file(name: str, path: str | Path) -> nn.Module:
    """Build network ``name`` and load it from the safetensors file ``path`` (validated; not cached)."""
    _check_name(name)
    path = Path(path)
    net = NETWORKS[name][0]()
    state, _ = read_state(path)
    validate_state(state, net, path)
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


def clear_cache() -> None:
    """Forget the loaded networks (the next :func:`load` reads the files again)."""
    with _LOCK:
        _CACHE.clear()


def _copy_to(net: nn.Module, device: torch.device) -> nn.Module:
    import copy
    return copy.deepcopy(net).to(device).eval().requires_grad_(False)


def provenance(name: str) -> dict:
    """The metadata stored with a network's weights (source files, their SHA-256, package version)."""
    _, meta = read_state(weights_path(name))
    return {k: (json.loads(v) if k in ("tfjs_names",) else v) for k, v in meta.items()}
