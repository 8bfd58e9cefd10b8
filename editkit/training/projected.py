"""A Projected-GAN discriminator (Sauer et al. 2021) on the frozen features of a pretrained face network.

The image goes through a frozen feature network (a "trunk" giving feature maps at several scales);
the maps are mixed by fixed random projections, across channels (1x1 convolutions, CCM) and across
scales (each scale gets the upsampled projection of the next deeper one, CSM); one small
discriminator per scale, trained from scratch, turns its map into logits. Only the per-scale
heads learn. The paper's losses are the hinge loss (:func:`hinge_d_loss`, :func:`hinge_g_loss`);
no R1 penalty (its discriminators use spectral normalisation).

The trunk is not a registered sub-module, so it is neither trained nor saved with the
discriminator's state (it comes from the face networks' own weight files).
"""
from __future__ import annotations

from typing import Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class FeatureTrunk(Protocol):
    """A frozen feature network: images in [-1, 1] [N,3,H,W] -> feature maps, shallow to deep."""

    channels: Sequence[int]

    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]: ...


def _sn(module: nn.Module) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module)


class _Head(nn.Module):
    """Strided 4x4 convolutions (spectral norm, batch norm, leaky ReLU) down to 4x4, then a 4x4 conv to one logit."""

    def __init__(self, cin: int, size: int, width: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        while size > 4:
            cout = min(width * 2, max(width, c))
            layers += [_sn(nn.Conv2d(c, cout, 4, 2, 1, bias=False)), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
            c, size = cout, size // 2
        self.body = nn.Sequential(*layers)
        self.out = _sn(nn.Conv2d(c, 1, min(4, size), 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x)).flatten(1)


class ProjectedDiscriminator(nn.Module):
    """Multi-scale discriminator on fixed random projections of a frozen trunk's features.

    ``trunk(images)`` returns maps of ``channels`` at ``sizes`` (spatial, for the trunk's input);
    ``forward(images)`` returns logits [N, number of scales] (one per scale, higher = real).
    """

    def __init__(self, trunk: FeatureTrunk, sizes: Sequence[int], width: int = 64, seed: int = 0):
        super().__init__()
        object.__setattr__(self, "trunk", trunk)  # frozen and not part of state_dict / parameters
        self.channels = [int(c) for c in trunk.channels]
        self.sizes = [int(s) for s in sizes]
        if len(self.channels) != len(self.sizes):
            raise ValueError("one size per trunk feature map")
        g = torch.Generator().manual_seed(seed)
        # CCM: random 1x1 mixing per scale; CSM: random 1x1 projection of the deeper mixed map onto this scale
        for i, c in enumerate(self.channels):
            self.register_buffer(f"ccm{i}", nn.init.kaiming_uniform_(torch.empty(c, c, 1, 1), generator=g))
            if i + 1 < len(self.channels):
                w = nn.init.kaiming_uniform_(torch.empty(c, self.channels[i + 1], 1, 1), generator=g)
                self.register_buffer(f"csm{i}", w)
        self.heads = nn.ModuleList([_Head(c, s, width) for c, s in zip(self.channels, self.sizes)])
        self.config = {"kind": "projected", "channels": self.channels, "sizes": self.sizes, "width": width,
                       "seed": seed}

    def project(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        mixed = [F.conv2d(f, getattr(self, f"ccm{i}")) for i, f in enumerate(feats)]
        out = [mixed[-1]]
        for i in range(len(mixed) - 2, -1, -1):
            deeper = F.interpolate(F.conv2d(out[0], getattr(self, f"csm{i}")), size=mixed[i].shape[-2:],
                                   mode="bilinear", align_corners=False)
            out.insert(0, mixed[i] + deeper)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.trunk(images)
        return torch.cat([h(f) for h, f in zip(self.heads, self.project(feats))], dim=1)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator: mean relu(1 - D(real)) + mean relu(1 + D(fake))."""
    return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator side of the hinge loss: -mean D(G(z))."""
    return -fake_logits.float().mean()


class RandomTrunk(nn.Module):
    """A seeded random convolutional trunk (three scales); for tests of the discriminator machinery."""

    def __init__(self, channels: Sequence[int] = (16, 32, 64), seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.channels = list(channels)
        cin, layers = 3, []
        for c in self.channels:
            layers.append(nn.Conv2d(cin, c, 3, 2, 1))
            cin = c
        self.layers = nn.ModuleList(layers)
        self.requires_grad_(False).eval()

    def sizes(self, size: int) -> list[int]:
        out = []
        for _ in self.channels:
            size = (size + 1) // 2
            out.append(size)
        return out

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        out, x = [], images
        for conv in self.layers:
            x = F.leaky_relu(conv(x), 0.2)
            out.append(x)
        return out


#: Trunks a projected discriminator can use: face networks of :mod:`editkit.facenets`, or "random" (tests).
TRUNKS = ("recognition", "age_gender", "expression", "landmarks68", "random")


def build_trunk(name: str, size: int) -> tuple[nn.Module, list[int]]:
    """(frozen trunk, spatial size of each of its maps) for images of ``size`` pixels."""
    if name == "random":
        trunk = RandomTrunk()
        return trunk, trunk.sizes(size)
    from .face_trunks import face_trunk

    return face_trunk(name, size)


def build_projected_discriminator(trunk: str, size: int, width: int = 64, seed: int = 0) -> ProjectedDiscriminator:
    """A :class:`ProjectedDiscriminator` on the named trunk, its input resized to ``size``."""
    net, sizes = build_trunk(trunk, size)
    return ProjectedDiscriminator(_Resized(net, size), sizes, width=width, seed=seed)


class _Resized(nn.Module):
    """Resize images (bilinear, differentiable) to the trunk's input size before the trunk."""

    def __init__(self, trunk: nn.Module, size: int):
        super().__init__()
        self.net, self.size = trunk, size
        self.channels = list(trunk.channels)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        if images.shape[-1] != self.size or images.shape[-2] != self.size:
            images = F.interpolate(images, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.net(images)
