"""Plain-PyTorch versions of StyleGAN2's low-level ops (no custom CUDA kernels).

They compute what NVIDIA's ``upfirdn2d``, ``bias_act``, ``conv2d_resample`` and
``modulated_conv2d`` compute, so official weights give the official images.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def setup_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> torch.Tensor:
    """2-D FIR filter from 1-D taps, normalised to unit sum (NVIDIA ``setup_filter``)."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = f.ger(f) if f.ndim == 1 else f
    return f / f.sum()


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1,
              padding: Sequence[int] = (0, 0, 0, 0), flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter and downsample each channel of ``x`` [N,C,H,W].

    ``padding`` is (x0, x1, y0, y1); negative values crop.
    """
    n, c, h, w = x.shape
    px0, px1, py0, py1 = padding
    f = f.to(x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if up == 1 and down == 1 and px0 == px1 >= 0 and py0 == py1 >= 0:
        # common case (blur after a transposed conv): let the convolution do the zero padding
        return F.conv2d(x, f[None, None].expand(c, 1, *f.shape), padding=(py0, px0), groups=c)
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    # one 2-D depthwise pass: on channels-last tensors this is memory bound, so it beats two 1-D passes
    x = F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, gain: float = 1.0) -> torch.Tensor:
    fw = f.shape[-1]
    p = [(fw + up - 1) // 2, (fw - up) // 2] * 2
    return upfirdn2d(x, f, up=up, padding=p, gain=gain * up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2, gain: float = 1.0) -> torch.Tensor:
    fw = f.shape[-1]
    p = [(fw - down + 1) // 2, (fw - down) // 2] * 2
    return upfirdn2d(x, f, down=down, padding=p, gain=gain)


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None, alpha: float = 0.2, inplace: bool = False) -> torch.Tensor:
    """Bias, activation ('linear' or 'lrelu'), gain and clamp along dim 1 (NVIDIA ``bias_act``).

    ``inplace`` reuses ``x``'s memory; it is ignored when autograd needs ``x``.
    """
    if act not in ("linear", "lrelu"):
        raise ValueError(f"unknown activation {act!r}")
    gain = (SQRT2 if act == "lrelu" else 1.0) if gain is None else gain
    inplace = inplace and not (torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad)))
    if not inplace:
        if b is not None:
            x = x + b.reshape([-1 if i == 1 else 1 for i in range(x.ndim)])
        if act == "lrelu":
            x = F.leaky_relu(x, alpha)
        if gain != 1:
            x = x * gain
        if clamp is not None and clamp >= 0:
            x = x.clamp(-clamp, clamp)
        return x
    if b is not None:
        x.add_(b.reshape([-1 if i == 1 else 1 for i in range(x.ndim)]))
    if act == "lrelu":
        F.leaky_relu_(x, alpha)
    if gain != 1:
        x.mul_(gain)
    if clamp is not None and clamp >= 0:
        x.clamp_(-clamp, clamp)
    return x


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1, down: int = 1,
                    padding: int = 0, groups: int = 1, flip_weight: bool = True) -> torch.Tensor:
    """2-D convolution with optional FIR up/downsampling (NVIDIA ``conv2d_resample``)."""
    out_ch, in_ch_g, kh, kw = w.shape
    fw = f.shape[-1] if f is not None else 1
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0, py1 = px0, px1
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0, py1 = px0, px1

    def conv(x, w, stride=1, pad=0, transpose=False, flip=True):
        if not flip:
            w = w.flip([2, 3])
        if transpose:
            return F.conv_transpose2d(x, w, stride=stride, padding=pad, groups=groups)
        return F.conv2d(x, w, stride=stride, padding=pad, groups=groups)

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1])
        return conv(x, w, flip=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = conv(x, w, flip=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1])
        return conv(x, w, stride=down, flip=flip_weight)
    if up > 1:
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_ch // groups, in_ch_g, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_ch_g, out_ch // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = conv(x, w, stride=up, pad=[pyt, pxt], transpose=True, flip=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up ** 2)
        if down > 1:
            x = upfirdn2d(x, f, down=down)
        return x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return conv(x, w, pad=[py0, px0], flip=flip_weight)
    x = upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2) if f is not None else F.pad(x, [px0, px1, py0, py1])
    return conv(x, w, flip=flip_weight)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None = None,
                     up: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, flip_weight: bool = True, fused: bool | None = None,
                     weight_sq: torch.Tensor | None = None, weight_lp: torch.Tensor | None = None) -> torch.Tensor:
    """StyleGAN2 modulated convolution. ``fused`` (default: batch of one) folds styles into the weights;
    otherwise activations are scaled before and after a shared-weight convolution. Both are exact.

    ``weight_sq`` (``weight.square().sum([2, 3])``) and ``weight_lp`` (``weight`` in ``x.dtype``) are
    optional precomputed copies of frozen weights (see ``SynthesisLayer``); they change no result.
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:  # pre-normalise against fp16 overflow (as NVIDIA)
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
        weight_sq = weight_lp = None
    if fused is None:  # fold styles into the weights only where weights are smaller than activations
        fused = n == 1 and weight.numel() <= x[0].numel()
    dcoefs = None
    if demodulate:  # sum_ik (W_oik s_i)^2 = s^2 . sum_k W_oik^2: a matrix product instead of a 5-D tensor
        wsq = weight_sq if weight_sq is not None else weight.square().sum(dim=[2, 3])
        dcoefs = (styles.square() @ wsq.t() + 1e-8).rsqrt()  # [N, O]
    if weight_lp is None or weight_lp.dtype != x.dtype:
        weight_lp = weight.to(x.dtype)
    if not fused:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight_lp, f=resample_filter, up=up, padding=padding, flip_weight=flip_weight)
        if demodulate:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x
    # one pass over the weights: W_oik * (s_i d_o), with the small [N, O, I] scale formed first
    scale = styles.reshape(n, 1, -1) if dcoefs is None else dcoefs.reshape(n, -1, 1) * styles.reshape(n, 1, -1)
    w = weight_lp.unsqueeze(0) * scale.to(x.dtype).reshape(n, -1, in_ch, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw)
    x = conv2d_resample(x, w, f=resample_filter, up=up, padding=padding, groups=n, flip_weight=flip_weight)
    x = x.reshape(n, -1, *x.shape[2:])
    if noise is not None:  # in place when autograd does not track x (inference)
        x = x + noise if (torch.is_grad_enabled() and x.requires_grad) else x.add_(noise)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()
