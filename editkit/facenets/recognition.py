"""face-api's face recognition network (dlib's ResNet-34-like metric net): 150×150 → 128-D descriptor."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Affine, TFConv2d

INPUT_SIZE = 150


class ConvLayer(nn.Module):
    """conv + bias, then the per-channel affine, optionally ReLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, padding: str, relu: bool):
        super().__init__()
        self.conv = TFConv2d(cin, cout, k, stride, padding)
        self.scale = Affine(cout)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.scale(self.conv(x))
        return F.relu(y) if self.relu else y


class Residual(nn.Module):
    """Two 3×3 convs; ``down`` makes the first one stride-2 'valid' and the shortcut a 2×2 average pool."""

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = ConvLayer(cin, cout, 3, 2 if down else 1, "valid" if down else "same", relu=True)
        self.conv2 = ConvLayer(cout, cout, 3, 1, "same", relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        skip = x
        if self.down:
            skip = F.avg_pool2d(x, 2, 2)
            dh, dw = skip.shape[-2] - y.shape[-2], skip.shape[-1] - y.shape[-1]
            if dh or dw:  # main path one smaller: zero row at the bottom, zero column at the right
                y = F.pad(y, (0, dw, 0, dh))
            dc = y.shape[1] - skip.shape[1]
            if dc:  # fewer shortcut channels: zero channels appended after
                skip = F.pad(skip, (0, 0, 0, 0, 0, dc))
        return F.relu(y + skip)


PLAN = [("conv32_1", 32, 32, False), ("conv32_2", 32, 32, False), ("conv32_3", 32, 32, False),
        ("conv64_down", 32, 64, True), ("conv64_1", 64, 64, False), ("conv64_2", 64, 64, False),
        ("conv64_3", 64, 64, False), ("conv128_down", 64, 128, True), ("conv128_1", 128, 128, False),
        ("conv128_2", 128, 128, False), ("conv256_down", 128, 256, True), ("conv256_1", 256, 256, False),
        ("conv256_2", 256, 256, False), ("conv256_down_out", 256, 256, True)]


class FaceRecognitionNet(nn.Module):
    """Input: face-api-normalised [N,3,150,150]; output: the raw (not normalised) descriptor [N,128]."""

    input_size = INPUT_SIZE

    def __init__(self):
        super().__init__()
        self.conv32_down = ConvLayer(3, 32, 7, 2, "valid", relu=True)
        for name, cin, cout, down in PLAN:
            self.add_module(name, Residual(cin, cout, down))
        self.fc = nn.Linear(256, 128, bias=False)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named stage outputs (NCHW), for sensors: ``conv32_down``, ``maxpool`` and every block."""
        out = {}
        y = self.conv32_down(x)
        out["conv32_down"] = y
        y = F.max_pool2d(y, 3, 2)
        out["maxpool"] = y
        for name, *_ in PLAN:
            y = getattr(self, name)(y)
            out[name] = y
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)["conv256_down_out"].mean(dim=(2, 3)))
