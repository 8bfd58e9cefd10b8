"""Readers for each checkpoint format, turning files into editkit-layout state dicts + configs."""
from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import BadInputError, CheckpointError, UnsafeCheckpointError
from .safe_pickle import PersistentObject, init_kwargs, module_state_dict, safe_load_pickle

TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
EXPECTED = "expected an NVIDIA network pickle (.pkl), a rosinality/e4e checkpoint (.pt) or an editkit .safetensors file"


@dataclass
class RawNetwork:
    """A checkpoint's content before any module is built: state dicts in editkit (NVIDIA) naming."""

    format: str
    g_state: dict[str, torch.Tensor]
    g_kwargs: dict[str, Any]
    d_state: dict[str, torch.Tensor] | None = None
    d_kwargs: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    w_avg_known: bool = True


def sniff(path: Path) -> str:
    """Identify a file's format from its first bytes: 'safetensors', 'torch-zip', 'pickle' or 'unknown'."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise BadInputError("empty file (" + EXPECTED + ")", path)
    if head[:4] == b"PK\x03\x04":
        return "torch-zip"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return "safetensors"
    if head[:1] in (b"\x80", b"c", b"(", b"}", b"]"):  # protocol 2+ header, or protocol 0/1 opcodes
        return "pickle"
    return "unknown"


def read_nvidia_pickle(path: Path) -> RawNetwork:
    """NVIDIA stylegan2-ada-pytorch network pickle (``G``, ``D``, ``G_ema``), read without running code."""
    try:
        with open(path, "rb") as f:
            data = safe_load_pickle(f)
    except (UnsafeCheckpointError, CheckpointError) as exc:
        raise type(exc)(str(exc), path) from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, OverflowError, MemoryError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"truncated or corrupt pickle ({type(exc).__name__}: {str(exc)[:120]})", path) from None
    if data == TORCH_LEGACY_MAGIC:
        return read_torch_checkpoint(path)
    if not isinstance(data, dict) or not isinstance(data.get("G_ema", data.get("G")), PersistentObject):
        raise CheckpointError("pickle holds no StyleGAN2 network (no 'G_ema'/'G'); " + EXPECTED, path)
    g = data.get("G_ema", data.get("G"))
    kw = init_kwargs(g)
    if kw.get("c_dim", 0):
        raise CheckpointError(f"conditional generators (c_dim={kw['c_dim']}) are not supported", path)
    g_state = module_state_dict(g)
    d_state = d_kwargs = None
    if isinstance(data.get("D"), PersistentObject):
        dk = init_kwargs(data["D"])
        if not dk.get("c_dim", 0):
            d_state, d_kwargs = module_state_dict(data["D"]), _nvidia_d_kwargs(dk)
    meta = {"source_format": "nvidia-pickle", "class_name": g.class_name, "init_kwargs": kw,
            "training_set_kwargs": _jsonable(data.get("training_set_kwargs"))}
    return RawNetwork("nvidia-pickle", g_state, _nvidia_g_kwargs(kw, g_state), d_state, d_kwargs, meta)


def _nvidia_g_kwargs(kw: dict, state: dict[str, torch.Tensor]) -> dict[str, Any]:
    syn = kw.get("synthesis_kwargs") or {}
    mapk = kw.get("mapping_kwargs") or {}
    channels = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) == 4 and parts[0] == "synthesis" and parts[2] == "conv1" and parts[3] == "weight":
            channels[int(parts[1][1:])] = int(value.shape[0])
    n_fc = sum(1 for k in state if k.startswith("mapping.fc") and k.endswith(".weight"))
    return dict(z_dim=int(state["mapping.fc0.weight"].shape[1]), w_dim=int(state["mapping.w_avg"].shape[0]),
                resolution=max(channels), channels=channels, mapping_layers=n_fc,
                architecture=syn.get("architecture", "skip"), conv_clamp=syn.get("conv_clamp"),
                num_fp16_res=int(syn.get("num_fp16_res", 0)), img_channels=int(kw.get("img_channels", 3)),
                mapping_lr_mul=float(mapk.get("lr_multiplier", 0.01)), w_avg_beta=float(mapk.get("w_avg_beta", 0.995)))


def _nvidia_d_kwargs(kw: dict) -> dict[str, Any]:
    epi = kw.get("epilogue_kwargs") or {}
    return dict(resolution=int(kw["img_resolution"]), channel_base=int(kw.get("channel_base", 32768)),
                channel_max=int(kw.get("channel_max", 512)), architecture=kw.get("architecture", "resnet"),
                conv_clamp=kw.get("conv_clamp"), mbstd_group_size=int(epi.get("mbstd_group_size", 4)),
                mbstd_num_channels=int(epi.get("mbstd_num_channels", 1)), img_channels=int(kw.get("img_channels", 3)))


def read_torch_checkpoint(path: Path) -> RawNetwork:
    """rosinality ``.pt`` ({'g_ema', 'latent_avg'} or a training checkpoint) or e4e ``.pt`` (decoder.*)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(f"refused by the safe loader: {str(exc).splitlines()[0][:200]}", path) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"truncated or corrupt torch checkpoint ({str(exc).splitlines()[0][:150]})", path) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError("torch file holds no checkpoint dict; " + EXPECTED, path)
    if "g_ema" in ckpt:
        sd, fmt, latent_avg = ckpt["g_ema"], "rosinality", ckpt.get("latent_avg")
    elif isinstance(ckpt.get("state_dict"), dict) and any(k.startswith("decoder.") for k in ckpt["state_dict"]):
        sd = {k[len("decoder."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("decoder.")}
        fmt, latent_avg = "e4e", ckpt.get("latent_avg")
    elif "g" in ckpt and isinstance(ckpt["g"], dict):
        sd, fmt, latent_avg = ckpt["g"], "rosinality", ckpt.get("latent_avg")
    else:
        raise CheckpointError(f"torch checkpoint has none of 'g_ema', 'g' or e4e 'state_dict' (keys: "
                              f"{sorted(ckpt)[:6]}); " + EXPECTED, path)
    try:
        g_state, g_kwargs = rosinality_to_editkit(sd)
    except KeyError as exc:
        raise CheckpointError(f"incomplete {fmt} generator: missing {exc}", path) from None
    known = latent_avg is not None
    if known:
        la = torch.as_tensor(latent_avg, dtype=torch.float32)
        g_state["mapping.w_avg"] = la.reshape(-1, la.shape[-1])[0].clone()
    meta = {"source_format": fmt}
    if fmt == "e4e":
        meta["e4e_latent_avg_rows"] = int(torch.as_tensor(latent_avg).reshape(-1, g_kwargs["w_dim"]).shape[0]) if known else 0
        opts = ckpt.get("opts")
        if isinstance(opts, dict):
            meta["e4e_opts"] = _jsonable({k: v for k, v in opts.items() if k in ("encoder_type", "stylegan_size",
                                                                                   "start_from_latent_avg")})
    if isinstance(ckpt.get("args"), dict):
        meta["train_args"] = _jsonable(ckpt["args"])
    if "d" in ckpt:
        meta["discriminator"] = "present in the file but not converted (rosinality layout)"
    return RawNetwork(fmt, g_state, g_kwargs, meta=meta, w_avg_known=known)


def rosinality_to_editkit(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Rename a rosinality/e4e generator state dict into editkit (NVIDIA) names; infer its architecture."""
    out: dict[str, torch.Tensor] = {}
    n_mlp = sum(1 for k in sd if k.startswith("style.") and k.endswith(".weight"))
    for i in range(n_mlp):
        out[f"mapping.fc{i}.weight"] = sd[f"style.{i + 1}.weight"]
        out[f"mapping.fc{i}.bias"] = sd[f"style.{i + 1}.bias"]
    w_dim = int(sd["style.1.weight"].shape[0])
    out["mapping.w_avg"] = torch.zeros(w_dim)
    out["synthesis.b4.const"] = sd["input.input"][0]
    n_rgbs = sum(1 for k in sd if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
    resolution = 2 ** (n_rgbs + 2)

    def styled(src: str, dst: str, noise_idx: int) -> None:
        out[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
        out[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]
        out[f"{dst}.noise_strength"] = sd[f"{src}.noise.weight"].reshape([])
        out[f"{dst}.bias"] = sd[f"{src}.activate.bias"]
        out[f"{dst}.noise_const"] = sd[f"noises.noise_{noise_idx}"].reshape(sd[f"noises.noise_{noise_idx}"].shape[-2:])

    def torgb(src: str, dst: str) -> None:
        out[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
        out[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]
        out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(-1)

    styled("conv1", "synthesis.b4.conv1", 0)
    torgb("to_rgb1", "synthesis.b4.torgb")
    channels = {4: int(sd["conv1.conv.weight"].shape[1])}
    for i in range(n_rgbs):
        res = 2 ** (i + 3)
        styled(f"convs.{2 * i}", f"synthesis.b{res}.conv0", 2 * (i + 3) - 5)
        styled(f"convs.{2 * i + 1}", f"synthesis.b{res}.conv1", 2 * (i + 3) - 4)
        torgb(f"to_rgbs.{i}", f"synthesis.b{res}.torgb")
        channels[res] = int(sd[f"convs.{2 * i + 1}.conv.weight"].shape[1])
    kwargs = dict(z_dim=int(sd["style.1.weight"].shape[1]), w_dim=w_dim, resolution=resolution, channels=channels,
                  mapping_layers=n_mlp, architecture="skip", conv_clamp=None, num_fp16_res=0)
    return out, kwargs


def read_safetensors(path: Path) -> RawNetwork:
    """editkit's own format: tensors ``G.*`` / ``D.*`` and JSON configs in the safetensors metadata."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"truncated or corrupt safetensors file ({str(exc)[:150]})", path) from None
    if md.get("format") != "editkit.network":
        raise CheckpointError(f"safetensors file is not an editkit network (format={md.get('format')!r})", path)
    g_kwargs = json.loads(md["G_config"])
    d_kwargs = json.loads(md["D_config"]) if md.get("D_config") else None
    g_state = {k[2:]: v for k, v in tensors.items() if k.startswith("G.")}
    d_state = {k[2:]: v for k, v in tensors.items() if k.startswith("D.")} or None
    return RawNetwork("editkit", g_state, g_kwargs, d_state, d_kwargs, json.loads(md.get("meta", "{}")))


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        return repr(value)


def read_raw(path: str | Path) -> RawNetwork:
    """Read any supported checkpoint, dispatching on the file's content (not its name)."""
    p = Path(path)
    if p.is_dir():
        manifest = p / "bundle.json"
        if not manifest.exists():
            raise BadInputError("is a folder without bundle.json; " + EXPECTED, p)
        gen = json.loads(manifest.read_text()).get("generator")
        if not gen:
            raise BadInputError("bundle.json names no generator", manifest)
        return read_raw(p / gen)
    if not p.exists():
        raise BadInputError("file not found", p)
    kind = sniff(p)
    if kind == "safetensors":
        return read_safetensors(p)
    if kind == "torch-zip":
        return read_torch_checkpoint(p)
    if kind == "pickle":
        return read_nvidia_pickle(p)
    raise CheckpointError("unrecognised file content; " + EXPECTED, p)


__all__ = ["RawNetwork", "read_raw", "rosinality_to_editkit", "sniff"]
