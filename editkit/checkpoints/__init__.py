"""Load any supported StyleGAN2 checkpoint into editkit's networks; save editkit's own format."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path
from ..errors import CheckpointError
from ..networks import Discriminator, Generator
from .formats import RawNetwork, read_raw
from .validate import check_module, check_tensors

W_AVG_SAMPLES = 10_000


@dataclass
class Network:
    """A loaded network file: generator ``G``, discriminator ``D`` (or None) and metadata."""

    G: Generator
    D: Discriminator | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _build(cls, kwargs: dict, state: dict[str, torch.Tensor], path: Path, what: str):
    try:
        module = cls.from_config(kwargs) if hasattr(cls, "from_config") else cls(**kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"unsupported {what} configuration ({exc})", path) from None
    own = module.state_dict()
    check_tensors(state, path, what, expected={k: v for k, v in own.items() if not k.endswith("resample_filter")})
    missing = [k for k in own if k not in state and not k.endswith("resample_filter")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise CheckpointError(f"{what} weights do not match the architecture: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}", path)
    merged = {k: (state[k] if k in state else v) for k, v in own.items()}
    for k, v in merged.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(f"{what} tensor {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}", path)
    module.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in merged.items()})
    return module.eval().requires_grad_(False)


def load_network(path: str | Path, device: str | torch.device = "cpu") -> Network:
    """Load G (and D when the file has one) from an NVIDIA pickle, rosinality/e4e .pt or editkit file."""
    p = Path(path)
    raw: RawNetwork = read_raw(p)
    G = _build(Generator, raw.g_kwargs, raw.g_state, p, "generator")
    meta = dict(raw.meta, format=raw.format, path=str(p))
    if not raw.w_avg_known:
        with torch.no_grad():
            z = torch.randn([W_AVG_SAMPLES, G.z_dim], generator=torch.Generator().manual_seed(0))
            G.mapping.w_avg.copy_(G.mapping(z)[:, 0].mean(dim=0))
        meta["w_avg"] = f"estimated from {W_AVG_SAMPLES} samples (the file stores none)"
    D = _build(Discriminator, raw.d_kwargs, raw.d_state, p, "discriminator") if raw.d_state else None
    G.to(device)
    if D is not None:
        D.to(device)
    return Network(G, D, meta)


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """Load a generator from any supported file (or bundle folder), frozen, in eval mode."""
    return load_network(path, device).G


def save_network(path: str | Path, G: Generator, D: Discriminator | None = None,
                 meta: dict[str, Any] | None = None) -> Path:
    """Write G (and D) as one safetensors file with their configs in its metadata (atomically)."""
    from safetensors.torch import save_file

    tensors = {f"G.{k}": v.detach().to("cpu", torch.float32).contiguous() if v.is_floating_point() else v.cpu()
               for k, v in G.state_dict().items()}
    md = {"format": "editkit.network", "version": "1", "G_config": json.dumps(G.config),
          "meta": json.dumps(meta or {})}
    if D is not None:
        tensors.update({f"D.{k}": v.detach().to("cpu", torch.float32).contiguous() for k, v in D.state_dict().items()})
        md["D_config"] = json.dumps(D.config)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=md)
    return Path(path)


def convert(src: str | Path, dst: str | Path) -> Path:
    """Convert any supported checkpoint into editkit's safetensors format."""
    net = load_network(src)
    meta = {k: v for k, v in net.meta.items() if k != "path"}
    meta["converted_from"] = Path(src).name
    return save_network(dst, net.G, net.D, meta)


__all__ = ["Network", "check_module", "check_tensors", "convert", "load_generator", "load_network", "save_network"]
