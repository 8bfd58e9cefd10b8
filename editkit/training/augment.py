"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for GAN training on small sets.

The same random transform family is applied to real and generated images before the
discriminator; every op is differentiable with respect to the image, so the generator is
trained through it. Randomness comes from an explicit ``torch.Generator`` (drawn on the CPU),
which keeps training exactly reproducible and identical across DDP ranks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UsageError

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str | None) -> tuple[str, ...]:
    """'translation,cutout' -> ('translation', 'cutout'); '' or 'none' -> ()."""
    if not policy or policy.strip().lower() == "none":
        return ()
    ops = tuple(p.strip().lower() for p in policy.split(",") if p.strip())
    bad = [p for p in ops if p not in POLICIES]
    if bad:
        raise UsageError(f"unknown augmentation {bad[0]!r}; choose from {', '.join(POLICIES)} or 'none'")
    return ops


Part = tuple[int, int] | None  # (offset, global batch): draw for the whole DDP batch, keep this rank's rows


def _rows(t: torch.Tensor, n: int, part: Part, device: torch.device) -> torch.Tensor:
    off = part[0] if part is not None else 0
    return t[off: off + n].to(device)


def _rand(gen: torch.Generator, n: int, part: Part, device: torch.device) -> torch.Tensor:
    total = part[1] if part is not None else n
    return _rows(torch.rand(total, 1, 1, 1, generator=gen), n, part, device)


def _randint(gen: torch.Generator, lo: int, hi: int, n: int, part: Part, device: torch.device) -> torch.Tensor:
    total = part[1] if part is not None else n
    return _rows(torch.randint(lo, hi, (total, 1, 1), generator=gen), n, part, device)


def color(x: torch.Tensor, gen: torch.Generator, part: Part = None) -> torch.Tensor:
    """Random brightness (±0.5), saturation (×0..2) and contrast (×0.5..1.5) per image."""
    n = x.shape[0]
    x = x + (_rand(gen, n, part, x.device).to(x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(gen, n, part, x.device).to(x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(gen, n, part, x.device).to(x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, gen: torch.Generator, part: Part = None, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y, filling with zeros."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = _randint(gen, -sy, sy + 1, n, part, x.device)
    tx = _randint(gen, -sx, sx + 1, n, part, x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy[None] + ty + 1, 0, h + 1)
    gx = torch.clamp(gx[None] + tx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # the zero border is what out-of-range pixels read
    flat = (gy * (w + 2) + gx).reshape(n, 1, h * w).expand(-1, x.shape[1], -1)
    return padded.reshape(n, x.shape[1], -1).gather(2, flat).reshape_as(x)


def cutout(x: torch.Tensor, gen: torch.Generator, part: Part = None, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` × the image size at a random position in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = _randint(gen, 0, h + (1 - ch % 2), n, part, x.device)
    ox = _randint(gen, 0, w + (1 - cw % 2), n, part, x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    y0, x0 = oy - ch // 2, ox - cw // 2
    inside = (gy[None] >= y0) & (gy[None] < y0 + ch) & (gx[None] >= x0) & (gx[None] < x0 + cw)
    return x * (~inside).to(x.dtype)[:, None]


_OPS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...] | str, gen: torch.Generator,
                 part: Part = None) -> torch.Tensor:
    """Apply the ops of ``policy`` in order (color, translation, cutout are the usual choice).

    ``part=(offset, total)``: ``x`` holds rows offset..offset+N of a global batch of ``total``;
    random parameters are drawn for the whole batch so every rank sees the same transform for a row.
    """
    ops = parse_policy(policy) if isinstance(policy, str) else policy
    for op in ops:
        x = _OPS[op](x, gen, part)
    return x.contiguous()
