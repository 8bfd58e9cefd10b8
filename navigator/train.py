"""Navigator training (contrafeat.md §4): style-mixed codes, random noise, binary or prototype loss
plus diversity, Adam(β=(0, 0.99)), NaN-safe steps, exact resume, the authors' mixed precision on CUDA
(the generator's own float16 blocks, sensor and loss in float32; bf16 autocast on request), and
DistributedDataParallel under ``torchrun`` (NCCL on GPUs, gloo on the CPU).

Every random draw of an iteration (codes, directions, strengths, the mirror coin) comes from one
sampling generator seeded with ``config.seed`` and drawn for the *global* batch on every process;
each process then takes its slice. With ``noise_mode='const'`` a run on W processes therefore equals
a single-process run with the same global batch; generator noise (``'random'``, the paper's
setting) is drawn per process.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from safetensors.torch import load_file, save_file

from editkit.atomic import atomic_path, atomic_write_text
from editkit.errors import CheckpointError, UsageError
from editkit.photos import save_image

from . import losses
from .bases import contrafeat_navigator, ganspace, pca_basis, sefa, with_learned_attention, DEFAULT_PCA_SAMPLES
from .io import save_navigator
from .model import Navigator
from .sensors import build_sensor
from .traverse import traversal_grid

VARIANTS = ("binary", "prototype")
DIRECTION_SOURCES = ("pca", "free", "ganspace", "sefa")
STATE_FILE = "training-state.safetensors"
#: Settings that must match for a resumed run to continue the same training (kimg may grow).
RESUME_KEYS = ("variant", "num_directions", "directions", "num_components", "batch", "lr", "div_lambda", "sigma",
               "n_colors", "noise_mode", "sensor", "sensor_seed", "seed", "pca_samples")
FINAL_FILE = "navigator.safetensors"
PRECISIONS = ("auto", "mixed", "fp32", "bf16")
#: Gradient clean-up before each step (the authors': NaN -> 0, +-inf -> +-1e5).
GRAD_POSINF = 1e5


def resolve_precision(precision: str, device_type: str) -> str:
    """The precision a run uses: ``'mixed'`` (the authors': the generator's own ``num_fp16_res``
    blocks in float16, the rest of it, the sensor and the loss in float32), ``'fp32'`` or ``'bf16'``
    (bfloat16 autocast over generator and sensor, only when asked). ``'auto'``: mixed on CUDA,
    fp32 on the CPU."""
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "mixed" if device_type == "cuda" else "fp32"
    return precision


def clean_gradients(params) -> None:
    """NaN -> 0, +inf -> 1e5, -inf -> -1e5 on every gradient, in place."""
    for p in params:
        if p.grad is not None:
            torch.nan_to_num_(p.grad, nan=0.0, posinf=GRAD_POSINF, neginf=-GRAD_POSINF)


PAPER_PCA_SAMPLES = 1_000_000
#: The settings of the authors' published runs (contrafeat.md §8). n_colors 0 = one z per W+ layer.
PRESETS: dict[str, dict] = {
    "paper-binary": dict(variant="binary", num_directions=30, num_components=100, batch=12, kimg=200.0, sigma=1.0,
                         n_colors=2, lr=0.05, div_lambda=0.1, pca_samples=PAPER_PCA_SAMPLES),
    "paper-prototype": dict(variant="prototype", num_directions=30, num_components=100, batch=10, kimg=200.0,
                            sigma=1.0, n_colors=2, lr=0.05, div_lambda=0.1, pca_samples=PAPER_PCA_SAMPLES),
    "paper-real-image": dict(variant="binary", num_directions=64, num_components=300, batch=8, kimg=200.0,
                             sigma=0.5, n_colors=0, lr=0.1, div_lambda=0.01, pca_samples=PAPER_PCA_SAMPLES),
}
PRESET_ALIASES = {"paper": "paper-binary", "final": "paper-real-image"}


@dataclass
class TrainConfig:
    """Training settings; defaults are the paper's (contrafeat.md §4)."""

    variant: str = "binary"            # binary | prototype
    num_directions: int = 30
    directions: str = "pca"            # pca (ContraFeat), free, ganspace / sefa (+attention: fixed directions)
    num_components: int = 100          # N, top PCA components spanning the directions
    kimg: float = 200.0                # thousands of training codes (batch samples)
    batch: int = 12                    # global batch b (even for binary)
    lr: float = 0.05
    div_lambda: float = 0.1
    sigma: float = 1.0                 # strengths s ~ U(-σ, σ)
    n_colors: int = 2                  # style-mixing segments (0: one per W+ layer, the final model's setting)
    pca_samples: int = DEFAULT_PCA_SAMPLES
    noise_mode: str = "random"
    precision: str = "auto"            # auto | mixed | fp32 | bf16 (see resolve_precision)
    sensor: str = "alexnet"
    sensor_seed: int = 0
    seed: int = 0
    snapshot_every: int = 1000         # iterations between checkpoints + traversal grids (0: only at the end)
    grid_directions: int = 16          # rows of the traversal grid
    grid_frames: int = 7

    def validate(self) -> None:
        if self.variant not in VARIANTS:
            raise UsageError(f"--variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.directions not in DIRECTION_SOURCES:
            raise UsageError(f"directions must be one of {DIRECTION_SOURCES}, got {self.directions!r}")
        if self.num_directions < (2 if self.variant == "binary" else 1):
            raise UsageError("need at least 2 directions for the binary variant")
        if self.batch < 1 or (self.variant == "binary" and self.batch % 2):
            raise UsageError(f"--batch must be a positive even number for the binary variant, got {self.batch}")
        if self.kimg <= 0 or self.lr <= 0 or self.sigma <= 0 or self.n_colors < 0:
            raise UsageError("kimg, lr, sigma must be positive and n_colors >= 0")
        if self.precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.noise_mode not in ("random", "const", "none"):
            raise UsageError(f"noise_mode must be random, const or none, got {self.noise_mode!r}")

    @classmethod
    def preset(cls, name: str, **overrides) -> "TrainConfig":
        """The authors' published runs (contrafeat.md §8, :data:`PRESETS`); ``overrides`` win.
        ``'paper'`` and ``'final'`` are the older names of paper-binary and paper-real-image."""
        name = PRESET_ALIASES.get(name, name)
        if name not in PRESETS:
            raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def total_iterations(self) -> int:
        return max(1, math.ceil(self.kimg * 1000 / self.batch))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# -- distributed helpers ---------------------------------------------------------------------------

def distributed_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment (0, 1, 0 otherwise)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def distributed_device() -> torch.device:
    """The device this process should use: ``cuda:LOCAL_RANK`` where CUDA exists, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", distributed_env()[2])
    return torch.device("cpu")


def _init_distributed(device: torch.device) -> tuple[int, int]:
    rank, world, _ = distributed_env()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


# -- codes ------------------------------------------------------------------------------------------

def color_cuts(num_ws: int, n_colors: int) -> list[int]:
    """Segment boundaries of the style-mixed codes: ``int(linspace(0, L, n + 1))``, the authors'
    ``get_color_cuts``, so uneven segments put the longer ones last (L=16, n=5: 3,3,3,3,4)."""
    return [int(c) for c in np.linspace(0, num_ws, n_colors + 1)]


@torch.no_grad()
def style_mixed_codes(G, z: torch.Tensor) -> torch.Tensor:
    """z [B, n_colors, z_dim] -> W+ [B, L, w_dim]: the L layers are split into n_colors contiguous
    segments at :func:`color_cuts`, segment c takes mapping(z[:, c]) (no truncation)."""
    cuts = color_cuts(G.num_ws, z.shape[1])
    ws = None
    for c in range(z.shape[1]):
        if cuts[c + 1] == cuts[c]:
            continue                      # more colours than layers: an empty segment
        wc = G.mapping(z[:, c], truncation_psi=1.0)
        if ws is None:
            ws = wc.clone()
        ws[:, cuts[c]:cuts[c + 1]] = wc[:, cuts[c]:cuts[c + 1]]
    return ws


class _Trainable(nn.Module):
    """Navigator + optional prototype images, as one module for DistributedDataParallel."""

    def __init__(self, nav: Navigator, prototypes: nn.Parameter | None):
        super().__init__()
        self.nav = nav
        self.prototypes = prototypes

    def forward(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.nav.offsets(), self.prototypes


def _initial_navigator(G, cfg: TrainConfig, progress: bool = False) -> Navigator:
    if cfg.directions in ("pca", "free"):
        basis = pca_basis(G, cfg.pca_samples, progress=progress) if cfg.directions == "pca" else None
        return contrafeat_navigator(G, cfg.num_directions, cfg.num_components, basis=basis,
                                    seed=cfg.seed, free=cfg.directions == "free")
    base = ganspace(G, cfg.num_directions, n_samples=cfg.pca_samples) if cfg.directions == "ganspace" \
        else sefa(G, cfg.num_directions)
    return with_learned_attention(base, seed=cfg.seed)


class NavigatorTrainer:
    """Holds the training state; :meth:`run` trains to ``config.kimg`` (resuming from ``out_dir``)."""

    def __init__(self, G, config: TrainConfig, out_dir: str | Path, sensor: nn.Module | None = None,
                 nav: Navigator | None = None, discriminator: nn.Module | None = None,
                 sensor_weights: str | Path | None = None, progress: bool = True, extra_info: dict | None = None):
        config.validate()
        self.cfg, self.out = config, Path(out_dir)
        self.G = G.eval().requires_grad_(False)
        self.device = G.w_avg.device
        self.rank, self.world = _init_distributed(self.device)
        cfg = config
        if cfg.variant == "binary" and (cfg.batch // 2) % self.world:
            raise UsageError(f"binary: batch/2 = {cfg.batch // 2} pairs must split evenly over {self.world} processes")
        if cfg.variant == "prototype" and cfg.batch % self.world:
            raise UsageError(f"prototype: batch {cfg.batch} must split evenly over {self.world} processes")
        self.sensor = (sensor if sensor is not None else
                       build_sensor(cfg.sensor, sensor_weights, discriminator, cfg.sensor_seed)).to(self.device)
        self.sensor.requires_grad_(False)
        self.nav = (nav if nav is not None else _initial_navigator(G, cfg, progress and self.rank == 0)).to(self.device)
        if not any(p.requires_grad for p in self.nav.parameters()):
            raise UsageError("this navigator has nothing to train (fixed directions and attention)")
        self.nav.info.update({"variant": cfg.variant, "sensor": getattr(self.sensor, "name", cfg.sensor),
                              "training": asdict(cfg), **(extra_info or {})})
        self.nav.strength_range = [(-cfg.sigma, cfg.sigma)] * self.nav.num_directions
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.prototypes = None
        if cfg.variant == "prototype":
            H = W = G.resolution
            self.prototypes = nn.Parameter((torch.randn(self.nav.num_directions, 3, H, W, generator=gen) * 0.01)
                                           .to(self.device))
        self.module = _Trainable(self.nav, self.prototypes)
        self.ddp = None
        if self.world > 1:
            self.ddp = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.opt = torch.optim.Adam([p for p in self.module.parameters() if p.requires_grad],
                                    lr=cfg.lr, betas=(0.0, 0.99))
        self.sample_gen = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed * 1000 + self.rank)  # generator noise stream of this process
        self.iteration = 0
        self.progress = progress and self.rank == 0
        self.precision = resolve_precision(cfg.precision, self.device.type)
        self.use_bf16 = self.precision == "bf16"
        self.g_half = torch.float16 if self.precision == "mixed" else None
        self.nav.info["precision"] = self.precision
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True   # fixed shapes every iteration
        self.grid_ws = None

    # -- one iteration ----------------------------------------------------------------------------
    def _draw(self, gen: torch.Generator) -> tuple[torch.Tensor, dict]:
        cfg, K = self.cfg, self.nav.num_directions
        z = torch.randn(cfg.batch, cfg.n_colors or self.G.num_ws, self.G.z_dim, generator=gen)
        if cfg.variant == "binary":
            draw = losses.sample_binary(cfg.batch // 2, K, cfg.sigma, gen)
        else:
            draw = losses.sample_prototype(cfg.batch, K, cfg.sigma, gen)
        return z, draw

    def _local(self, z: torch.Tensor, draw: dict) -> tuple[torch.Tensor, dict]:
        """This process's slice of the global draw."""
        if self.world == 1:
            return z, draw
        r, W = self.rank, self.world
        if self.cfg.variant == "binary":
            half = z.shape[0] // 2
            h = half // W
            idx = torch.arange(r * h, (r + 1) * h)
            z = torch.cat([z[idx], z[half + idx]])
            return z, {k: v[idx] for k, v in draw.items()}
        n = z.shape[0] // W
        idx = torch.arange(r * n, (r + 1) * n)
        return z[idx], {"q": draw["q"][idx], "s": draw["s"][idx], "mirror": draw["mirror"]}

    def _loss(self, z: torch.Tensor, draw: dict, noise_mode: str) -> torch.Tensor:
        cfg = self.cfg
        offsets, proto = (self.ddp or self.module)()
        ws = style_mixed_codes(self.G, z.to(self.device))
        settable = hasattr(self.G, "set_precision")
        prev_half = getattr(self.G.synthesis, "half_dtype", None)
        if settable:
            self.G.set_precision(self.g_half)   # mixed: the generator's own float16 blocks
        try:
            main = self._main_loss(ws, offsets, proto, draw, noise_mode)
        finally:
            if settable:
                self.G.set_precision(prev_half)
        div = losses.diversity_loss(offsets.float()) if cfg.div_lambda else offsets.new_zeros(())
        return main.float() + cfg.div_lambda * div

    def _main_loss(self, ws, offsets, proto, draw, noise_mode: str) -> torch.Tensor:
        cfg = self.cfg
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
            if cfg.variant == "binary":
                codes = losses.binary_codes(ws, offsets, draw)
                n_base = ws.shape[0]             # the unedited images need no gradient: no backward pass
                with torch.no_grad():
                    base = self.sensor(self.G.synthesis(codes[:n_base], noise_mode=noise_mode))
                edited = self.sensor(self.G.synthesis(codes[n_base:], noise_mode=noise_mode))
                main = losses.binary_loss([torch.cat([b, e]) for b, e in zip(base, edited)])
            else:
                codes = losses.prototype_codes(ws, offsets, draw)
                feats = self.sensor(self.G.synthesis(codes, noise_mode=noise_mode))
                pfeats = self.sensor(losses.prototype_images(proto, draw["mirror"]))
                main = losses.prototype_loss(feats, pfeats, draw["q"])
        return main

    def step(self) -> float:
        """One optimisation step; returns the (process-local) loss."""
        self._pre_step_rng = (self.sample_gen.get_state(), torch.get_rng_state(),
                              torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None)
        z, draw = self._local(*self._draw(self.sample_gen))
        self.opt.zero_grad(set_to_none=True)
        loss = self._loss(z, draw, self.cfg.noise_mode)
        loss.backward()
        clean_gradients(self.module.parameters())
        self.opt.step()
        self.iteration += 1
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self, seed: int = 12345, noise_mode: str = "const") -> float:
        """Loss on a fixed batch drawn from ``seed`` (no update): for monitoring and tests."""
        z, draw = self._local(*self._draw(torch.Generator().manual_seed(seed)))
        return float(self._loss(z, draw, noise_mode))

    # -- checkpoints ------------------------------------------------------------------------------
    def _rng_states(self) -> dict[str, torch.Tensor]:
        states = {"rng.torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            states["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        if self.world > 1:
            gathered: list = [None] * self.world
            dist.all_gather_object(gathered, {k: v.cpu() for k, v in states.items()})
            states = {f"{k}.{r}": v for r, st in enumerate(gathered) for k, v in st.items()}
        states["rng.sample"] = self.sample_gen.get_state()
        return states

    def save_checkpoint(self) -> None:
        """Write the full training state (weights, optimiser, every RNG) and a navigator snapshot."""
        rng = self._rng_states()   # collective: every rank takes part
        if self.rank != 0:
            return
        t = {f"module.{k}": v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        osd = self.opt.state_dict()
        for i, st in osd["state"].items():
            for name, v in st.items():
                t[f"opt.{i}.{name}"] = torch.as_tensor(v).detach().cpu().contiguous()
        t.update({k: v.contiguous() for k, v in rng.items()})
        meta = {"iteration": str(self.iteration), "world_size": str(self.world),
                "config": json.dumps(asdict(self.cfg)), "navigator": json.dumps(self.nav.config()),
                "param_groups": json.dumps(osd["param_groups"])}
        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out / STATE_FILE) as tmp:
            save_file(t, str(tmp), metadata=meta)
        save_navigator(self.nav, self.out / f"navigator-{self.iteration:06d}.safetensors")

    def load_checkpoint(self, path: str | Path | None = None) -> bool:
        """Restore from ``out_dir``'s training state; False when there is none."""
        p = Path(path) if path is not None else self.out / STATE_FILE
        if not p.is_file():
            return False
        from safetensors import safe_open
        try:
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata()
            saved = json.loads(meta["config"])
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"unreadable training state ({exc})", path=p) from None
        now = asdict(self.cfg)
        diff = [f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in RESUME_KEYS if saved.get(k) != now[k]]
        if diff:
            raise UsageError(f"cannot resume with different settings ({'; '.join(diff)}); "
                             f"use another output folder or the original settings", path=p)
        try:
            t = load_file(str(p))
            self.module.load_state_dict({k[7:]: v.to(self.device) for k, v in t.items() if k.startswith("module.")})
            osd = self.opt.state_dict()
            osd["param_groups"] = json.loads(meta["param_groups"])
            state: dict = {}
            for k, v in t.items():
                if k.startswith("opt."):
                    _, i, name = k.split(".", 2)
                    state.setdefault(int(i), {})[name] = v if name == "step" else v.to(self.device)
            osd["state"] = state
            self.opt.load_state_dict(osd)
            self.sample_gen.set_state(t["rng.sample"])
            saved_world = int(meta.get("world_size", 1))
            if saved_world == self.world:
                sfx = f".{self.rank}" if self.world > 1 else ""
                torch.set_rng_state(t[f"rng.torch{sfx}"])
                if self.device.type == "cuda" and f"rng.cuda{sfx}" in t:
                    torch.cuda.set_rng_state(t[f"rng.cuda{sfx}"], self.device)
            self.iteration = int(meta["iteration"])
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"cannot resume from this training state ({exc})", path=p) from None
        return True

    def _save_on_interrupt(self, done: int) -> None:
        """Ctrl-C inside a step (before the update): rewind that step's random draws and save the
        state after the last finished step, so that resuming matches an uninterrupted run."""
        if self.world > 1 or self.iteration != done:
            return                          # collective save impossible / the update already happened
        sample_state, cpu_state, cuda_state = self._pre_step_rng
        self.sample_gen.set_state(sample_state)
        torch.set_rng_state(cpu_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state, self.device)
        self.opt.zero_grad(set_to_none=True)
        self.save_checkpoint()

    def save_grid(self) -> Path | None:
        if self.rank != 0:
            return None
        if self.grid_ws is None:
            g = torch.Generator().manual_seed(self.cfg.seed + 7)
            z = torch.randn(1, self.G.z_dim, generator=g).to(self.device)
            self.grid_ws = self.G.mapping(z, truncation_psi=0.7)
        n = min(self.cfg.grid_directions, self.nav.num_directions)
        grid = traversal_grid(self.G, self.nav, self.grid_ws, range(n), self.cfg.sigma, self.cfg.grid_frames,
                              cell_size=min(self.G.resolution, 128))
        return save_image(self.out / f"traversal-{self.iteration:06d}.png", grid)

    # -- the loop ---------------------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if self.rank == 0:
            with open(self.out / "log.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def _truncate_log(self) -> None:
        log = self.out / "log.jsonl"
        if self.rank == 0 and log.is_file():
            keep = [ln for ln in log.read_text(encoding="utf-8").splitlines()
                    if ln.strip() and json.loads(ln).get("iteration", 0) <= self.iteration]
            atomic_write_text(log, "".join(k + "\n" for k in keep))

    def run(self, resume: bool = True, max_iterations: int | None = None) -> Navigator:
        """Train until ``config.kimg`` (or ``max_iterations`` more steps, to simulate an interruption)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        if resume and self.load_checkpoint():
            self._truncate_log()
        if self.rank == 0:
            atomic_write_text(self.out / "config.json", json.dumps(asdict(cfg), indent=2))
        total = cfg.total_iterations
        stop = total if max_iterations is None else min(total, self.iteration + max_iterations)
        per_iter = (2.5 * cfg.batch) if cfg.variant == "binary" else (2 * cfg.batch)
        columns = [TextColumn("[bold]navigator"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[ips]:.1f} img/s"),
                   TimeRemainingColumn()]
        with Progress(*columns, disable=not self.progress) as bar:
            task = bar.add_task("train", total=total, completed=self.iteration, loss=float("nan"), ips=0.0)
            while self.iteration < stop:
                t0 = time.perf_counter()
                done = self.iteration
                try:
                    loss = self.step()
                except KeyboardInterrupt:
                    self._save_on_interrupt(done)
                    raise
                dt = time.perf_counter() - t0
                bar.update(task, completed=self.iteration, loss=loss, ips=per_iter / max(dt, 1e-9))
                self._log({"iteration": self.iteration, "kimg": self.iteration * cfg.batch / 1000,
                           "loss": loss, "sec_per_iter": dt, "img_per_sec": per_iter / max(dt, 1e-9)})
                if cfg.snapshot_every and self.iteration % cfg.snapshot_every == 0 and self.iteration < total:
                    self.save_checkpoint()
                    self.save_grid()
        if self.iteration >= total:
            self.save_checkpoint()
            if self.rank == 0:
                save_navigator(self.nav, self.out / FINAL_FILE)
                self.save_grid()
        return self.nav


def train_navigator(G, config: TrainConfig, out_dir: str | Path, sensor: nn.Module | None = None,
                    resume: bool = True, **kwargs) -> Navigator:
    """Train a navigator on ``G`` into ``out_dir`` (resuming from it when a training state exists).

    ``kwargs`` go to :class:`NavigatorTrainer` (``nav``, ``discriminator``, ``sensor_weights``,
    ``progress``, ``extra_info``). Returns the trained navigator (also saved as
    ``out_dir/navigator.safetensors``).
    """
    max_iterations = kwargs.pop("max_iterations", None)
    return NavigatorTrainer(G, config, out_dir, sensor=sensor, **kwargs).run(resume=resume,
                                                                               max_iterations=max_iterations)
