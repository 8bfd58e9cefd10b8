"""Reconstruction losses: LPIPS-VGG16 from a local file, and the fallback when no VGG16 file exists.

No weights are ever downloaded. The VGG16 trunk is looked up in this order:
1. an explicit path (``--vgg16 PATH``), 2. the ``EDITKIT_VGG16`` environment variable,
3. torchvision's cache ``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``.
The file is a torchvision ``vgg16`` state dict (``features.*`` keys; the classifier is ignored);
it is copied into ``lpips.LPIPS(net='vgg', pnet_rand=True)``, whose small linear heads ship with
the ``lpips`` package.

Fallback (no VGG16 file): pixel MSE plus a feature-matching distance in the feature maps of the
generator's discriminator (if given) or of the encoder (if given). This recovers colours and
layout well but fine texture and sharpness less faithfully than LPIPS: expect blurrier detail
and LPIPS-style perceptual scores noticeably worse than with the VGG16 loss.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from editkit.errors import MissingWeightsError

log = logging.getLogger(__name__)
_announced: list = []

VGG16_FILENAME = "vgg16-397923af.pth"
VGG16_ENV = "EDITKIT_VGG16"
LPIPS_SIZE = 256  # the projector measures LPIPS at 256 px
LPIPS_MIN_SIZE = 64  # smaller images are upsampled so VGG's five stages still see structure
FALLBACK_MESSAGE = ("no VGG16 weights found (looked at --vgg16, ${env}, {cache}); using the fallback loss "
                    "({feat}). Expect correct colours and layout but blurrier detail than with "
                    "LPIPS; put {name} there or pass --vgg16 PATH for projector-quality results.")


def find_vgg16(path: str | Path | None = None) -> Path | None:
    """The local VGG16 file to use, or None. An explicit ``path`` that does not exist is an error."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise MissingWeightsError(f"VGG16 weights not found (expected a torchvision state dict {VGG16_FILENAME})",
                                      path=p)
        return p
    env = os.environ.get(VGG16_ENV)
    if env and Path(env).is_file():
        return Path(env)
    cached = vgg16_cache_path()
    return cached if cached.is_file() else None


def vgg16_cache_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILENAME


def load_lpips(vgg16_path: str | Path) -> nn.Module:
    """``lpips.LPIPS(net='vgg')`` with its trunk copied from a local torchvision VGG16 state dict."""
    import lpips

    from editkit.errors import CheckpointError

    sd = torch.load(vgg16_path, map_location="cpu", weights_only=True)
    model = _lpips_vgg_without_classifier()
    slices = [range(0, 4), range(4, 9), range(9, 16), range(16, 23), range(23, 30)]
    try:
        new = {f"slice{k}.{i}.{p}": sd[f"features.{i}.{p}"]
               for k, rg in enumerate(slices, 1) for i in rg for p in ("weight", "bias") if f"features.{i}.{p}" in sd}
        model.net.load_state_dict(new, strict=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"not a torchvision VGG16 state dict ({exc})", path=vgg16_path) from exc
    model.eval().requires_grad_(False)
    return model


def _lpips_vgg_without_classifier() -> nn.Module:
    """``lpips.LPIPS(net='vgg', pnet_rand=True)``, building only VGG16's ``features`` (lpips drops the
    classifier anyway; randomly initialising its 120 M weights would cost seconds on a CPU)."""
    from types import SimpleNamespace
    from unittest import mock

    import lpips
    import lpips.pretrained_networks as pn
    from torchvision.models.vgg import cfgs, make_layers

    def vgg16(*args, **kwargs):
        return SimpleNamespace(features=make_layers(cfgs["D"]))

    with mock.patch.object(pn, "tv", SimpleNamespace(vgg16=vgg16)):
        return lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)


def _lpips_resize(x: torch.Tensor) -> torch.Tensor:
    size = x.shape[-1]
    if size > LPIPS_SIZE:
        return F.interpolate(x, size=(LPIPS_SIZE, LPIPS_SIZE), mode="area")
    if size < LPIPS_MIN_SIZE:
        return F.interpolate(x, size=(LPIPS_MIN_SIZE, LPIPS_MIN_SIZE), mode="bilinear", align_corners=False)
    return x


class LPIPSDistance(nn.Module):
    """Per-image LPIPS-VGG distance ``[N]`` between images in [-1, 1] (measured at <= 256 px)."""

    def __init__(self, vgg16_path: str | Path):
        super().__init__()
        self.model = load_lpips(vgg16_path)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.model(_lpips_resize(a), _lpips_resize(b), normalize=False).view(-1)


def feature_distance(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
    """LPIPS-like distance ``[N]``: channel-normalised features, squared difference, mean per level, summed."""
    total = 0.0
    for fa, fb in zip(feats_a, feats_b):
        na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-8)
        nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-8)
        total = total + (na - nb).pow(2).sum(1).flatten(1).mean(1)
    return total


class ReconstructionLoss(nn.Module):
    """Per-image loss ``[N]`` = perceptual term + ``pixel_weight`` * MSE
    (+ ``identity_weight`` * :class:`IdentityLoss` when it is > 0).

    ``perceptual`` is LPIPS-VGG16 when a VGG16 file is found, else a feature distance in
    ``feature_fn`` (discriminator or encoder features), else nothing (pixel MSE only).
    ``kind`` says which one is in use.
    """

    def __init__(self, vgg16: str | Path | None = None, feature_fn: Callable | None = None,
                 feature_name: str = "features", pixel_weight: float = 1.0, perceptual_weight: float = 1.0,
                 quiet: bool = False, use_vgg: bool = True, identity_weight: float = 0.0):
        super().__init__()
        self.pixel_weight = float(pixel_weight)
        self.perceptual_weight = float(perceptual_weight)
        path = find_vgg16(vgg16) if use_vgg else None
        self.lpips = LPIPSDistance(path) if path is not None else None
        self.feature_fn = None if self.lpips is not None else feature_fn
        if self.lpips is not None:
            self.kind = "lpips-vgg16"
        elif feature_fn is not None:
            self.kind = f"fallback: pixel + {feature_name}"
        else:
            self.kind = "fallback: pixel only"
        if self.lpips is None and use_vgg and not quiet and not _announced:
            _announced.append(True)  # once per process
            log.warning(FALLBACK_MESSAGE.format(env=VGG16_ENV, cache=vgg16_cache_path(), name=VGG16_FILENAME,
                                                feat=f"pixel MSE + {feature_name} matching" if feature_fn else "pixel MSE only"))
        self.identity_weight = float(identity_weight)
        self.identity = IdentityLoss() if self.identity_weight > 0 else None
        if self.identity is not None:
            self.kind += f" + identity {self.identity_weight:g}"
        self._target_feats, self._target_ref, self._active = None, None, None

    def set_target(self, target: torch.Tensor) -> None:
        """Cache target features (the target does not change during an optimisation)."""
        self._target_ref, self._active = target, None
        if self.feature_fn is not None:
            with torch.no_grad():
                self._target_feats = [f.detach() for f in self.feature_fn(target)]
        if self.identity is not None:
            self.identity.set_target(target)

    def select(self, active: list[int] | None) -> None:
        """The next calls get only these rows of the cached target (faces that stopped early left)."""
        self._active = None if active is None or len(active) == len(self._target_ref) else list(active)
        if self.identity is not None:
            self.identity.select(self._active)

    def _cached(self, target: torch.Tensor) -> bool:
        if self._target_ref is None:
            return False
        if self._active is None:
            return target is self._target_ref
        return target.shape[0] == len(self._active)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.pixel_weight * (pred.float() - target).pow(2).flatten(1).mean(1)
        if self.lpips is not None:
            loss = loss + self.perceptual_weight * self.lpips(pred, target).float()
        elif self.feature_fn is not None:
            if self._cached(target) and self._target_feats is not None:
                tf = self._target_feats if self._active is None else [f[self._active] for f in self._target_feats]
            else:
                tf = [f.detach() for f in self.feature_fn(target)]
            loss = loss + self.perceptual_weight * feature_distance(self.feature_fn(pred), tf).float()
        if self.identity is not None:
            loss = loss + self.identity_weight * self.identity(pred, target, cached=self._cached(target))
        return loss


class IdentityLoss(nn.Module):
    """Per-image ``1 - cosine`` between face-recognition descriptors (``editkit.facenets``,
    face-api's 128-D metric network) of ``pred`` and ``target`` [N, 3, H, W] in [-1, 1].

    The whole aligned crop goes to the network (both images are framed alike), resized to its
    150-px input inside :func:`editkit.facenets.analyze_tensor`; gradients flow to ``pred``.
    """

    def __init__(self):
        super().__init__()
        self._target, self._active = None, None

    @staticmethod
    def descriptors(images: torch.Tensor) -> torch.Tensor:
        from editkit import facenets

        return facenets.analyze_tensor(images.float(), networks=("recognition",)).descriptor

    def set_target(self, target: torch.Tensor) -> None:
        with torch.no_grad():
            self._target = self.descriptors(target).detach()
        self._active = None

    def select(self, active: list[int] | None) -> None:
        self._active = active

    def forward(self, pred: torch.Tensor, target: torch.Tensor, cached: bool = False) -> torch.Tensor:
        if cached and self._target is not None:
            ref = self._target if self._active is None else self._target[self._active]
        else:
            with torch.no_grad():
                ref = self.descriptors(target)
        return 1 - F.cosine_similarity(self.descriptors(pred), ref, dim=-1)
