"""StyleGAN2 training loop (the official recipe, in plain PyTorch).

Non-saturating logistic loss, lazy R1 (and optional path-length) regularisation with the
Adam hyper-parameters corrected for the lazy interval, style mixing, an EMA generator with
ramp-up, optional DiffAugment, mixed precision (bfloat16 autocast) and ``torch.compile`` on
CUDA, and data parallelism under ``torchrun`` (gradients averaged with all-reduce, like
NVIDIA's trainer; NCCL on CUDA, gloo on CPU).

Every random draw of a step (data order, flips, latents, mixing cut-offs, augmentation) comes
from a generator seeded by (seed, step) and is drawn for the whole global batch, so a run is a
function of its config: resuming from a training state reproduces the uninterrupted run, and
N processes at the same global batch follow the single-process run (up to float rounding).
The global RNG (used only by the synthesis noise) is saved in the training state.

Output folder: ``config.json``, ``log.jsonl`` (one line per tick), ``samples/*.png`` (grids),
``network-snapshot-XXXXXX.safetensors`` and ``network-final.safetensors`` (G_ema + D, loadable
with ``editkit.load_generator`` / ``editkit.load_network``) and ``training-state.safetensors``
(everything needed for exact resume: G, D, G_ema, both Adam states, step, RNG).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

from ..atomic import atomic_path, atomic_write_text
from ..errors import CheckpointError, UsageError
from ..networks import Discriminator, Generator
from ..photos import save_image
from ..render import make_grid, to_uint8
from .augment import diff_augment, parse_policy
from .data import BatchSampler, batch_to_float, default_cache_dir, load_dataset
from .losses import discriminator_loss, generator_loss, path_length_penalty, r1_penalty
from .projected import hinge_d_loss, hinge_g_loss

STATE_FILE = "training-state.safetensors"
STATE_FORMAT = "editkit-training-state"
FINAL_NETWORK = "network-final.safetensors"


@dataclass
class TrainConfig:
    """Every setting of a generator training run (saved as ``config.json`` and in checkpoints)."""

    data: str
    out: str
    resolution: int = 64
    kimg: float = 1000.0
    batch: int = 32
    # networks
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 2
    mapping_lr_mul: float = 0.01
    channel_base: int = 4096
    channel_max: int = 128
    d_channel_base: int | None = None  # None: same as G
    d_channel_max: int | None = None
    mbstd_group: int = 4
    d_arch: str = "stylegan2"  # or "projected": a Projected-GAN discriminator on frozen face-network features
    projected_net: str = "recognition"  # the frozen trunk of d_arch="projected" (editkit.training.projected)
    projected_size: int = 112  # input size of that trunk (images are resized to it)
    projected_width: int = 64  # channels of the per-scale discriminator heads
    # optimisation
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float = 0.5
    r1_interval: int = 16
    pl_weight: float = 0.0
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    style_mixing: float = 0.9
    ema_kimg: float | None = None  # None: batch * 10 / 32 (NVIDIA's auto config)
    ema_rampup: float | None = 0.05
    augment: str = "translation,cutout"
    mirror: bool = True
    noise_mode: str = "random"
    seed: int = 0
    # data
    max_images: int | None = None
    cache_dir: str | None = None
    workers: int = 2
    # run control and output
    snapshot_kimg: float = 50.0
    sample_kimg: float = 10.0
    log_kimg: float = 1.0
    grid: int = 8
    max_minutes: float | None = None
    threads: int | None = None
    device: str = "auto"
    amp: bool | None = None  # bfloat16 autocast; None: on CUDA only (also fast on CPUs with avx512_bf16/AMX)
    compile: bool | None = None  # None: on CUDA only
    channels_last: bool = True  # NHWC conv weights: ~20% faster steps on CPU (oneDNN)

    def validate(self) -> "TrainConfig":
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise UsageError(f"--resolution must be a power of two >= 8, got {self.resolution}")
        if self.batch < 1 or self.kimg <= 0:
            raise UsageError("--batch must be >= 1 and --kimg > 0")
        if self.r1_interval < 1 or self.pl_interval < 1:
            raise UsageError("regularisation intervals must be >= 1")
        if self.noise_mode not in ("random", "const", "none"):
            raise UsageError(f"--noise-mode must be random, const or none, got {self.noise_mode!r}")
        if not 0 <= self.style_mixing <= 1:
            raise UsageError("--style-mixing must be a probability in [0, 1]")
        if self.d_arch not in ("stylegan2", "projected"):
            raise UsageError(f"--d-arch must be stylegan2 or projected, got {self.d_arch!r}")
        if self.d_arch == "projected":
            from .projected import TRUNKS
            if self.projected_net not in TRUNKS:
                raise UsageError(f"--projected-net must be one of {', '.join(TRUNKS)}, got {self.projected_net!r}")
            if not 32 <= self.projected_size <= 256:
                raise UsageError(f"--projected-size must be in 32..256, got {self.projected_size}")
        parse_policy(self.augment)
        return self

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ---------------------------------------------------------------- helpers

def _step_generator(seed: int, step: int, tag: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 0x9E3779B1 + step * 1_000_003 + tag * 7919) % (2 ** 62))


def build_networks(cfg: TrainConfig) -> tuple[Generator, torch.nn.Module]:
    """G and D of a config (initialised from ``cfg.seed``); D is a :class:`ProjectedDiscriminator` for
    ``d_arch="projected"``."""
    torch.manual_seed(cfg.seed)
    G = Generator(z_dim=cfg.z_dim, w_dim=cfg.w_dim, resolution=cfg.resolution, channel_base=cfg.channel_base,
                  channel_max=cfg.channel_max, mapping_layers=cfg.mapping_layers, mapping_lr_mul=cfg.mapping_lr_mul)
    if cfg.d_arch == "projected":
        from .projected import build_projected_discriminator
        return G, build_projected_discriminator(cfg.projected_net, cfg.projected_size, cfg.projected_width, cfg.seed)
    D = Discriminator(resolution=cfg.resolution, channel_base=cfg.d_channel_base or cfg.channel_base,
                      channel_max=cfg.d_channel_max or cfg.channel_max, mbstd_group_size=cfg.mbstd_group)
    return G, D


def _lazy_adam(params, lr: float, cfg: TrainConfig, interval: int, enabled: bool) -> torch.optim.Adam:
    ratio = interval / (interval + 1) if enabled else 1.0  # NVIDIA's lazy-regularisation correction
    return torch.optim.Adam(params, lr=lr * ratio, betas=(cfg.beta1 ** ratio, cfg.beta2 ** ratio), eps=1e-8)


class _Dist:
    """Rank/world info and the collectives the loop needs (no-ops in a single process)."""

    def __init__(self, device_kind: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
            self.owns_group = True

    def average_grads(self, module: torch.nn.Module) -> None:
        if self.world == 1:
            return
        params = [p for p in module.parameters() if p.requires_grad]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
        dist.all_reduce(flat)
        flat /= self.world
        for p, g in zip(params, flat.split([p.numel() for p in params])):
            p.grad = g.view_as(p).clone()

    def broadcast_module(self, module: torch.nn.Module) -> None:
        if self.world > 1:
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            x = x.clone()
            dist.all_reduce(x)
            x /= self.world
        return x

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank."""
        if self.world == 1:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0], device="cuda" if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def gather_objects(self, obj: Any) -> list[Any]:
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _resolve_device(cfg: TrainConfig, local_rank: int) -> torch.device:
    if cfg.device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(cfg.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda requested but CUDA is not available")
        if dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
    return dev


def save_grid(path: str | Path, images: torch.Tensor, cols: int) -> Path:
    """Write images in [-1, 1] [N,3,H,W] as one PNG grid, ``cols`` per row, no padding (atomic)."""
    tiles = list(to_uint8(images.clamp(-1, 1)))
    return save_image(path, make_grid([tiles[i:i + cols] for i in range(0, len(tiles), cols)], pad=0, fill=0))


# ---------------------------------------------------------------- training state (exact resume)

def _optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"{prefix}.state.{idx}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    return tensors, sd["param_groups"]


def _load_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    pre = prefix + ".state."
    for key, t in tensors.items():
        if key.startswith(pre):
            idx, name = key[len(pre):].split(".", 1)
            state.setdefault(int(idx), {})[name] = t
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_training_state(path: str | Path, cfg: TrainConfig, G, D, G_ema, opt_G, opt_D, step: int, cur_nimg: int,
                        pl_mean: torch.Tensor, rng_states: list[dict[str, torch.Tensor]], elapsed_s: float) -> Path:
    """One safetensors file with networks, Adam states, counters and RNG states (metadata: JSON)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for name, net in (("G", G), ("D", D), ("G_ema", G_ema)):
        for k, v in net.state_dict().items():
            tensors[f"{name}.{k}"] = v.detach().cpu().contiguous()
    og, groups_g = _optimizer_tensors("opt_G", opt_G)
    od, groups_d = _optimizer_tensors("opt_D", opt_D)
    tensors.update(og)
    tensors.update(od)
    tensors["pl_mean"] = pl_mean.detach().cpu().reshape(1).float()
    for r, st in enumerate(rng_states):
        for k, v in st.items():
            tensors[f"rng.{r}.{k}"] = v.cpu().contiguous()
    meta = {"format": STATE_FORMAT, "version": "1", "config": json.dumps(dataclasses.asdict(cfg)),
            "step": str(step), "cur_nimg": str(cur_nimg), "elapsed_s": repr(elapsed_s), "world": str(len(rng_states)),
            "opt_G.param_groups": json.dumps(groups_g), "opt_D.param_groups": json.dumps(groups_d)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def read_training_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a training-state file; a folder means its ``training-state.safetensors``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    p = Path(path)
    if p.is_dir():
        p = p / STATE_FILE
    if not p.is_file():
        raise CheckpointError("no training state to resume from", p)
    try:
        with safe_open(str(p), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(p))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad checkpoint
        raise CheckpointError(f"unreadable training state ({exc})", p) from exc
    if meta.get("format") != STATE_FORMAT:
        raise CheckpointError("not an editkit training state", p)
    return tensors, meta


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


# ---------------------------------------------------------------- the loop

class GeneratorTrainer:
    """Holds networks, optimisers and counters; ``run()`` trains until ``cfg.kimg`` or the time limit."""

    def __init__(self, cfg: TrainConfig, resume: str | Path | None = None, show_progress: bool = True,
                 log: Callable[[str], None] | None = None):
        self.cfg = cfg.validate()
        self.dist = _Dist("cuda" if (cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()))
                          else "cpu")
        self.device = _resolve_device(cfg, self.dist.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.show_progress = show_progress and self.dist.rank == 0
        self._log = log or (lambda msg: print(msg, flush=True))
        if cfg.batch % self.dist.world:
            raise UsageError(f"--batch {cfg.batch} is not divisible by the {self.dist.world} processes")
        self.local_batch = cfg.batch // self.dist.world
        self.out = Path(cfg.out)
        self.amp = (self.device.type == "cuda") if cfg.amp is None else bool(cfg.amp)
        self.policy = parse_policy(cfg.augment)

        self.G, self.D = build_networks(cfg)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.G.to(self.device, memory_format=fmt).train()
        self.D.to(self.device, memory_format=fmt).train()
        self.projected = cfg.d_arch == "projected"
        if self.projected:
            self.D.trunk.to(self.device)
        self.dist.broadcast_module(self.G)
        self.dist.broadcast_module(self.D)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_G = _lazy_adam(self.G.parameters(), cfg.g_lr, cfg, cfg.pl_interval, cfg.pl_weight > 0)
        self.opt_D = _lazy_adam(self.D.parameters(), cfg.d_lr, cfg, cfg.r1_interval, self._uses_r1)
        self.pl_mean = torch.zeros([], device=self.device)
        self.step = 0
        self.cur_nimg = 0
        self.elapsed_prev = 0.0
        torch.manual_seed(cfg.seed * 65537 + 1 + self.dist.rank)  # the synthesis noise stream, per rank
        if resume is not None:
            self._restore(resume)

        self._run_G = self._forward_G
        self._run_D = self.D
        use_compile = (self.device.type == "cuda") if cfg.compile is None else bool(cfg.compile and self.device.type == "cuda")
        if use_compile:
            self._run_G = torch.compile(self._forward_G)
            self._run_D = torch.compile(self.D)
        self._compiled = use_compile
        self.dataset = None

    # -------------------------------------------------- state
    def _restore(self, path: str | Path) -> None:
        tensors, meta = read_training_state(path)
        saved = TrainConfig.from_dict(json.loads(meta["config"]))
        for key in ("resolution", "z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max",
                    "d_channel_base", "d_channel_max", "mbstd_group", "d_arch", "projected_net", "projected_size",
                    "projected_width"):
            if getattr(saved, key) != getattr(self.cfg, key):
                raise UsageError(f"cannot resume: {key} is {getattr(saved, key)} in the checkpoint, "
                                 f"{getattr(self.cfg, key)} now")
        try:
            self.G.load_state_dict(_prefixed(tensors, "G."))
            self.D.load_state_dict(_prefixed(tensors, "D."))
            self.G_ema.load_state_dict(_prefixed(tensors, "G_ema."))
            _load_optimizer("opt_G", self.opt_G, tensors, json.loads(meta["opt_G.param_groups"]))
            _load_optimizer("opt_D", self.opt_D, tensors, json.loads(meta["opt_D.param_groups"]))
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"training state does not match the networks ({exc})", path) from exc
        self.step, self.cur_nimg = int(meta["step"]), int(meta["cur_nimg"])
        self.elapsed_prev = float(meta.get("elapsed_s", 0.0))
        self.pl_mean = tensors["pl_mean"].reshape([]).to(self.device)
        if int(meta.get("world", 1)) == self.dist.world:
            rng = _prefixed(tensors, f"rng.{self.dist.rank}.")
            torch.set_rng_state(rng["cpu"])
            if self.device.type == "cuda" and "cuda" in rng:
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        elif self.dist.rank == 0:
            self._log(f"resuming with {self.dist.world} processes instead of {meta.get('world')}: "
                      "the noise RNG restarts, the run is not bit-exact")

    def _rng_state(self) -> dict[str, torch.Tensor]:
        st = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            st["cuda"] = torch.cuda.get_rng_state(self.device)
        return st

    def save_state(self, elapsed: float) -> Path | None:
        states = self.dist.gather_objects(self._rng_state())
        if self.dist.rank != 0:
            return None
        return save_training_state(self.out / STATE_FILE, self.cfg, self.G, self.D, self.G_ema, self.opt_G,
                                   self.opt_D, self.step, self.cur_nimg, self.pl_mean, states, elapsed)

    def save_network(self, name: str, elapsed: float) -> Path | None:
        """G_ema + D in editkit's safetensors format."""
        if self.dist.rank != 0:
            return None
        from .. import save_network

        meta = {"kind": "editkit-trained-generator", "kimg": self.cur_nimg / 1000, "step": self.step,
                "train_seconds": round(elapsed, 1), "dataset": str(self.cfg.data),
                "dataset_images": len(self.dataset) if self.dataset is not None else None,
                "training_config": dataclasses.asdict(self.cfg)}
        path = self.out / name
        if self.projected:  # its heads live in the training state; the trunk is a face network's own file
            meta["discriminator"] = f"projected on {self.cfg.projected_net} (heads in {STATE_FILE})"
        save_network(path, self.G_ema, None if self.projected else self.D, meta=meta)
        return path

    @property
    def _uses_r1(self) -> bool:
        """R1 on the StyleGAN2 discriminator only (Projected GAN's heads are spectrally normalised)."""
        return self.cfg.r1_gamma > 0 and self.cfg.d_arch != "projected"

    # -------------------------------------------------- forward passes
    def _part(self) -> tuple[int, int]:
        return self.dist.rank * self.local_batch, self.cfg.batch

    def _latents(self, gen: torch.Generator, n_global: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z, z2, cutoff) for this rank's rows; cutoff == num_ws means no mixing for that row."""
        off = self.dist.rank * (n_global // self.dist.world)
        n = n_global // self.dist.world
        z = torch.randn(n_global, self.G.z_dim, generator=gen)
        z2 = torch.randn(n_global, self.G.z_dim, generator=gen)
        num_ws = self.G.num_ws
        cutoff = torch.randint(1, num_ws, (n_global,), generator=gen)
        mix = torch.rand(n_global, generator=gen) < self.cfg.style_mixing
        cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, num_ws))
        sl = slice(off, off + n)
        return z[sl].to(self.device), z2[sl].to(self.device), cutoff[sl].to(self.device)

    def _forward_G(self, z: torch.Tensor, z2: torch.Tensor, cutoff: torch.Tensor,
                   update_w_avg: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        ws = self.G.mapping(z, update_w_avg=update_w_avg)
        if self.cfg.style_mixing > 0:
            ws2 = self.G.mapping(z2)
            layer = torch.arange(ws.shape[1], device=ws.device)[None, :, None]
            ws = torch.where(layer < cutoff[:, None, None], ws, ws2)
        return self.G.synthesis(ws, noise_mode=self.cfg.noise_mode), ws

    def _augment(self, x: torch.Tensor, gen: torch.Generator, n_global: int) -> torch.Tensor:
        if not self.policy:
            return x
        return diff_augment(x, self.policy, gen, (self.dist.rank * (n_global // self.dist.world), n_global))

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    # -------------------------------------------------- one iteration
    def train_step(self, real_u8: torch.Tensor, flips: torch.Tensor) -> dict[str, float]:
        """One iteration: G main, G path-length reg, D main, D R1 reg, EMA update."""
        cfg, step, B = self.cfg, self.step, self.cfg.batch
        stats: dict[str, float] = {}
        real = batch_to_float(real_u8, flips, self.device)

        # G main: non-saturating loss through D (D frozen)
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        gen = _step_generator(cfg.seed, step, 1)
        z, z2, cutoff = self._latents(gen, B)
        self.opt_G.zero_grad(set_to_none=True)
        with self._autocast():
            fake, _ = self._run_G(z, z2, cutoff)
            fake_logits = self._run_D(self._augment(fake, gen, B))
        loss_G = hinge_g_loss(fake_logits) if self.projected else generator_loss(fake_logits)
        loss_G.backward()
        self.dist.average_grads(self.G)
        self.opt_G.step()
        stats["loss_G"] = float(loss_G.detach())

        # G reg: path-length (lazy)
        if cfg.pl_weight > 0 and step % cfg.pl_interval == 0:
            gen = _step_generator(cfg.seed, step, 2)
            n_pl = max(B // cfg.pl_batch_shrink, self.dist.world)
            n_pl -= n_pl % self.dist.world
            z, z2, cutoff = self._latents(gen, n_pl)
            self.opt_G.zero_grad(set_to_none=True)
            img, ws = self._forward_G(z, z2, cutoff)
            penalty, new_mean = path_length_penalty(img, ws, self.pl_mean, gen=gen)
            self.pl_mean = self.dist.mean(new_mean.detach())
            (penalty * cfg.pl_weight * cfg.pl_interval).backward()
            self.dist.average_grads(self.G)
            self.opt_G.step()
            stats["pl_penalty"] = float(penalty.detach())

        # D main: logistic loss on reals and fresh fakes (G frozen)
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        gen = _step_generator(cfg.seed, step, 3)
        z, z2, cutoff = self._latents(gen, B)
        self.opt_D.zero_grad(set_to_none=True)
        with self._autocast(), torch.no_grad():  # as NVIDIA: the D phase's G pass also tracks w_avg
            fake, _ = self._run_G(z, z2, cutoff, True)
        if self.dist.world > 1:  # the w_avg update is linear in the batch mean: averaging = global batch
            self.G.mapping.w_avg.copy_(self.dist.mean(self.G.mapping.w_avg))
        with self._autocast():
            fake_logits = self._run_D(self._augment(fake, gen, B))
            real_logits = self._run_D(self._augment(real, gen, B))
        loss_D = (hinge_d_loss if self.projected else discriminator_loss)(real_logits, fake_logits)
        loss_D.backward()
        self.dist.average_grads(self.D)
        self.opt_D.step()
        stats["loss_D"] = float(loss_D.detach())
        stats["D_real"] = float(real_logits.detach().float().mean())
        stats["D_fake"] = float(fake_logits.detach().float().mean())

        # D reg: R1 on (augmented) reals, gradient w.r.t. the un-augmented image, float32, uncompiled
        if self._uses_r1 and step % cfg.r1_interval == 0:
            gen = _step_generator(cfg.seed, step, 4)
            self.opt_D.zero_grad(set_to_none=True)
            real_req = real.detach().requires_grad_(True)
            logits = self.D(self._augment(real_req, gen, B))
            r1 = r1_penalty(real_req, logits)
            (r1 * (cfg.r1_gamma / 2) * cfg.r1_interval).backward()
            self.dist.average_grads(self.D)
            self.opt_D.step()
            stats["r1_penalty"] = float(r1.detach())

        # EMA generator (NVIDIA's half-life in images, with ramp-up)
        ema_nimg = (cfg.ema_kimg if cfg.ema_kimg is not None else B * 10 / 32) * 1000
        if cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.cur_nimg * cfg.ema_rampup)
        beta = 0.5 ** (B / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.detach().lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)
        self.step += 1
        self.cur_nimg += B
        return stats

    # -------------------------------------------------- driver
    def load_data(self) -> None:
        cfg = self.cfg
        cache = cfg.cache_dir if cfg.cache_dir is not None else str(default_cache_dir())
        cache = None if cache == "none" else cache
        if self.dist.rank == 0:
            self._log(f"loading {cfg.data} at {cfg.resolution}px ...")
            self.dataset = load_dataset(cfg.data, cfg.resolution, cache_dir=cache, max_images=cfg.max_images,
                                        workers=cfg.workers)
        self.dist.barrier()
        if self.dist.rank != 0:
            self.dataset = load_dataset(cfg.data, cfg.resolution, cache_dir=cache, max_images=cfg.max_images,
                                        workers=cfg.workers)
        self.sampler = BatchSampler(len(self.dataset), cfg.batch, seed=cfg.seed, mirror=cfg.mirror)

    def samples(self, name: str) -> Path | None:
        if self.dist.rank != 0:
            return None
        n = self.cfg.grid ** 2
        z = torch.randn(n, self.G_ema.z_dim, generator=torch.Generator().manual_seed(1234)).to(self.device)
        with torch.no_grad():
            imgs = torch.cat([self.G_ema(z[i:i + 32], noise_mode="const") for i in range(0, n, 32)])
        return save_grid(self.out / "samples" / name, imgs, self.cfg.grid)

    def run(self, stop_after_steps: int | None = None) -> Path | None:
        """Train to ``cfg.kimg`` (or ``cfg.max_minutes``, or ``stop_after_steps`` more steps).

        Writes grids, snapshots, the log and the training state; returns the final network path
        when the run reached its end, else the training-state path (rank 0; None on other ranks).
        """
        cfg = self.cfg
        if self.dataset is None:
            self.load_data()
        if self.dist.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.json", json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
            if self.step == 0:
                k = min(cfg.grid ** 2, len(self.dataset))
                reals = batch_to_float(self.dataset.images[torch.arange(k)], torch.zeros(k, dtype=torch.bool))
                save_grid(self.out / "samples" / "reals.png", reals, cfg.grid)
                self.samples("fakes000000.png")
        total_nimg = int(cfg.kimg * 1000)
        t_start = time.perf_counter()
        # the time limit counts total training time, including the time before a resume
        deadline = t_start + cfg.max_minutes * 60 - self.elapsed_prev if cfg.max_minutes else None
        next_sample = _next_mark(self.cur_nimg, cfg.sample_kimg)
        next_snapshot = _next_mark(self.cur_nimg, cfg.snapshot_kimg)
        next_log = _next_mark(self.cur_nimg, cfg.log_kimg)
        tick_t, tick_n = time.perf_counter(), self.cur_nimg
        steps_done = 0
        stats: dict[str, float] = {}
        tick_stats: dict[str, list[float]] = {}
        progress = _make_progress(self.show_progress)
        task = progress.add_task("train G", total=total_nimg / 1000, completed=self.cur_nimg / 1000, info="")
        finished = out_of_time = False
        try:
            with progress:
                while self.cur_nimg < total_nimg:
                    idx, flips = self.sampler.indices(self.step)
                    lo = self.dist.rank * self.local_batch
                    sl = slice(lo, lo + self.local_batch)
                    stats = self.train_step(self.dataset.images[idx[sl]], flips[sl])
                    for k, v in stats.items():
                        tick_stats.setdefault(k, []).append(v)
                    steps_done += 1
                    now = time.perf_counter()
                    rate = (self.cur_nimg - tick_n) / max(now - tick_t, 1e-9)
                    progress.update(task, completed=self.cur_nimg / 1000,
                                    info=f"{rate:6.1f} img/s  G {stats['loss_G']:.3f}  D {stats['loss_D']:.3f}")
                    elapsed = self.elapsed_prev + now - t_start
                    if self.cur_nimg >= next_log:
                        self._write_log(tick_stats, rate, elapsed)
                        tick_t, tick_n, tick_stats = now, self.cur_nimg, {}
                        next_log = _next_mark(self.cur_nimg, cfg.log_kimg)
                    out_of_time = self.dist.any(deadline is not None and now >= deadline)  # ranks stop together
                    stop = out_of_time or (stop_after_steps is not None and steps_done >= stop_after_steps)
                    if self.cur_nimg >= next_sample or self.cur_nimg >= total_nimg or stop:
                        self.samples(f"fakes{self.cur_nimg // 1000:06d}.png")
                        next_sample = _next_mark(self.cur_nimg, cfg.sample_kimg)
                    if self.cur_nimg >= next_snapshot:
                        self.save_network(f"network-snapshot-{self.cur_nimg // 1000:06d}.safetensors", elapsed)
                        self.save_state(elapsed)
                        next_snapshot = _next_mark(self.cur_nimg, cfg.snapshot_kimg)
                    if stop:
                        if out_of_time and self.dist.rank == 0:
                            self._log(f"time limit of {cfg.max_minutes} min reached at {self.cur_nimg / 1000:.1f} kimg")
                        break
            finished = self.cur_nimg >= total_nimg or out_of_time
        except KeyboardInterrupt:
            self.save_state(self.elapsed_prev + time.perf_counter() - t_start)
            raise
        elapsed = self.elapsed_prev + time.perf_counter() - t_start
        state = self.save_state(elapsed)
        if self.dist.rank != 0:
            return None
        if tick_stats:
            self._write_log(tick_stats, (self.cur_nimg - tick_n) / max(time.perf_counter() - tick_t, 1e-9), elapsed)
        if finished:
            return self.save_network(FINAL_NETWORK, elapsed)
        return state

    def _write_log(self, stats: dict[str, list[float]], rate: float, elapsed: float) -> None:
        """One ``log.jsonl`` line: counters, throughput and each statistic's mean over the tick."""
        if self.dist.rank != 0:
            return
        rec = {"step": self.step, "kimg": self.cur_nimg / 1000, "elapsed_s": round(elapsed, 2),
               "img_per_s": round(rate, 2), **{k: round(sum(v) / len(v), 5) for k, v in stats.items()}}
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")

    def close(self) -> None:
        self.dist.close()


def _next_mark(cur_nimg: int, every_kimg: float) -> float:
    if every_kimg <= 0:
        return math.inf
    step = every_kimg * 1000
    return (math.floor(cur_nimg / step) + 1) * step


def _make_progress(enabled: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                    TextColumn("{task.completed:.2f}/{task.total:g} kimg"), TimeElapsedColumn(),
                    TimeRemainingColumn(), TextColumn("{task.fields[info]}"), disable=not enabled)


def train_generator(cfg: TrainConfig, resume: str | Path | None = None, show_progress: bool = True) -> Path | None:
    """Train a StyleGAN2 generator as configured; returns the final network (rank 0)."""
    trainer = GeneratorTrainer(cfg, resume=resume, show_progress=show_progress)
    try:
        return trainer.run()
    finally:
        trainer.close()
