"""Frozen feature trunks from the pretrained face networks (:mod:`editkit.facenets`) for the
projected discriminator: images in [-1, 1] -> four feature maps, shallow to deep."""
from __future__ import annotations

import torch
from torch import nn

#: The stages each network contributes (four scales, as in Projected GAN).
STAGES = {
    "recognition": ("conv32_3", "conv64_3", "conv128_2", "conv256_2"),
    "age_gender": ("entry_reduction_block_0", "entry_reduction_block_1", "middle_main_block_1",
                   "exit_reduction_block"),
    "expression": ("dense0", "dense1", "dense2", "dense3"),
    "landmarks68": ("dense0", "dense1", "dense2", "dense3"),
}


class FaceTrunk(nn.Module):
    """face-api normalisation ((rgb - mean) / 255) then the named stages of a frozen face network."""

    def __init__(self, name: str):
        super().__init__()
        from .. import facenets

        self.name, self.stages = name, STAGES[name]
        self.net = facenets.load(name)  # eval mode, frozen parameters; gradients flow to the input
        self.register_buffer("mean", torch.tensor(facenets.MEAN_RGB)[None, :, None, None])
        with torch.no_grad():
            probe = self.net.features(torch.zeros(1, 3, 112 if name != "recognition" else 150,
                                                  112 if name != "recognition" else 150))
        self.channels = [int(probe[s].shape[1]) for s in self.stages]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = ((images + 1) * 127.5 - self.mean) / 255.0
        feats = self.net.features(x)
        return [feats[s] for s in self.stages]


def face_trunk(name: str, size: int) -> tuple[FaceTrunk, list[int]]:
    """(trunk, spatial size of its maps for ``size``-pixel input); the size must suit the network."""
    from ..errors import UsageError

    if name not in STAGES:
        raise UsageError(f"no face-network trunk {name!r} (choose from {', '.join(STAGES)})")
    trunk = FaceTrunk(name)
    try:
        with torch.no_grad():
            maps = trunk(torch.zeros(1, 3, size, size))
    except RuntimeError as exc:
        raise UsageError(f"--projected-size {size} is too small for the {name} network ({exc})") from None
    return trunk, [int(m.shape[-1]) for m in maps]
