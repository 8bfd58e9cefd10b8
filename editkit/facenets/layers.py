"""TensorFlow-style building blocks for the face-api ports: 'same' padding (odd pixel after),
separable convolutions with one bias after the pointwise conv, and dlib's per-channel affine."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def tf_same_pad(x: torch.Tensor, k: int, s: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``x`` [N,C,H,W] as TensorFlow's 'same' does: total ``max((ceil(n/s)-1)*s+k-n, 0)``,
    the odd pixel after (bottom/right), unlike PyTorch's symmetric padding."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):  # F.pad order: W then H
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    if not any(pads):
        return x
    return F.pad(x, pads, value=value)


class TFConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's 'same' or 'valid' padding."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: str = "same",
                 groups: int = 1, bias: bool = True):
        super().__init__(cin, cout, k, stride=stride, padding=0, groups=groups, bias=bias)
        self.tf_padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_padding == "same":
            x = tf_same_pad(x, self.kernel_size[0], self.stride[0])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


class SepConv(nn.Module):
    """Depthwise 3×3 (channel multiplier 1, no bias) then pointwise 1×1 with the block's only bias."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.depthwise = TFConv2d(cin, cin, 3, stride, "same", groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class Affine(nn.Module):
    """Per-channel ``x * weight + bias`` (dlib's folded batch norm)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def max_pool_same(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """Max-pool with TensorFlow 'same' padding (pads with −∞)."""
    return F.max_pool2d(tf_same_pad(x, k, s, value=float("-inf")), k, s)
