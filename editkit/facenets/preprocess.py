"""face-api's input preprocessing, exactly: centred zero pad-to-square, legacy TF1 bilinear resize
(``alignCorners=false, halfPixelCenters=false``, no antialias) and ``(rgb − mean) / 255``.

The tensor functions are differentiable with respect to the pixels (the sampling positions and
weights are constants), so the same code serves the uint8 path and the losses.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MEAN_RGB = (122.782, 117.001, 104.298)


def pad_amounts(h: int, w: int) -> tuple[int, int]:
    """(before, after) zeros on the shorter axis: ``after = round_half_up(diff/2)`` (JS Math.round)."""
    diff = abs(h - w)
    after = (diff + 1) // 2
    return diff - after, after


def pad_to_square(x: torch.Tensor) -> torch.Tensor:
    """Centre ``x`` [N,C,H,W] in a zero-filled square (width padded if taller, else height)."""
    h, w = x.shape[-2:]
    if h == w:
        return x
    before, after = pad_amounts(h, w)
    return F.pad(x, (before, after, 0, 0) if h > w else (0, 0, before, after))


def _axis(n_in: int, n_out: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    src = torch.arange(n_out, dtype=torch.float64, device=device) * (n_in / n_out)
    i0 = torch.floor(src)
    i1 = torch.clamp(torch.ceil(src), max=n_in - 1)
    return i0.long(), i1.long(), src - i0


def resize_bilinear_legacy(x: torch.Tensor, size: int) -> torch.Tensor:
    """``tf.image.resizeBilinear(x, [size, size])`` of tfjs (source = dst · in/out, no half-pixel
    offset, no antialias), computed in float64 like the tfjs CPU backend; returns ``x.dtype``."""
    h, w = x.shape[-2:]
    if h == size and w == size:
        return x
    r0, r1, fy = _axis(h, size, x.device)
    c0, c1, fx = _axis(w, size, x.device)
    xd = x.double()
    top_rows, bottom_rows = xd[..., r0, :], xd[..., r1, :]
    tl, tr = top_rows[..., c0], top_rows[..., c1]
    bl, br = bottom_rows[..., c0], bottom_rows[..., c1]
    top = tl + (tr - tl) * fx
    bottom = bl + (br - bl) * fx
    out = top + (bottom - top) * fy[:, None]
    return out.to(x.dtype if x.is_floating_point() else torch.float32)


def normalize(rgb: torch.Tensor) -> torch.Tensor:
    """float32 ``(rgb − [122.782, 117.001, 104.298]) / 255`` for rgb [N,3,H,W] in 0..255."""
    mean = torch.tensor(MEAN_RGB, dtype=torch.float32, device=rgb.device)[:, None, None]
    return (rgb.float() - mean) / 255.0


def to_input(rgb255: torch.Tensor, size: int) -> torch.Tensor:
    """Network input [N,3,size,size] from a float face crop [N,3,H,W] with values 0..255."""
    return normalize(resize_bilinear_legacy(pad_to_square(rgb255), size))


def preprocess_rgb(image: np.ndarray, size: int) -> torch.Tensor:
    """The padded and resized crop [1,3,size,size], float32 0..255 (face-api's ``toBatchTensor``)."""
    x = torch.from_numpy(_check_uint8(image)).permute(2, 0, 1)[None]
    return resize_bilinear_legacy(pad_to_square(x.double()), size).float()


def preprocess(image: np.ndarray, size: int) -> torch.Tensor:
    """face-api's network input [1,3,size,size] (float32, NCHW) for one H×W×3 uint8 RGB face crop."""
    return normalize(preprocess_rgb(image, size))


def _check_uint8(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or min(a.shape[:2]) < 1:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got {a.dtype} array of shape {a.shape}")
    if not (a.flags.writeable and a.flags.c_contiguous):
        a = a.copy()
    return a
