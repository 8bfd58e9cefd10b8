"""``editkit train encoder``: train a light (or e4e) encoder for any generator."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from ..cli_app import train_app
from ..errors import UsageError


def _device(device: str):
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available on this machine")
    return dev


@train_app.command("encoder")
def train_encoder_cmd(
    generator: Optional[str] = typer.Option(None, "--generator", "-g", help="Generator: network file (NVIDIA .pkl, rosinality .pt, editkit .safetensors), bundle folder or registered name; default: the bundled model's."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: encoder.safetensors, checkpoint.pt (for resuming), preview.png, log.jsonl, config.json."),
    arch: str = typer.Option("light", "--arch", help="'light' (small CNN, any generator) or 'e4e' (IR-SE-50; generators with w_dim 512)."),
    steps: int = typer.Option(20000, "--steps", min=1, help="Total training steps (raise it and rerun to continue a finished run)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Global batch size (split across torchrun ranks)."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    real_data: Optional[Path] = typer.Option(None, "--real-data", help="Folder or .zip of aligned face images, mixed into each batch with the image loss only."),
    real_fraction: float = typer.Option(0.5, "--real-fraction", min=0.0, max=1.0, help="Share of each batch taken from --real-data."),
    truncation_psi: float = typer.Option(1.0, "--truncation-psi", help="Truncation of the generator's samples used for training."),
    latent_weight: float = typer.Option(1.0, "--latent-weight", help="Weight of the code loss on generated samples (known W+)."),
    image_weight: float = typer.Option(1.0, "--image-weight", help="Weight of the pixel MSE reconstruction loss."),
    lpips_weight: float = typer.Option(0.8, "--lpips-weight", help="Weight of LPIPS (only when VGG16 weights are found)."),
    id_weight: float = typer.Option(0.0, "--id-weight", min=0.0, help="Weight of the identity loss (1 - cosine of editkit.facenets face-recognition descriptors of image and reconstruction); 0 = off. Costs about one recognition-network forward/backward per image."),
    width: int = typer.Option(32, "--width", min=4, help="Light encoder: channels of its first stage."),
    checkpoint_every: int = typer.Option(1000, "--checkpoint-every", min=1, help="Write checkpoint.pt every N steps."),
    preview_every: int = typer.Option(1000, "--preview-every", min=1, help="Write preview.png (targets over reconstructions) every N steps."),
    seed: int = typer.Option(0, "--seed", help="Random seed (each step's batch depends only on seed, step and rank)."),
    vgg16: Optional[Path] = typer.Option(None, "--vgg16", help="Local torchvision VGG16 weights for the LPIPS loss (default: $EDITKIT_VGG16 or the torch hub cache)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from OUT/checkpoint.pt when it exists."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto (under torchrun: cuda:LOCAL_RANK)."),
) -> None:
    """Train an encoder on the generator's own samples (code + image loss) and optional real faces.

    Multi-process: ``torchrun --nproc_per_node N -m editkit.cli train encoder ...`` (gloo on CPU).
    """
    import editkit
    from inversion.train_encoder import EncoderTrainConfig, train_encoder

    from .train_navigator import resolve_generator

    if arch not in ("light", "e4e"):
        raise UsageError(f"--arch must be 'light' or 'e4e', got {arch!r}")
    if out.exists() and not out.is_dir():
        raise UsageError("--out must be a folder", out)
    if not resume and (out / "checkpoint.pt").exists():
        raise UsageError("a checkpoint exists there; use --resume or another --out folder", out)
    if generator is None:
        from ..registry import resolve_bundle

        gen_path = resolve_bundle(None).generator_path
    else:
        gen_path = resolve_generator(generator)
    dev = _device(device)
    G = editkit.load_generator(gen_path, device=dev)
    cfg = EncoderTrainConfig(arch=arch, steps=steps, batch_size=batch_size, lr=lr,
                             real_data=str(real_data) if real_data else None, real_fraction=real_fraction,
                             truncation_psi=truncation_psi, latent_weight=latent_weight, image_weight=image_weight,
                             lpips_weight=lpips_weight, id_weight=id_weight, width=width, checkpoint_every=checkpoint_every,
                             preview_every=preview_every, seed=seed, vgg16=str(vgg16) if vgg16 else None)
    train_encoder(G, cfg, out, resume=resume, device=dev, progress=True)
    if int(os.environ.get("RANK", "0")) == 0:
        typer.echo(f"wrote {out / 'encoder.safetensors'} (use it with --encoder)")
