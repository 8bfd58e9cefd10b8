"""``editkit train generator``: train a StyleGAN2 generator (+ discriminator) on a folder or zip of images."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..cli_app import train_app
from ..errors import UsageError


@train_app.command("generator")
def train_generator_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="Training images: a folder (searched recursively) or a .zip of JPEG/PNG files; centre-cropped to square and resized on load."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: network-*.safetensors (G_ema + D), samples/*.png grids, log.jsonl, config.json, training-state.safetensors."),
    resolution: int = typer.Option(64, "--resolution", "-r", help="Output resolution (power of two >= 8); num_ws = 2*log2(resolution) - 2."),
    kimg: float = typer.Option(1000.0, "--kimg", help="Training length in thousands of real images shown to D."),
    batch: int = typer.Option(32, "--batch", help="Global batch size (split over torchrun processes)."),
    z_dim: int = typer.Option(128, "--z-dim", help="Latent z size."),
    w_dim: int = typer.Option(128, "--w-dim", help="Intermediate latent w size."),
    mapping_layers: int = typer.Option(2, "--mapping-layers", help="Fully connected layers of the mapping network (official: 8; 2 is NVIDIA's 'auto' for small sets)."),
    mapping_lr_mul: float = typer.Option(0.01, "--mapping-lr-mul", help="Learning-rate multiplier of the mapping network."),
    channel_base: int = typer.Option(4096, "--channel-base", help="Channels at resolution r are min(channel_base // r, channel_max) (official 32768)."),
    channel_max: int = typer.Option(128, "--channel-max", help="Upper bound on channels per layer (official 512)."),
    d_channel_base: Optional[int] = typer.Option(None, "--d-channel-base", help="Discriminator channel base (default: same as G)."),
    d_channel_max: Optional[int] = typer.Option(None, "--d-channel-max", help="Discriminator channel max (default: same as G)."),
    mbstd_group: int = typer.Option(4, "--mbstd-group", help="Minibatch-std group size of D (per process)."),
    d_arch: str = typer.Option("stylegan2", "--d-arch", help="Discriminator: stylegan2 (official), or projected: Projected-GAN heads on a frozen face network's features (hinge loss, no R1)."),
    projected_net: str = typer.Option("recognition", "--projected-net", help="--d-arch projected: the frozen trunk (recognition, age_gender, expression, landmarks68)."),
    projected_size: int = typer.Option(112, "--projected-size", help="--d-arch projected: images are resized to this size for the trunk."),
    projected_width: int = typer.Option(64, "--projected-width", help="--d-arch projected: channels of the per-scale heads."),
    g_lr: float = typer.Option(0.0025, "--g-lr", help="Adam learning rate of G."),
    d_lr: float = typer.Option(0.0025, "--d-lr", help="Adam learning rate of D."),
    r1_gamma: float = typer.Option(0.5, "--r1-gamma", help="R1 weight gamma (0 disables; NVIDIA 'auto' gives 0.0002 * res^2 / batch)."),
    r1_interval: int = typer.Option(16, "--r1-interval", help="Lazy R1: apply every N steps (scaled by N)."),
    pl_weight: float = typer.Option(0.0, "--pl-weight", help="Path-length regularisation weight (official 2; 0 disables, the fast default)."),
    pl_interval: int = typer.Option(4, "--pl-interval", help="Lazy path-length regularisation interval."),
    style_mixing: float = typer.Option(0.9, "--style-mixing", help="Probability of style mixing per sample."),
    ema_kimg: Optional[float] = typer.Option(None, "--ema-kimg", help="Half-life of the EMA generator in kimg (default batch * 10 / 32)."),
    ema_rampup: Optional[float] = typer.Option(0.05, "--ema-rampup", help="EMA ramp-up ratio (half-life <= rampup * images seen); pass 0 to disable."),
    augment: str = typer.Option("translation,cutout", "--augment", help="DiffAugment ops, comma separated: color, translation, cutout; 'none' to disable."),
    mirror: bool = typer.Option(True, "--mirror/--no-mirror", help="Random left-right flips of the training images."),
    noise_mode: str = typer.Option("random", "--noise-mode", help="Synthesis noise during training: random (official), const or none."),
    seed: int = typer.Option(0, "--seed", help="Random seed (initialisation and every training draw)."),
    max_images: Optional[int] = typer.Option(None, "--max-images", help="Use only the first N images (sorted by name)."),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help="Folder for the decoded-dataset cache ('none' to disable; default $EDITKIT_CACHE/datasets or ~/.cache/editkit/datasets)."),
    workers: int = typer.Option(2, "--workers", help="Threads decoding images on the first load."),
    snapshot_kimg: float = typer.Option(50.0, "--snapshot-kimg", help="Write a network snapshot and the training state every N kimg (0: only at the end)."),
    sample_kimg: float = typer.Option(10.0, "--sample-kimg", help="Write a sample grid every N kimg."),
    log_kimg: float = typer.Option(1.0, "--log-kimg", help="Append a line of mean losses and images/s to log.jsonl every N kimg."),
    grid: int = typer.Option(8, "--grid", help="Sample grids are GRID x GRID images (fixed latents)."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Stop after this much total training time, counting time before a resume (the run counts as finished: network-final is written)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (default: torch's choice)."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto (under torchrun: cuda:LOCAL_RANK)."),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp", help="bfloat16 autocast for the main passes (default: on CUDA only; also fast on CPUs with avx512_bf16/AMX)."),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the forward passes (default: on CUDA; ignored on CPU)."),
    channels_last: bool = typer.Option(True, "--channels-last/--no-channels-last", help="Keep conv weights in NHWC layout (about 20% faster on CPU)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Training-state file or output folder to continue from (exact resume with the same settings)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar with kimg, images/s and losses."),
) -> None:
    """Train a StyleGAN2 generator (official recipe: logistic loss, lazy R1, EMA, style mixing)."""
    from ..training.generator_trainer import TrainConfig, train_generator

    if resume is not None and not resume.exists():
        raise UsageError("--resume: no such file or folder", resume)
    cfg = TrainConfig(
        data=str(data), out=str(out), resolution=resolution, kimg=kimg, batch=batch, z_dim=z_dim, w_dim=w_dim,
        mapping_layers=mapping_layers, mapping_lr_mul=mapping_lr_mul, channel_base=channel_base,
        channel_max=channel_max, d_channel_base=d_channel_base, d_channel_max=d_channel_max, mbstd_group=mbstd_group,
        d_arch=d_arch, projected_net=projected_net, projected_size=projected_size, projected_width=projected_width,
        g_lr=g_lr, d_lr=d_lr, r1_gamma=r1_gamma, r1_interval=r1_interval, pl_weight=pl_weight,
        pl_interval=pl_interval, style_mixing=style_mixing, ema_kimg=ema_kimg,
        ema_rampup=ema_rampup if ema_rampup else None, augment=augment, mirror=mirror, noise_mode=noise_mode,
        seed=seed, max_images=max_images, cache_dir=cache_dir, workers=workers, snapshot_kimg=snapshot_kimg,
        sample_kimg=sample_kimg, log_kimg=log_kimg, grid=grid, max_minutes=max_minutes, threads=threads, device=device, amp=amp,
        compile=compile, channels_last=channels_last)
    result = train_generator(cfg, resume=resume, show_progress=progress)
    if result is not None:
        typer.echo(f"wrote {result}")
