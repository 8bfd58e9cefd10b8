"""Encoder4Editing (e4e): IR-SE-50 backbone, FPN taps and a base code plus per-layer deltas.

Parameter names and the forward pass follow the official ``encoder4editing`` code
(``models/encoders/psp_encoders.py`` and ``helpers.py``) so that the ``encoder.*`` weights of
``e4e_ffhq_encode.pt`` load unchanged. The module returns the *raw* codes; the official model
adds ``latent_avg`` afterwards, which :class:`inversion.encoders.EncoderWithAverage` does.
"""
from __future__ import annotations

import math
from enum import IntEnum

import torch
import torch.nn.functional as F
from torch import nn

# IR-SE-50: stages of (in_channels, depth, units); the first unit of each stage has stride 2.
IR50_STAGES = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))
# Body unit indices whose outputs feed the pyramid (c1: 128 ch, c2: 256 ch, c3: 512 ch).
TAP_C1, TAP_C2, TAP_C3 = 6, 20, 23


class ProgressiveStage(IntEnum):
    """How many per-layer deltas are active (e4e's progressive training); ``Inference`` = all."""

    WTraining = 0
    Inference = 18


class SEModule(nn.Module):
    """Squeeze-and-excitation gate with bias-free 1x1 convolutions."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1, padding=0, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1, padding=0, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))
        return x * s


class BottleneckIRSE(nn.Module):
    """``bottleneck_IR_SE``: BN-conv-PReLU-conv-BN-SE residual branch plus a (strided) shortcut."""

    def __init__(self, in_channel: int, depth: int, stride: int):
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channel, depth, (1, 1), stride, bias=False), nn.BatchNorm2d(depth)
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channel),
            nn.Conv2d(in_channel, depth, (3, 3), (1, 1), 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, (3, 3), stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SEModule(depth, 16),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class EqualLinear(nn.Module):
    """rosinality's equalised linear layer (no activation): ``x @ (W * scale)^T + b * lr_mul``."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)


class GradualStyleBlock(nn.Module):
    """``map2style``: stride-2 3x3 convs with LeakyReLU down to 1x1, then an EqualLinear."""

    def __init__(self, in_c: int, out_c: int, spatial: int):
        super().__init__()
        self.out_c = out_c
        layers: list[nn.Module] = [nn.Conv2d(in_c, out_c, 3, stride=2, padding=1), nn.LeakyReLU()]
        for _ in range(int(math.log2(spatial)) - 1):
            layers += [nn.Conv2d(out_c, out_c, 3, stride=2, padding=1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).view(-1, self.out_c))


def upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """FPN merge: bilinear (align_corners=True) upsampling of ``x`` to ``y``'s size, plus ``y``."""
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


class Encoder4Editing(nn.Module):
    """e4e encoder: 256x256 images in [-1, 1] -> raw W+ codes ``[N, num_ws, 512]``.

    ``stylegan_size`` sets the number of style heads (``2*log2(size) - 2``: 18 for 1024 px).
    ``progressive_stage`` limits the active deltas (used for e4e-style progressive training).
    """

    coarse_ind = 3
    middle_ind = 7

    def __init__(self, stylegan_size: int = 1024, num_layers: int = 50):
        super().__init__()
        if num_layers != 50:
            raise ValueError("only the IR-SE-50 backbone of e4e is supported")
        self.stylegan_size = int(stylegan_size)
        self.style_count = 2 * int(math.log2(stylegan_size)) - 2
        self.w_dim = 512
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, (3, 3), 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        units = []
        for in_c, depth, n in IR50_STAGES:
            units.append(BottleneckIRSE(in_c, depth, 2))
            units += [BottleneckIRSE(depth, depth, 1) for _ in range(n - 1)]
        self.body = nn.Sequential(*units)
        self.styles = nn.ModuleList()
        for i in range(self.style_count):
            spatial = 16 if i < self.coarse_ind else 32 if i < self.middle_ind else 64
            self.styles.append(GradualStyleBlock(512, 512, spatial))
        self.latlayer1 = nn.Conv2d(256, 512, kernel_size=1, stride=1, padding=0)
        self.latlayer2 = nn.Conv2d(128, 512, kernel_size=1, stride=1, padding=0)
        self.progressive_stage = int(ProgressiveStage.Inference)

    @property
    def num_ws(self) -> int:
        return self.style_count

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The backbone taps ``[c1, c2, c3]`` (64x64x128, 32x32x256, 16x16x512 for 256-px input)."""
        x = self.input_layer(x)
        taps = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in (TAP_C1, TAP_C2, TAP_C3):
                taps.append(x)
        return taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1, c2, c3 = self.features(x)
        w0 = self.styles[0](c3)
        w = w0.unsqueeze(1).repeat(1, self.style_count, 1)
        features, p2 = c3, None
        deltas = []
        for i in range(1, min(self.progressive_stage + 1, self.style_count)):
            if i == self.coarse_ind:
                p2 = upsample_add(c3, self.latlayer1(c2))
                features = p2
            elif i == self.middle_ind:
                features = upsample_add(p2, self.latlayer2(c1))
            deltas.append(self.styles[i](features))
        if deltas:
            pad = self.style_count - 1 - len(deltas)
            d = torch.stack(deltas, dim=1)
            d = F.pad(d, (0, 0, 1, pad))
            w = w + d
        return w
