"""`editkit models ...`: convert checkpoints (registry commands are added alongside)."""
from __future__ import annotations

from pathlib import Path

import typer

from ..atomic import check_writable
from ..cli_app import models_app


@models_app.command("convert")
def convert_cmd(
    src: Path = typer.Argument(..., help="Checkpoint to convert: NVIDIA .pkl, rosinality/e4e .pt or editkit .safetensors."),
    dst: Path = typer.Argument(..., help="Output file (.safetensors) in editkit's own format."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace DST if it exists."),
) -> None:
    """Convert any supported checkpoint into editkit's safe, fast-loading safetensors format."""
    from ..checkpoints import convert, load_network

    check_writable(dst, overwrite=overwrite, inputs=(src,))
    out = convert(src, dst)
    net = load_network(out)
    typer.echo(f"wrote {out} (generator {net.G.resolution}px, num_ws {net.G.num_ws}, w_dim {net.G.w_dim}"
               f"{', with discriminator' if net.D is not None else ''})")
