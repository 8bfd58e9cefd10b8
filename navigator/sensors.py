"""Frozen feature networks ("sensors") that turn images in [-1, 1] into a list of feature maps.

* ``alexnet``: torchvision AlexNet with ImageNet weights, outputs of its 5 ReLU stages, fed the raw
  generator image (no ImageNet normalisation) at full resolution — the paper's setting;
* ``vgg16``: torchvision VGG16 with ImageNet weights, relu1_2 … relu5_3 (the LPIPS stages);
* ``discriminator``: the block outputs of the generator's own discriminator (``D.features``);
* ``random-alexnet``: AlexNet with a seeded random initialisation (no weights needed);
* ``facenets``: the stage outputs of the pretrained face networks shipped with editkit
  (:mod:`editkit.facenets`: 68-landmark + expression + age/gender trunks together), or chosen trunks
  with ``facenets-landmarks``, ``facenets-expression``, ``facenets-age-gender``,
  ``facenets-recognition`` or a ``+``-joined list (``facenets-landmarks+recognition``). The whole
  image goes in with face-api's preprocessing (differentiable).

ImageNet weights are never downloaded: they come from a path given by the user or from the
torch hub cache (``$TORCH_HOME/hub/checkpoints``); otherwise :class:`MissingWeightsError`.
Images smaller than ``min_size`` (64 px; AlexNet's pooling needs it) are upsampled bilinearly.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from editkit.errors import CheckpointError, MissingWeightsError, UsageError

SENSORS = ("alexnet", "vgg16", "discriminator", "random-alexnet", "facenets", "facenets-landmarks",
           "facenets-expression", "facenets-age-gender", "facenets-recognition")
#: facenets sensor trunk name -> (editkit.facenets network, input size, stages used)
FACENET_TRUNKS = {
    "landmarks": ("landmarks68", 112, ("dense0", "dense1", "dense2", "dense3")),
    "expression": ("expression", 112, ("dense0", "dense1", "dense2", "dense3")),
    "age-gender": ("age_gender", 112, ("entry_conv_in", "entry_reduction_block_0", "entry_reduction_block_1",
                                       "middle_main_block_1", "exit_reduction_block")),
    "recognition": ("recognition", 150, ("conv32_down", "conv64_down", "conv128_down", "conv256_down")),
}
DEFAULT_FACENET_TRUNKS = ("landmarks", "expression", "age-gender")
IMAGENET_FILES = {"alexnet": "alexnet-owt-7be5be79.pth", "vgg16": "vgg16-397923af.pth"}
# Indices (into ``features``) after which a stage ends: the ReLUs.
_STAGE_ENDS = {"alexnet": (1, 4, 7, 9, 11), "vgg16": (3, 8, 15, 22, 29)}


def imagenet_weights_path(arch: str, path: str | Path | None = None) -> Path:
    """The local ImageNet weight file for ``arch``: ``path`` if given, else the torch hub cache."""
    fname = IMAGENET_FILES[arch]
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise MissingWeightsError(f"{arch} ImageNet weights not found (expected torchvision's {fname})", path=p)
        return p
    hub = Path(torch.hub.get_dir()) / "checkpoints" / fname
    if hub.is_file():
        return hub
    raise MissingWeightsError(
        f"the {arch} sensor needs torchvision's ImageNet weights {fname}; put the file at {hub} "
        f"(or set TORCH_HOME, or pass its path), or use --sensor random-alexnet / discriminator")


class FeatureSensor(nn.Module):
    """A torchvision ``features`` stack cut after each ReLU stage; returns the list of stage outputs."""

    def __init__(self, features: nn.Sequential, stage_ends: tuple[int, ...], name: str, min_size: int = 64):
        super().__init__()
        self.stages = nn.ModuleList()
        start = 0
        for end in stage_ends:
            self.stages.append(nn.Sequential(*[features[i] for i in range(start, end + 1)]))
            start = end + 1
        for m in self.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False
        self.name, self.min_size = name, min_size
        self.requires_grad_(False)
        self.eval()

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        if min(img.shape[-2:]) < self.min_size:
            scale = self.min_size / min(img.shape[-2:])
            size = (round(img.shape[-2] * scale), round(img.shape[-1] * scale))
            img = F.interpolate(img, size=size, mode="bilinear", align_corners=False)
        out, x = [], img
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out

    def train(self, mode: bool = True) -> "FeatureSensor":  # frozen: always eval
        return super().train(False)


class DiscriminatorSensor(nn.Module):
    """The block outputs of a StyleGAN2 discriminator (``D.features``)."""

    def __init__(self, D: nn.Module):
        super().__init__()
        if not hasattr(D, "features"):
            raise UsageError("the discriminator sensor needs a discriminator with .features()")
        self.D, self.name = D, "discriminator"
        self.requires_grad_(False)
        self.eval()

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        return list(self.D.features(img))

    def train(self, mode: bool = True) -> "DiscriminatorSensor":
        return super().train(False)


class FaceNetSensor(nn.Module):
    """Stage outputs of editkit's pretrained face networks (private, frozen copies, so moving the
    sensor to a device leaves :func:`editkit.facenets.load`'s cache alone)."""

    def __init__(self, trunks: tuple[str, ...] = DEFAULT_FACENET_TRUNKS):
        super().__init__()
        from editkit.facenets.weights import load_file, weights_path

        bad = [t for t in trunks if t not in FACENET_TRUNKS]
        if bad or not trunks:
            raise UsageError(f"unknown facenets sensor trunk(s) {bad} (choose from {', '.join(FACENET_TRUNKS)})")
        self.trunks = tuple(trunks)
        self.nets = nn.ModuleDict({t: load_file(FACENET_TRUNKS[t][0], weights_path(FACENET_TRUNKS[t][0]))
                                   for t in self.trunks})
        self.name = "facenets" if self.trunks == DEFAULT_FACENET_TRUNKS else "facenets-" + "+".join(self.trunks)
        self.requires_grad_(False)
        self.eval()

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        from editkit.facenets import to_input

        rgb = (img.float() + 1) * 127.5
        inputs: dict[int, torch.Tensor] = {}
        out = []
        for t in self.trunks:
            _, size, stages = FACENET_TRUNKS[t]
            if size not in inputs:
                inputs[size] = to_input(rgb, size)
            feats = self.nets[t].features(inputs[size])
            out.extend(feats[s] for s in stages)
        return out

    def train(self, mode: bool = True) -> "FaceNetSensor":
        return super().train(False)


def facenet_sensor(name: str) -> FaceNetSensor:
    """``facenets`` (the default trunks) or ``facenets-<trunk>[+<trunk>...]``."""
    if name == "facenets":
        return FaceNetSensor()
    return FaceNetSensor(tuple(name[len("facenets-"):].split("+")))


def _torchvision_model(arch: str) -> nn.Module:
    import torchvision
    return getattr(torchvision.models, arch)(weights=None)


def imagenet_sensor(arch: str, weights: str | Path | None = None) -> FeatureSensor:
    """AlexNet or VGG16 with ImageNet weights from a local file (see :func:`imagenet_weights_path`).

    Only the ``features.*`` tensors of the torchvision state dict are used (all must be present).
    """
    path = imagenet_weights_path(arch, weights)
    with torch.device("meta"):           # no time spent initialising weights that are overwritten
        model = _torchvision_model(arch)
    features = model.features.to_empty(device="cpu")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
        features.load_state_dict({k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")},
                                 strict=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"not torchvision {arch} ImageNet weights ({exc})", path=path) from None
    return FeatureSensor(features, _STAGE_ENDS[arch], arch)


def random_alexnet(seed: int = 0) -> FeatureSensor:
    """AlexNet features with torchvision's default initialisation drawn from ``seed`` (the global RNG
    is left untouched). The conv layers are initialised in construction order, so the result equals
    the features of ``torchvision.models.alexnet()`` built right after ``torch.manual_seed(seed)``."""
    with torch.device("meta"):
        model = _torchvision_model("alexnet")
    features = model.features.to_empty(device="cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in features:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return FeatureSensor(features, _STAGE_ENDS["alexnet"], "random-alexnet")


def build_sensor(name: str, weights: str | Path | None = None, discriminator: nn.Module | None = None,
                 seed: int = 0) -> nn.Module:
    """A frozen sensor by name (one of :data:`SENSORS`)."""
    if name in ("alexnet", "vgg16"):
        return imagenet_sensor(name, weights)
    if name == "random-alexnet":
        return random_alexnet(seed)
    if name == "facenets" or name.startswith("facenets-"):
        return facenet_sensor(name)
    if name == "discriminator":
        if discriminator is None:
            raise UsageError("--sensor discriminator needs a network file that contains a discriminator")
        return DiscriminatorSensor(discriminator)
    raise UsageError(f"unknown sensor {name!r}; choose one of {', '.join(SENSORS)}")


class LPIPSAlex(nn.Module):
    """LPIPS v0.1 (AlexNet): the ``lpips`` package's shipped linear heads on an AlexNet trunk loaded
    from local ImageNet weights. ``forward(a, b) -> [N]`` distances for images in [-1, 1]
    (upsampled to ``min_size`` first when smaller)."""

    _SLICES = (range(0, 2), range(2, 5), range(5, 8), range(8, 10), range(10, 12))

    def __init__(self, weights: str | Path | None = None, min_size: int = 64):
        super().__init__()
        import warnings

        import lpips
        path = imagenet_weights_path("alexnet", weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # torchvision's 'pretrained' deprecation, random trunk
            self.model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
            trunk = {f"slice{k}.{i}.{p}": sd[f"features.{i}.{p}"]
                     for k, rg in enumerate(self._SLICES, 1) for i in rg for p in ("weight", "bias")
                     if f"features.{i}.{p}" in sd}
            self.model.net.load_state_dict(trunk, strict=True)
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"not torchvision alexnet ImageNet weights ({exc})", path=path) from None
        self.min_size = min_size
        self.requires_grad_(False)
        self.eval()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if min(a.shape[-2:]) < self.min_size:
            size = (self.min_size, self.min_size)
            a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
            b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
        return self.model(a.float(), b.float()).flatten()
