"""Reconstruction quality: PSNR, SSIM, identity distance / similarity and (when VGG16 weights are
available) LPIPS, per image and averaged.

All functions take ``[N, 3, H, W]`` tensors in [-1, 1] and return per-image values ``[N]``;
PSNR and SSIM are computed on the [0, 1] scale (peak 1), SSIM with the standard 11x11
Gaussian window (sigma 1.5, K1 0.01, K2 0.03) per channel, averaged over channels and pixels.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F


def _to01(x: torch.Tensor) -> torch.Tensor:
    return ((x.float() + 1) / 2).clamp(0, 1)


@torch.no_grad()
def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (identical images give +inf)."""
    mse = (_to01(pred) - _to01(target)).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-ax.pow(2) / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


@torch.no_grad()
def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity per image (valid-region Gaussian filtering; window shrinks for tiny images)."""
    x, y = _to01(pred), _to01(target)
    size = min(window, x.shape[-1], x.shape[-2])
    if size % 2 == 0:
        size -= 1
    sig = sigma * size / window
    c = x.shape[1]
    w = _gaussian_window(size, sig).to(x).expand(c, 1, size, size)
    mu_x, mu_y = F.conv2d(x, w, groups=c), F.conv2d(y, w, groups=c)
    sxx = F.conv2d(x * x, w, groups=c) - mu_x ** 2
    syy = F.conv2d(y * y, w, groups=c) - mu_y ** 2
    sxy = F.conv2d(x * y, w, groups=c) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    m = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return m.flatten(1).mean(1)


@torch.no_grad()
def identity(pred: torch.Tensor, target: torch.Tensor, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """``(distance, similarity)`` per image between the face-recognition descriptors of ``pred`` and
    ``target`` (``editkit.facenets``: euclidean, < 0.6 = same person by face-api's convention; cosine)."""
    from editkit import facenets

    def desc(x):
        return torch.cat([facenets.analyze_tensor(c.float(), networks=("recognition",)).descriptor
                          for c in x.split(batch_size)])

    a, b = desc(pred), desc(target)
    return facenets.identity_distance(a, b), facenets.identity_similarity(a, b)


class QualityMeter:
    """Computes PSNR, SSIM, LPIPS (if a VGG16 file is found) and identity distance / similarity
    (``editkit.facenets`` recognition network) for batches of reconstructions."""

    def __init__(self, vgg16: str | Path | None = None, lpips_model=None, identity: bool = True):
        from .losses import LPIPSDistance, find_vgg16

        self.lpips = lpips_model
        self.identity = identity
        if self.lpips is None:
            path = find_vgg16(vgg16)
            self.lpips = LPIPSDistance(path) if path is not None else None

    @torch.no_grad()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> dict:
        out = {"psnr": psnr(pred, target).tolist(), "ssim": ssim(pred, target).tolist()}
        if self.lpips is not None:
            self.lpips.to(pred.device)
            out["lpips"] = self.lpips(pred.float(), target.float()).tolist()
        else:
            out["lpips"] = None
        if self.identity:
            dist, sim = identity(pred, target)
            out["identity_distance"], out["identity_similarity"] = dist.tolist(), sim.tolist()
        return summarize(out)


def summarize(per_image: dict) -> dict:
    """Add ``<name>_mean`` for every per-image list (None entries stay None)."""
    out = dict(per_image)
    for k, v in per_image.items():
        if isinstance(v, list) and v:
            vals = [x for x in v if x is not None and math.isfinite(x)]
            out[f"{k}_mean"] = sum(vals) / len(vals) if vals else (math.inf if k == "psnr" else None)
        elif v is None:
            out[f"{k}_mean"] = None
    return out
