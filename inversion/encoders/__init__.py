"""Image -> W+ encoders: the e4e encoder (official weights), a light encoder, and their file formats.

* :class:`Encoder4Editing` - e4e, exactly compatible with ``e4e_ffhq_encode.pt`` (``encoder.*``).
* :class:`LightEncoder` - a small CNN with the same W+ head design, for small generators.
* :class:`LatentEncoder` - either network plus the average code it is relative to and its input
  size: ``LatentEncoder(images in [-1, 1], any size) -> W+ [N, num_ws, w_dim]``.
* :func:`load_encoder` reads an official e4e ``.pt`` (``weights_only=True``) or editkit's own
  ``.safetensors`` (config in the metadata); :func:`save_encoder` writes the latter.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from editkit.atomic import atomic_path
from editkit.errors import CheckpointError

from .e4e import Encoder4Editing
from .light import LightEncoder

__all__ = ["Encoder4Editing", "LightEncoder", "LatentEncoder", "load_encoder", "save_encoder",
           "build_encoder", "E4E_INPUT_SIZE"]

log = logging.getLogger(__name__)
E4E_INPUT_SIZE = 256
FORMAT_TAG = "editkit-encoder"


class LatentEncoder(nn.Module):
    """An encoder network, the average code its outputs are added to, and its input size."""

    def __init__(self, net: nn.Module, latent_avg: torch.Tensor, input_size: int, arch: str):
        super().__init__()
        self.net = net
        self.arch = arch
        self.input_size = int(input_size)
        latent_avg = latent_avg.detach().float()
        if latent_avg.ndim == 1:
            latent_avg = latent_avg.unsqueeze(0).repeat(net.num_ws, 1)
        if tuple(latent_avg.shape) != (net.num_ws, net.w_dim):
            raise ValueError(f"latent_avg has shape {tuple(latent_avg.shape)}, expected {(net.num_ws, net.w_dim)}")
        self.register_buffer("latent_avg", latent_avg.clone())

    @property
    def num_ws(self) -> int:
        return self.net.num_ws

    @property
    def w_dim(self) -> int:
        return self.net.w_dim

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Resize ``[N, 3, H, W]`` images in [-1, 1] to the encoder's input size (area/antialiased)."""
        if images.shape[-1] != self.input_size or images.shape[-2] != self.input_size:
            images = F.interpolate(images, size=(self.input_size, self.input_size), mode="bilinear",
                                   align_corners=False, antialias=True)
        return images

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.net.features(self.prepare(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(self.prepare(images)) + self.latent_avg


def build_encoder(arch: str, num_ws: int, w_dim: int, resolution: int, latent_avg: torch.Tensor | None = None,
                  **light_kwargs) -> LatentEncoder:
    """A fresh encoder for a generator with ``num_ws`` x ``w_dim`` codes at ``resolution`` px.

    ``arch='light'`` works for any generator (input size = min(resolution, 256));
    ``arch='e4e'`` needs ``w_dim == 512`` (its heads are 512 wide) and takes 256-px input.
    """
    if latent_avg is None:
        latent_avg = torch.zeros(num_ws, w_dim)
    if arch == "light":
        net = LightEncoder(num_ws, w_dim, input_size=min(int(resolution), 256), **light_kwargs)
        return LatentEncoder(net, latent_avg, net.input_size, "light")
    if arch == "e4e":
        if w_dim != 512:
            raise ValueError(f"the e4e encoder produces 512-wide codes; this generator has w_dim={w_dim}")
        net = Encoder4Editing(stylegan_size=2 ** ((num_ws + 2) // 2))
        if net.num_ws != num_ws:
            raise ValueError(f"e4e has an even number of style heads; the generator has num_ws={num_ws}")
        return LatentEncoder(net, latent_avg, E4E_INPUT_SIZE, "e4e")
    raise ValueError(f"unknown encoder architecture {arch!r} (choose 'light' or 'e4e')")


def _encoder_config(enc: LatentEncoder) -> dict:
    if enc.arch == "light":
        return dict(enc.net.config)
    return {"stylegan_size": enc.net.stylegan_size}


def save_encoder(path: str | Path, enc: LatentEncoder, meta: dict | None = None) -> Path:
    """Write ``enc`` as safetensors; architecture and config go into the file's metadata."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in enc.state_dict().items()}
    header = {"format": FORMAT_TAG, "arch": enc.arch, "input_size": str(enc.input_size),
              "config": json.dumps(_encoder_config(enc)), "meta": json.dumps(meta or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return Path(path)


def _load_safetensors(path: Path, device: str) -> LatentEncoder:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise CheckpointError(f"not a readable safetensors file ({exc})", path=path) from exc
    if header.get("format") != FORMAT_TAG:
        raise CheckpointError("safetensors file is not an editkit encoder (metadata format tag missing)", path=path)
    config = json.loads(header["config"])
    arch = header["arch"]
    if arch == "light":
        net = LightEncoder(**config)
    elif arch == "e4e":
        net = Encoder4Editing(**config)
    else:
        raise CheckpointError(f"unknown encoder architecture {arch!r}", path=path)
    enc = LatentEncoder(net, tensors["latent_avg"], int(header["input_size"]), arch)
    _load_strict(enc, tensors, path)
    return enc.to(device).eval()


def _load_strict(module: nn.Module, state: dict, path: Path) -> None:
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise CheckpointError("encoder weights do not match: " + "; ".join(parts), path=path)
    module.load_state_dict(state, strict=True)


def e4e_stylegan_size(state: dict, opts: dict | None) -> int:
    """The generator size an e4e state dict was built for (from ``opts`` or the number of style heads)."""
    if opts and opts.get("stylegan_size"):
        return int(opts["stylegan_size"])
    heads = {int(k.split(".")[1]) for k in state if k.startswith("styles.")}
    return 2 ** ((len(heads) + 2) // 2)


def encoder_from_e4e_checkpoint(ckpt: dict, path: Path | str = "<checkpoint>") -> LatentEncoder:
    """Build the encoder of an official e4e/pSp-style checkpoint dict (``state_dict`` with ``encoder.*``)."""
    path = Path(path)
    sd = ckpt.get("state_dict", ckpt)
    if not isinstance(sd, dict):
        raise CheckpointError("checkpoint has no state_dict", path=path)
    enc_sd = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    if not enc_sd:
        raise CheckpointError("checkpoint has no 'encoder.*' weights (is this an e4e checkpoint?)", path=path)
    opts = ckpt.get("opts") if isinstance(ckpt.get("opts"), dict) else None
    if opts and opts.get("encoder_type") not in (None, "Encoder4Editing"):
        raise CheckpointError(f"encoder_type {opts.get('encoder_type')!r} is not supported (only Encoder4Editing)",
                              path=path)
    with torch.device("meta"):
        net = Encoder4Editing(stylegan_size=e4e_stylegan_size(enc_sd, opts))
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is None:
        log.warning("%s: no latent_avg in the checkpoint; codes are used as the encoder outputs them", path)
        latent_avg = torch.zeros(net.num_ws, net.w_dim)
    enc = LatentEncoder(net, torch.as_tensor(latent_avg).float().cpu(), E4E_INPUT_SIZE, "e4e")
    full = {f"net.{k}": v for k, v in enc_sd.items()}
    full["latent_avg"] = enc.latent_avg
    expected = enc.state_dict()
    missing = [k for k in expected if k not in full]
    unexpected = [k for k in full if k not in expected]
    wrong = [k for k in expected if k in full and tuple(full[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        _load_strict(enc, full, path)  # raises with the details
    enc.load_state_dict(full, strict=True, assign=True)
    return enc


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> LatentEncoder:
    """Load an encoder: official e4e ``.pt`` or editkit ``.safetensors``; returned in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("encoder file not found", path=path)
    from editkit.checkpoints.validate import check_module

    if path.suffix == ".safetensors":
        enc = _load_safetensors(path, str(device))
        check_module(enc, path, "encoder")  # finite, numeric tensors
        return enc
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors of every kind
        raise CheckpointError(f"cannot be loaded safely as a PyTorch checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})", path=path) from exc
    if not isinstance(ckpt, dict):
        raise CheckpointError("checkpoint is not a dict", path=path)
    enc = encoder_from_e4e_checkpoint(ckpt, path).float().to(device).eval()
    check_module(enc, path, "encoder")
    return enc
