"""face-api's age and gender network (a tiny Xception): 112×112 → (age in years, gender logits)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import SepConv, TFConv2d, max_pool_same

INPUT_SIZE = 112


class ReductionBlock(nn.Module):
    """[ReLU] → sep → ReLU → sep → max-pool 3×3/2 'same', plus a 1×1/2 conv shortcut of the raw input."""

    def __init__(self, cin: int, cout: int, relu_in: bool):
        super().__init__()
        self.relu_in = relu_in
        self.separable_conv0 = SepConv(cin, cout)
        self.separable_conv1 = SepConv(cout, cout)
        self.expansion_conv = TFConv2d(cin, cout, 1, 2, "same")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(x) if self.relu_in else x
        y = self.separable_conv1(F.relu(self.separable_conv0(y)))
        return max_pool_same(y, 3, 2) + self.expansion_conv(x)


class MainBlock(nn.Module):
    """Three ReLU → sep convs with an identity shortcut."""

    def __init__(self, channels: int):
        super().__init__()
        for i in range(3):
            self.add_module(f"separable_conv{i}", SepConv(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for i in range(3):
            y = getattr(self, f"separable_conv{i}")(F.relu(y))
        return y + x


class AgeGenderNet(nn.Module):
    """Input: face-api-normalised [N,3,112,112]; output: (age [N] in years, gender logits [N,2], 0 = male)."""

    input_size = INPUT_SIZE

    def __init__(self, middle_blocks: int = 2):
        super().__init__()
        self.entry_flow = nn.ModuleDict({
            "conv_in": TFConv2d(3, 32, 3, 2, "same"),
            "reduction_block_0": ReductionBlock(32, 64, relu_in=False),
            "reduction_block_1": ReductionBlock(64, 128, relu_in=True)})
        self.middle_flow = nn.ModuleDict({f"main_block_{i}": MainBlock(128) for i in range(middle_blocks)})
        self.exit_flow = nn.ModuleDict({
            "reduction_block": ReductionBlock(128, 256, relu_in=True),
            "separable_conv": SepConv(256, 512)})
        self.fc = nn.ModuleDict({"age": nn.Linear(512, 1), "gender": nn.Linear(512, 2)})

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named stage outputs (NCHW): entry, middle and exit stages."""
        out = {}
        y = F.relu(self.entry_flow["conv_in"](x))
        out["entry_conv_in"] = y
        for i in range(2):
            y = self.entry_flow[f"reduction_block_{i}"](y)
            out[f"entry_reduction_block_{i}"] = y
        for name, block in self.middle_flow.items():
            y = block(y)
            out[f"middle_{name}"] = y
        y = self.exit_flow["reduction_block"](y)
        out["exit_reduction_block"] = y
        out["exit_separable_conv"] = F.relu(self.exit_flow["separable_conv"](y))
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.features(x)["exit_separable_conv"].mean(dim=(2, 3))
        return self.fc["age"](pooled)[:, 0], self.fc["gender"](pooled)
