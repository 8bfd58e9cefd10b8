"""face-api's dense-block trunk, shared (with different weights) by the expression network
(112×112 → 7 logits) and the 68-point landmark network (112×112 → 136 raw coordinates)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import SepConv, TFConv2d

INPUT_SIZE = 112
EXPRESSIONS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")


class DenseBlock(nn.Module):
    """Four convs, the first stride 2; each later conv sees the ReLU of the sum of all before it."""

    def __init__(self, cin: int, cout: int, first: bool):
        super().__init__()
        self.conv0 = TFConv2d(cin, cout, 3, 2, "same") if first else SepConv(cin, cout, stride=2)
        self.conv1 = SepConv(cout, cout)
        self.conv2 = SepConv(cout, cout)
        self.conv3 = SepConv(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o1 = F.relu(self.conv0(x))
        o2 = self.conv1(o1)
        o3 = self.conv2(F.relu(o1 + o2))
        o4 = self.conv3(F.relu(o1 + (o2 + o3)))
        return F.relu(o1 + (o2 + (o3 + o4)))


class DenseNet(nn.Module):
    """Four dense blocks (112 → 56 → 28 → 14 → 7), global average pool, linear head of ``outputs``."""

    input_size = INPUT_SIZE

    def __init__(self, outputs: int):
        super().__init__()
        chans = [3, 32, 64, 128, 256]
        for i in range(4):
            self.add_module(f"dense{i}", DenseBlock(chans[i], chans[i + 1], first=i == 0))
        self.fc = nn.Linear(256, outputs)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named block outputs (NCHW): ``dense0`` … ``dense3``."""
        out = {}
        for i in range(4):
            x = getattr(self, f"dense{i}")(x)
            out[f"dense{i}"] = x
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)["dense3"].mean(dim=(2, 3)))


def expression_net() -> DenseNet:
    """Logits [N,7] in the order of :data:`EXPRESSIONS`."""
    return DenseNet(len(EXPRESSIONS))


def landmarks68_net() -> DenseNet:
    """Raw fc output [N,136]: x0, y0, x1, y1, … in units of the padded 112×112 square."""
    return DenseNet(136)
