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
    preset: Optional[str] = typer.Option(None, "--preset", help="The authors' published runs (contrafeat.md §8): paper-binary (tables: K 30, N 100, batch 12, lr 0.05, div 0.1, sigma 1, 2 colours), paper-prototype (the same, batch 10), paper-real-image (binary, K 64, N 300, batch 8, lr 0.1, div 0.01, sigma 0.5, one z per layer); all 200 kimg, 1,000,000 PCA samples. Default: paper-prototype with --variant prototype, else paper-binary. Options given explicitly win."),
    variant: Optional[str] = typer.Option(None, "--variant", help="Loss variant: 'binary' (query/positive/negative pairs) or 'prototype' (learned prototype images). Default: the preset's."),
    directions: Optional[int] = typer.Option(None, "--directions", "-k", min=1, help="Number of directions K to discover (paper 30, real-image model 64)."),
    kimg: Optional[float] = typer.Option(None, "--kimg", help="Training length in thousands of training codes (paper: 200)."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Global batch size b (even for binary; split over torchrun processes; paper 12 binary, 10 prototype, 8 real-image)."),
    sensor: str = typer.Option("alexnet", "--sensor", help="Feature network: alexnet (paper), vgg16, discriminator (the network file's D), random-alexnet, or the shipped pretrained face networks: facenets (landmark + expression + age/gender trunks), facenets-landmarks, facenets-expression, facenets-age-gender, facenets-recognition or a '+' list, e.g. facenets-landmarks+recognition."),
    sensor_weights: Optional[Path] = typer.Option(None, "--sensor-weights", help="Local torchvision ImageNet weights for alexnet/vgg16 (default: $TORCH_HOME/hub/checkpoints)."),
    direction_source: str = typer.Option("pca", "--direction-source", help="pca: ContraFeat directions in the top-N PCA subspace; free: free directions in W; ganspace / sefa: fixed baseline directions, train only the attention (+attention)."),
    components: Optional[int] = typer.Option(None, "--components", help="N, the number of top PCA components spanning the directions (paper: 100; real-image model 300)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate (paper: 0.05; final real-image model 0.1)."),
    div_lambda: Optional[float] = typer.Option(None, "--div-lambda", help="Weight of the diversity term (paper: 0.1; final model 0.01)."),
    sigma: Optional[float] = typer.Option(None, "--sigma", help="Training strengths s ~ U(-sigma, sigma) (paper: 1; final model 0.5)."),
    n_colors: Optional[int] = typer.Option(None, "--n-colors", help="Style-mixing segments of the training codes (paper: 2; 0 = one per W+ layer, the final model's setting)."),
    pca_samples: Optional[int] = typer.Option(None, "--pca-samples", min=2, help="Mapped samples for the W PCA basis (streamed, exact; cached per generator; presets: 1,000,000 as the authors)."),
    precision: str = typer.Option("auto", "--precision", help="auto (CUDA: mixed; CPU: fp32), mixed (the authors': the generator's own float16 blocks, sensor and loss in float32), fp32, or bf16 (bfloat16 autocast everywhere; not the authors' setting)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (initialisation and every training draw)."),
    snapshot_every: int = typer.Option(1000, "--snapshot-every", help="Iterations between checkpoints and traversal grids (0: only at the end)."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto (under torchrun: cuda:LOCAL_RANK)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from OUT's training state if there is one."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar with loss and images/s."),
) -> None:
    """Train a ContraFeat navigator (run under `torchrun --nproc_per_node N` for several GPUs or machines)."""
    from ..checkpoints import load_network
    from navigator.train import STATE_FILE, TrainConfig, train_navigator

    if preset is None:
        preset = "paper-prototype" if variant == "prototype" else "paper-binary"
    given = dict(variant=variant, num_directions=directions, num_components=components, kimg=kimg, batch=batch,
                 lr=lr, div_lambda=div_lambda, sigma=sigma, n_colors=n_colors, pca_samples=pca_samples)
    cfg = TrainConfig.preset(preset, directions=direction_source, precision=precision, sensor=sensor,
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
        typer.echo(f"wrote {out / 'navigator.safetensors'} ({nav.num_directions} directions, {cfg.variant}, "
                   f"preset {preset}, precision {nav.info.get('precision', cfg.precision)})")
