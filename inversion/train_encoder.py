"""Train an encoder (light or e4e) for any generator.

Every step draws a batch of the generator's own samples with known W+ codes (style-mixed, so
the layers differ) - loss = ``latent_weight`` * MSE(codes) + ``image_weight`` * MSE(image)
(+ LPIPS-VGG16 when a VGG16 file is found, + ``id_weight`` * identity loss: 1 - cosine of the
face-recognition descriptors of image and reconstruction, ``editkit.facenets``) - and, if ``real_data`` (a folder or zip of aligned
face images) is given, a share of real images with the image loss only.

Exact resume: Ctrl-C saves the finished steps; each step's batch is drawn from a generator seeded by (seed, step, rank), so the
data of step k never depends on what ran before; the checkpoint holds the weights, the
optimiser state and the step. DDP: launch with ``torchrun --nproc_per_node N``; each rank
takes ``batch_size // world_size`` samples (gloo on CPU, nccl on CUDA) and rank 0 writes files.

Files in ``out_dir``: ``checkpoint.pt`` (training state, read with ``weights_only=True``),
``encoder.safetensors`` (the final encoder, for :func:`inversion.load_encoder`),
``preview.png`` (targets over reconstructions) and ``log.jsonl`` (losses).
"""
from __future__ import annotations

import io
import json
import logging
import os
import time
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from editkit.atomic import atomic_path, atomic_write_text
from editkit.errors import BadInputError, CheckpointError, UsageError

from .encoders import LatentEncoder, build_encoder, save_encoder
from .losses import IdentityLoss, LPIPSDistance, find_vgg16

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass
class EncoderTrainConfig:
    """Hyper-parameters of encoder training (all JSON-able; stored in every checkpoint)."""

    arch: str = "light"  # 'light' or 'e4e'
    steps: int = 20000
    batch_size: int = 16  # global batch (split across DDP ranks)
    lr: float = 1e-3
    latent_weight: float = 1.0
    image_weight: float = 1.0
    lpips_weight: float = 0.8  # used only when a VGG16 file is found
    id_weight: float = 0.0  # identity loss (1 - cosine of editkit.facenets recognition descriptors)
    truncation_psi: float = 1.0  # for the synthetic codes
    style_mix_prob: float = 0.9  # probability that a synthetic code mixes two w's
    real_data: str | None = None  # folder or zip of aligned face images (optional)
    real_fraction: float = 0.5  # share of each batch taken from real_data
    width: int = 32  # light encoder: channels of the first stage
    checkpoint_every: int = 1000
    preview_every: int = 1000
    seed: int = 0
    vgg16: str | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderTrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise UsageError(f"unknown encoder training option(s): {', '.join(sorted(unknown))}")
        return cls(**d)


class RealImages:
    """Aligned face images from a folder (recursive) or a zip, decoded on demand as [3, R, R] in [-1, 1]."""

    def __init__(self, path: str | Path, resolution: int):
        self.path, self.resolution = Path(path), int(resolution)
        if self.path.is_dir():
            self.names = sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*")
                                if p.suffix.lower() in IMAGE_SUFFIXES)
            self._zip = None
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            self.names = sorted(n for n in self._zip.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise BadInputError("real_data must be a folder or a .zip of images", path=self.path)
        if not self.names:
            raise BadInputError("no images found", path=self.path)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> torch.Tensor:
        from PIL import Image

        name = self.names[i]
        try:
            if self._zip is not None:
                im = Image.open(io.BytesIO(self._zip.read(name)))
            else:
                im = Image.open(self.path / name)
            im = im.convert("RGB").resize((self.resolution, self.resolution), Image.LANCZOS)
        except Exception as exc:  # noqa: BLE001 - any decoding problem
            raise BadInputError(f"cannot read image {name} ({exc})", path=self.path) from exc
        a = torch.from_numpy(np.asarray(im, dtype=np.float32).copy()).permute(2, 0, 1)
        return a / 127.5 - 1.0


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The random stream of one step on one rank (independent of anything run before)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7919 + rank * 104_729) % (2 ** 63 - 1))


@torch.no_grad()
def sample_codes(G, n: int, gen: torch.Generator, psi: float = 1.0, mix_prob: float = 0.9) -> torch.Tensor:
    """``n`` style-mixed W+ codes ``[n, num_ws, w_dim]`` (a random crossover layer per mixed code)."""
    device = G.w_avg.device
    z = torch.randn(2, n, G.z_dim, generator=gen).to(device)
    w1 = G.mapping(z[0], truncation_psi=psi)
    w2 = G.mapping(z[1], truncation_psi=psi)
    cut = torch.randint(1, G.num_ws, (n,), generator=gen)
    mixed = torch.rand(n, generator=gen) < mix_prob
    cut = torch.where(mixed, cut, torch.full_like(cut, G.num_ws)).to(device)
    layer = torch.arange(G.num_ws, device=device).view(1, -1, 1)
    return torch.where(layer < cut.view(-1, 1, 1), w1, w2)


def _dist_info() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def init_distributed(device: str) -> bool:
    """Join a ``torchrun`` process group if launched by one (gloo on CPU, nccl on CUDA)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or torch.distributed.is_initialized():
        return False
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    torch.distributed.init_process_group(backend=backend)
    return True


def load_checkpoint(path: str | Path) -> dict:
    """Read a training checkpoint (``weights_only=True``)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"cannot read training checkpoint ({exc})", path=path) from exc


def _save_preview(path: Path, targets: torch.Tensor, recon: torch.Tensor) -> None:
    from editkit.photos import save_image
    from editkit.render import make_grid, to_uint8

    rows = [list(to_uint8(targets[:8])), list(to_uint8(recon[:8].clamp(-1, 1)))]
    save_image(path, make_grid(rows))


def train_encoder(G, config: EncoderTrainConfig | dict, out_dir: str | Path, resume: bool = True,
                  device: str | torch.device = "cpu", progress: bool = True,
                  init_encoder: LatentEncoder | None = None) -> LatentEncoder:
    """Train an encoder for ``G`` and write it to ``out_dir/encoder.safetensors``; returns it (eval mode).

    ``resume``: continue from ``out_dir/checkpoint.pt`` when present (its config must match
    except for ``steps``, which may be raised). ``init_encoder``: start from these weights.
    """
    cfg = config if isinstance(config, EncoderTrainConfig) else EncoderTrainConfig.from_dict(dict(config))
    out = Path(out_dir)
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    joined = init_distributed(str(device))
    rank, world = _dist_info()
    if cfg.batch_size % world:
        raise UsageError(f"batch_size {cfg.batch_size} is not divisible by the {world} DDP ranks")
    local_batch = cfg.batch_size // world
    n_real = int(round(local_batch * cfg.real_fraction)) if cfg.real_data else 0
    n_fake = local_batch - n_real
    G = G.to(device).eval().requires_grad_(False)
    real = RealImages(cfg.real_data, G.resolution) if cfg.real_data else None

    try:
        with torch.random.fork_rng(devices=[]):  # same initial weights on every rank and every run
            torch.manual_seed(cfg.seed)
            enc = init_encoder if init_encoder is not None else build_encoder(
                cfg.arch, G.num_ws, G.w_dim, G.resolution, latent_avg=G.w_avg.detach().cpu(),
                **({"width": cfg.width} if cfg.arch == "light" else {}))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    enc = enc.to(device).train()
    opt = torch.optim.Adam(enc.net.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    start = 0
    ckpt_path = out / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        saved = dict(state["config"])
        mismatch = [k for k in saved if k != "steps" and saved[k] != asdict(cfg).get(k)]
        if mismatch:
            raise UsageError(f"checkpoint was trained with different settings ({', '.join(mismatch)}); "
                             "use a new output folder or the same options", )
        enc.load_state_dict(state["encoder"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
    model = enc
    if joined or world > 1:
        model = torch.nn.parallel.DistributedDataParallel(enc, device_ids=[device.index] if device.type == "cuda" else None)

    vgg = find_vgg16(cfg.vgg16)
    lpips = LPIPSDistance(vgg).to(device) if vgg is not None and cfg.lpips_weight > 0 else None
    if cfg.id_weight < 0:
        raise UsageError(f"id_weight must be >= 0, got {cfg.id_weight}")
    identity = IdentityLoss().to(device) if cfg.id_weight > 0 else None
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if lpips is None:
            log.info("encoder training without LPIPS (no VGG16 file): image loss is pixel MSE only")

    def save_state(step: int) -> None:
        if rank != 0:
            return
        state = {"step": step, "encoder": enc.state_dict(), "optimizer": opt.state_dict(), "config": asdict(cfg),
                 "arch": cfg.arch, "generator_config": json.dumps(getattr(G, "config", {}))}
        with atomic_path(ckpt_path) as tmp:
            torch.save(state, tmp)

    bar = None
    if progress and rank == 0:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("encoder"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                       TextColumn("{task.fields[info]}"))
        task = bar.add_task("train", total=cfg.steps, completed=start, info="")
        bar.start()
    log_lines: list[str] = []
    completed = start

    def checkpoint(step: int) -> None:
        save_state(step)
        if rank == 0:
            with open(out / "log.jsonl", "a", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in log_lines))
            log_lines.clear()

    try:
        t0 = time.perf_counter()
        for step in range(start, cfg.steps):
            gen = step_generator(cfg.seed, step, rank)
            targets, losses = [], {}
            loss = torch.zeros((), device=device)
            if n_fake:
                ws_true = sample_codes(G, n_fake, gen, cfg.truncation_psi, cfg.style_mix_prob)
                with torch.no_grad():
                    fake = G.synthesis(ws_true, noise_mode="const")
                targets.append(fake)
            if n_real:
                idx = torch.randint(0, len(real), (n_real,), generator=gen).tolist()
                targets.append(torch.stack([real[i] for i in idx]).to(device))
            x = torch.cat(targets)
            ws = model(x)
            recon = G.synthesis(ws, noise_mode="const")
            if n_fake:
                losses["latent"] = F.mse_loss(ws[:n_fake], ws_true)
                loss = loss + cfg.latent_weight * losses["latent"]
            losses["image"] = F.mse_loss(recon, x)
            loss = loss + cfg.image_weight * losses["image"]
            if lpips is not None:
                losses["lpips"] = lpips(recon, x).mean()
                loss = loss + cfg.lpips_weight * losses["lpips"]
            if identity is not None:
                losses["identity"] = identity(recon, x).mean()
                loss = loss + cfg.id_weight * losses["identity"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done = completed = step + 1
            if rank == 0:
                record = {"step": done, **{k: round(float(v.detach()), 6) for k, v in losses.items()}}
                log_lines.append(json.dumps(record))
                if bar is not None:
                    bar.update(task, completed=done,
                               info=" ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "step"))
                if done % cfg.preview_every == 0 or done == cfg.steps:
                    _save_preview(out / "preview.png", x.detach(), recon.detach())
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                checkpoint(done)
        if rank == 0 and start < cfg.steps:
            log.info("encoder training: %d steps in %.1f s", cfg.steps - start, time.perf_counter() - t0)
    except KeyboardInterrupt:
        if completed > start and log_lines:  # keep the finished steps: rerunning resumes exactly
            checkpoint(completed)
            log.warning("interrupted: state saved at step %d in %s", completed, ckpt_path)
        raise
    finally:
        if bar is not None:
            bar.stop()
    enc.eval()
    if rank == 0:
        save_encoder(out / "encoder.safetensors", enc, meta={"steps": cfg.steps, "config": asdict(cfg),
                                                              "generator": getattr(G, "config", {})})
        atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))
    if joined:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return enc
