"""StyleGAN2 generator and discriminator: one implementation for every checkpoint format.

Parameter names follow NVIDIA's stylegan2-ada-pytorch (``mapping.fc0.weight``,
``synthesis.b8.conv0.affine.weight``, ...), so official network pickles load as plain state
dicts; rosinality/e4e checkpoints are renamed into this layout by ``editkit.checkpoints``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .ops import (bias_act, conv2d_resample, downsample2d, modulated_conv2d, normalize_2nd_moment,
                  setup_filter, upsample2d)

NOISE_MODES = ("const", "random", "none")


class _FrozenWeightCache:
    """Copies derived from a frozen weight (its demodulation sums, its low-precision cast), rebuilt when the
    weight changes (new storage or an in-place update); never used while the weight is being trained."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.values: dict[str, torch.Tensor] = {}

    def get(self, weight: torch.Tensor, name: str, make) -> torch.Tensor | None:
        if weight.requires_grad or torch.compiler.is_compiling():  # traced graphs compute it themselves
            return None
        key = (weight.data_ptr(), weight._version, weight.device, weight.dtype)
        if key != self.key:
            self.key, self.values = key, {}
        if name not in self.values:
            with torch.no_grad():
                self.values[name] = make(weight)
        return self.values[name]


def channels_for(resolution: int, channel_base: int, channel_max: int, start: int = 4) -> dict[int, int]:
    """NVIDIA's channel rule: min(channel_base // res, channel_max) for each resolution."""
    log2 = int(np.log2(resolution))
    return {2 ** i: min(channel_base // 2 ** i, channel_max) for i in range(int(np.log2(start)), log2 + 1)}


class FullyConnectedLayer(nn.Module):
    """Equalised-learning-rate linear layer."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


class Conv2dLayer(nn.Module):
    """Equalised-learning-rate convolution with optional FIR up/downsampling."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter())
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = math.sqrt(2) if activation == "lrelu" else 1.0
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w, f=self.resample_filter, up=self.up, down=self.down, padding=self.padding,
                            flip_weight=(self.up == 1))
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class MappingNetwork(nn.Module):
    """z -> w: 2nd-moment normalisation, then ``num_layers`` lrelu FC layers; tracks ``w_avg``."""

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8, lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.995, layer_features: int | None = None):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, w_dim, num_ws, num_layers
        self.w_avg_beta = w_avg_beta
        features = [z_dim] + [layer_features or w_dim] * (num_layers - 1) + [w_dim]
        for idx in range(num_layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(features[idx], features[idx + 1], activation="lrelu",
                                                          lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, update_w_avg: bool = False) -> torch.Tensor:
        x = normalize_2nd_moment(z.to(torch.float32))
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = self.w_avg.lerp(x, truncation_psi)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution + noise + bias/lrelu (optionally upsampling 2x)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1,
                 conv_clamp: float | None = None, use_noise: bool = True):
        super().__init__()
        self.resolution, self.up, self.conv_clamp, self.use_noise = resolution, up, conv_clamp, use_noise
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.register_buffer("resample_filter", setup_filter())
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self._cache = _FrozenWeightCache()

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w)
        wsq = self._cache.get(self.weight, "sq", lambda t: t.square().sum(dim=[2, 3]))
        wlp = self._cache.get(self.weight, str(x.dtype), lambda t: t.to(x.dtype)) if x.dtype != torch.float32 else None
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=1,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1), weight_sq=wsq,
                             weight_lp=wlp)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act="lrelu", gain=math.sqrt(2) * gain, clamp=clamp, inplace=True)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to RGB, no demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels)
        self._cache = _FrozenWeightCache()

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        wlp = self._cache.get(self.weight, str(x.dtype), lambda t: t.to(x.dtype)) if x.dtype != torch.float32 else None
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, weight_lp=wlp)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp, inplace=True)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network ('skip', 'resnet' or 'orig' architecture)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", conv_clamp: float | None = None, use_fp16: bool = False):
        super().__init__()
        self.in_channels, self.resolution, self.is_last = in_channels, resolution, is_last
        self.architecture, self.use_fp16 = architecture, use_fp16
        self.memory_format = torch.channels_last  # faster convolutions on CPU (oneDNN) and GPU (cuDNN)
        self.register_buffer("resample_filter", setup_filter())
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, conv_clamp=conv_clamp)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str,
                dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        w_iter = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = x.contiguous(memory_format=self.memory_format)
            x = self.conv1(x, next(w_iter), noise_mode)
        elif self.architecture == "resnet":
            x = x.to(dtype)
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode)
            x = self.conv1(x, next(w_iter), noise_mode, gain=np.sqrt(0.5))
            x = y + x
        else:
            x = x.to(dtype)
            x = self.conv0(x, next(w_iter), noise_mode)
            x = self.conv1(x, next(w_iter), noise_mode)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter)).to(torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """W+ codes [N, num_ws, w_dim] -> images [N, C, H, W]."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channels: dict[int, int],
                 architecture: str = "skip", conv_clamp: float | None = None, num_fp16_res: int = 0):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        log2 = int(np.log2(img_resolution))
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim, res, img_channels,
                                   is_last=(res == img_resolution), architecture=architecture,
                                   conv_clamp=conv_clamp, use_fp16=(num_fp16_res > 0 and res >= fp16_resolution))
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)
        self.half_dtype: torch.dtype | None = None  # set by Generator.set_precision (CUDA only)
        self.inference_dtype: torch.dtype | None = None  # set by Generator.set_inference_precision

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, not {noise_mode!r}")
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            cur = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            dtype = self.half_dtype if (block.use_fp16 and self.half_dtype is not None) else torch.float32
            if self.inference_dtype is not None and not torch.is_grad_enabled():
                dtype = self.inference_dtype
            x, img = block(x, img, cur, noise_mode, dtype)
        return img


class Generator(nn.Module):
    """StyleGAN2 generator: ``mapping`` (z -> W+) and ``synthesis`` (W+ -> image in about [-1, 1])."""

    def __init__(self, z_dim: int = 512, w_dim: int = 512, resolution: int = 1024, channel_base: int = 32768,
                 channel_max: int = 512, channels: dict[int, int] | None = None, mapping_layers: int = 8,
                 architecture: str = "skip", conv_clamp: float | None = None, num_fp16_res: int = 0,
                 img_channels: int = 3, mapping_lr_mul: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        if resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 4, not {resolution}")
        if architecture not in ("skip", "resnet", "orig"):
            raise ValueError(f"unknown architecture {architecture!r}")
        chans = {int(k): int(v) for k, v in (channels or channels_for(resolution, channel_base, channel_max)).items()}
        self.config: dict[str, Any] = dict(
            z_dim=z_dim, w_dim=w_dim, resolution=resolution, channels={str(k): v for k, v in sorted(chans.items())},
            mapping_layers=mapping_layers, architecture=architecture, conv_clamp=conv_clamp,
            num_fp16_res=num_fp16_res, img_channels=img_channels, mapping_lr_mul=mapping_lr_mul, w_avg_beta=w_avg_beta)
        self.z_dim, self.w_dim, self.resolution, self.img_channels = z_dim, w_dim, resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, resolution, img_channels, chans, architecture, conv_clamp, num_fp16_res)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, mapping_layers, mapping_lr_mul, w_avg_beta)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi=truncation_psi), noise_mode=noise_mode)

    def affine_weights(self, torgb: str = "last") -> list[torch.Tensor]:
        """Effective style-affine weights [C_in, w_dim]: every modulated conv's, plus the toRGB ones.

        ``torgb='last'`` (SeFa's selection, as the ContraFeat authors and the official SeFa code use it):
        only the last block's toRGB; ``'all'``: every toRGB; ``'none'``: convs only.
        """
        if torgb not in ("last", "all", "none"):
            raise ValueError(f"torgb must be last, all or none, not {torgb!r}")
        last = f"b{self.resolution}.torgb.affine"
        return [m.weight * m.weight_gain for name, m in self.synthesis.named_modules()
                if name.endswith(".affine") and isinstance(m, FullyConnectedLayer)
                and (".torgb." not in name or torgb == "all" or (torgb == "last" and name == last))]

    def set_precision(self, dtype: torch.dtype | None) -> "Generator":
        """Run the high-resolution blocks (``num_fp16_res``) in float16/bfloat16; None for float32 everywhere."""
        self.synthesis.half_dtype = dtype
        return self

    def set_inference_precision(self, dtype: torch.dtype | None) -> "Generator":
        """Run every synthesis block in ``dtype`` (e.g. bfloat16) when autograd is off; None: float32.

        The mapping network, styles, demodulation and the RGB sum stay float32; synthesis with gradients
        (inversion, training) is unaffected. ``editkit.precision.apply_precision`` picks the dtype.
        """
        self.synthesis.inference_dtype = dtype
        return self

    @property
    def precision(self) -> str:
        """The inference mode: 'float32' (exact) or the reduced dtype's name ('bf16')."""
        dt = self.synthesis.inference_dtype
        return "float32" if dt is None else {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dt, str(dt))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Generator":
        cfg = dict(config)
        if "channels" in cfg and cfg["channels"] is not None:
            cfg["channels"] = {int(k): int(v) for k, v in cfg["channels"].items()}
        return cls(**cfg)


class DiscriminatorBlock(nn.Module):
    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.architecture = in_channels, architecture
        self.register_buffer("resample_filter", setup_filter())
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.in_channels == 0 or self.architecture == "skip":
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv1(self.conv0(x), gain=np.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class MinibatchStdLayer(nn.Module):
    def __init__(self, group_size: int, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g:
            g = math.gcd(n, g)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)
        y = y.repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, in_channels: int, resolution: int, img_channels: int, architecture: str = "resnet",
                 mbstd_group_size: int = 4, mbstd_num_channels: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation="lrelu")
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None) -> torch.Tensor:
        if self.architecture == "skip":
            x = x + self.fromrgb(img)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        return self.out(self.fc(x.flatten(1)))


class Discriminator(nn.Module):
    """StyleGAN2 discriminator (NVIDIA layout). ``features(img)`` returns every block's output."""

    def __init__(self, resolution: int = 1024, channel_base: int = 32768, channel_max: int = 512,
                 channels: dict[int, int] | None = None, architecture: str = "resnet", conv_clamp: float | None = None,
                 mbstd_group_size: int = 4, mbstd_num_channels: int = 1, img_channels: int = 3):
        super().__init__()
        chans = {int(k): int(v) for k, v in (channels or channels_for(resolution, channel_base, channel_max)).items()}
        self.config: dict[str, Any] = dict(
            resolution=resolution, channels={str(k): v for k, v in sorted(chans.items())}, architecture=architecture,
            conv_clamp=conv_clamp, mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels,
            img_channels=img_channels)
        self.resolution = resolution
        log2 = int(np.log2(resolution))
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        for res in self.block_resolutions:
            block = DiscriminatorBlock(chans[res] if res < resolution else 0, chans[res], chans[res // 2], res,
                                       img_channels, architecture, conv_clamp)
            setattr(self, f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(chans[4], 4, img_channels, architecture, mbstd_group_size,
                                        mbstd_num_channels, conv_clamp)

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of every resolution block (the navigator's 'discriminator' sensor)."""
        x, feats = None, []
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
            feats.append(x)
        return feats

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
        return self.b4(x, img)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Discriminator":
        cfg = dict(config)
        if cfg.get("channels") is not None:
            cfg["channels"] = {int(k): int(v) for k, v in cfg["channels"].items()}
        return cls(**cfg)
