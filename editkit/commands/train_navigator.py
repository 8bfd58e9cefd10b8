"""``editkit train navigator``: discover ContraFeat directions in a StyleGAN2 generator."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..cli_app import train_app
from ..errors import UsageError


def resolve_generator(spec: str) -> Path:
    """A generator file from a path, a bundle folder or a registered name."""
    from ..bundle import is_bundle, load_bundle
    from ..registry import resolve_weights

    p = Path(spec).expanduser()
    if is_bundle(p):
        return load_bundle(p).generator_path
    return resolve_weights(spec, "generator")


def resolve_device(device: str):
    import torch
    from navigator.train import distributed_device

    if device == "auto":
        return distributed_device()
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available on this machine")
    return dev


@train_app.command("navigator")
def train_navigator_cmd(
    generator: str = typer.Option(..., "--generator", "-g", help="Generator: network file (NVIDIA .pkl, rosinality .pt, editkit .safetensors), bundle folder or registered name."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: navigator.safetensors, snapshots, traversal grids, log.jsonl, training state (for resuming)."),
    preset: str = typer.Option("paper", "--preset", help="Defaults for the options below: 'paper' (the paper's tables) or 'final' (the authors' real-image model: K=64, lr 0.1, div-lambda 0.01, sigma 0.5, n-colors 0). Options given explicitly win."),
    variant: str = typer.Option("binary", "--variant", help="Loss variant: 'binary' (query/positive/negative pairs) or 'prototype' (learned prototype images)."),
    directions: Optional[int] = typer.Option(None, "--directions", "-k", min=1, help="Number of directions K to discover (paper 30, final 64)."),
    kimg: float = typer.Option(200.0, "--kimg", help="Training length in thousands of training codes (paper: 200)."),
    batch: int = typer.Option(12, "--batch", help="Global batch size b (even for binary; split over torchrun processes)."),
    sensor: str = typer.Option("alexnet", "--sensor", help="Feature network: alexnet (paper), vgg16, discriminator (the network file's D), random-alexnet, or the shipped pretrained face networks: facenets (landmark + expression + age/gender trunks), facenets-landmarks, facenets-expression, facenets-age-gender, facenets-recognition or a '+' list, e.g. facenets-landmarks+recognition."),
    sensor_weights: Optional[Path] = typer.Option(None, "--sensor-weights", help="Local torchvision ImageNet weights for alexnet/vgg16 (default: $TORCH_HOME/hub/checkpoints)."),
    direction_source: str = typer.Option("pca", "--direction-source", help="pca: ContraFeat directions in the top-N PCA subspace; free: free directions in W; ganspace / sefa: fixed baseline directions, train only the attention (+attention)."),
    components: int = typer.Option(100, "--components", help="N, the number of top PCA components spanning the directions (paper: 100)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate (paper: 0.05; final real-image model 0.1)."),
    div_lambda: Optional[float] = typer.Option(None, "--div-lambda", help="Weight of the diversity term (paper: 0.1; final model 0.01)."),
    sigma: Optional[float] = typer.Option(None, "--sigma", help="Training strengths s ~ U(-sigma, sigma) (paper: 1; final model 0.5)."),
    n_colors: Optional[int] = typer.Option(None, "--n-colors", help="Style-mixing segments of the training codes (paper: 2; 0 = one per W+ layer, the final model's setting)."),
    pca_samples: int = typer.Option(100_000, "--pca-samples", help="Mapped samples for the W PCA basis (cached per generator)."),
    precision: str = typer.Option("auto", "--precision", help="auto (bfloat16 autocast on CUDA, float32 on CPU), fp32 or bf16."),
    seed: int = typer.Option(0, "--seed", help="Random seed (initialisation and every training draw)."),
    snapshot_every: int = typer.Option(1000, "--snapshot-every", help="Iterations between checkpoints and traversal grids (0: only at the end)."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto (under torchrun: cuda:LOCAL_RANK)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from OUT's training state if there is one."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar with loss and images/s."),
) -> None:
    """Train a ContraFeat navigator (run under `torchrun --nproc_per_node N` for several GPUs or machines)."""
    from ..checkpoints import load_network
    from navigator.train import STATE_FILE, TrainConfig, train_navigator

    given = dict(num_directions=directions, lr=lr, div_lambda=div_lambda, sigma=sigma, n_colors=n_colors)
    cfg = TrainConfig.preset(preset, variant=variant, directions=direction_source, num_components=components,
                             kimg=kimg, batch=batch, pca_samples=pca_samples, precision=precision, sensor=sensor,
                             seed=seed, snapshot_every=snapshot_every,
                             **{k: v for k, v in given.items() if v is not None})
    cfg.validate()
    if out.exists() and not out.is_dir():
        raise UsageError("--out must be a folder", out)
    if (out / STATE_FILE).exists() and not resume:
        raise UsageError("this folder holds a training state; use --resume or another --out", out)
    dev = resolve_device(device)
    gen_path = resolve_generator(generator)
    net = load_network(gen_path, device=dev)
    if sensor == "discriminator" and net.D is None:
        raise UsageError("--sensor discriminator: this network file has no discriminator", gen_path)
    nav = train_navigator(net.G, cfg, out, discriminator=net.D, sensor_weights=sensor_weights, resume=resume,
                          progress=progress, extra_info={"generator": gen_path.name})
    import torch.distributed as dist
    rank = dist.get_rank() if dist.is_initialized() else 0
    if dist.is_initialized():
        dist.destroy_process_group()
    if rank == 0:
        typer.echo(f"wrote {out / 'navigator.safetensors'} ({nav.num_directions} directions, {cfg.variant})")
