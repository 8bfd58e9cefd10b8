"""LightEncoder: a small residual CNN with e4e's W+ head design, for small generators.

The image is reduced by strided residual blocks down to 4x4. As in e4e, one base code comes from
the deepest features and every other layer of W+ adds a delta predicted from the pyramid level
that matches it: coarse layers (0-2) from the 4x4 level, middle layers (3-6) from the next finer
level, fine layers (7+) from the one after. The final layer of every head starts at zero, so an
untrained encoder returns the generator's average code (added by :class:`LatentEncoder`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

COARSE_END, MIDDLE_END = 3, 7  # e4e's split of W+ layers into coarse / middle / fine groups


class ResidualDown(nn.Module):
    """Stride-2 residual block: conv3x3(s2)-LReLU-conv3x3-LReLU plus an avg-pool + 1x1 shortcut."""

    def __init__(self, in_c: int, out_c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, out_c, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(out_c, out_c, 3, padding=1)
        self.skip = nn.Conv2d(in_c, out_c, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), 0.2)
        y = F.leaky_relu(self.conv2(y), 0.2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


class CodeHead(nn.Module):
    """Pool a feature map to 2x2, then an MLP to ``count`` codes of size ``w_dim`` (last layer zero-initialised)."""

    def __init__(self, channels: int, count: int, w_dim: int, hidden: int):
        super().__init__()
        self.count, self.w_dim = count, w_dim
        self.fc1 = nn.Linear(channels * 4, hidden)
        self.fc2 = nn.Linear(hidden, count * w_dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.adaptive_avg_pool2d(x, 2).flatten(1)
        return self.fc2(F.leaky_relu(self.fc1(h), 0.2)).view(-1, self.count, self.w_dim)


class LightEncoder(nn.Module):
    """Images ``[N, 3, input_size, input_size]`` in [-1, 1] -> raw W+ offsets ``[N, num_ws, w_dim]``.

    Output row 0 is the base code; rows 1.. are base + per-layer delta (e4e's scheme).
    """

    def __init__(self, num_ws: int, w_dim: int, input_size: int = 64, width: int = 32,
                 max_channels: int = 128, hidden: int = 256):
        super().__init__()
        if input_size < 4 or input_size & (input_size - 1):
            raise ValueError(f"input_size must be a power of two >= 4, got {input_size}")
        self.config = dict(num_ws=int(num_ws), w_dim=int(w_dim), input_size=int(input_size), width=int(width),
                           max_channels=int(max_channels), hidden=int(hidden))
        self.num_ws, self.w_dim, self.input_size = int(num_ws), int(w_dim), int(input_size)
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        chans = [width]
        blocks = []
        for _ in range(int(math.log2(input_size // 4))):
            out_c = min(chans[-1] * 2, max_channels)
            blocks.append(ResidualDown(chans[-1], out_c))
            chans.append(out_c)
        self.blocks = nn.ModuleList(blocks)
        # Pyramid levels (deepest first) that feed the coarse / middle / fine groups.
        levels = [len(chans) - 1, max(len(chans) - 2, 0), max(len(chans) - 3, 0)]
        groups = [range(1, min(COARSE_END, num_ws)), range(COARSE_END, min(MIDDLE_END, num_ws)),
                  range(MIDDLE_END, num_ws)]
        self.group_levels = [lv for lv, g in zip(levels, groups) if len(g)]
        self.group_sizes = [len(g) for g in groups if len(g)]
        self.base = CodeHead(chans[-1], 1, w_dim, hidden)
        self.deltas = nn.ModuleList(CodeHead(chans[lv], n, w_dim, hidden)
                                    for lv, n in zip(self.group_levels, self.group_sizes))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of every pyramid level, finest first (also used as a fallback perceptual space)."""
        feats = [F.leaky_relu(self.stem(x), 0.2)]
        for block in self.blocks:
            feats.append(block(feats[-1]))
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.features(x)
        base = self.base(feats[-1])
        if not self.deltas:
            return base.expand(-1, self.num_ws, -1)
        deltas = torch.cat([head(feats[lv]) for head, lv in zip(self.deltas, self.group_levels)], dim=1)
        return base + F.pad(deltas, (0, 0, 1, 0))
