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


# --- registry commands (list / add / info / verify / download / remove) -------------------------------------

def _print_json_or_table(rows: list[dict], columns: list[str], as_json: bool, title: str) -> None:
    if as_json:
        from ..console import emit_json

        emit_json(rows)  # printed even with --quiet
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*(str(r.get(c, "")) for c in columns))
    Console(width=120).print(t)


@models_app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the bundled model, registered bundles and weights, and the official files editkit knows."""
    from ..registry import editkit_home, list_models

    _print_json_or_table(list_models(), ["name", "type", "status", "where"], as_json, f"models ({editkit_home()})")


@models_app.command("add")
def add_cmd(
    path: Path | None = typer.Argument(None, help="A bundle folder or a weights file (generator, encoder or navigator)."),
    name: str | None = typer.Option(None, "--name", "-n", help="Registry name (default: the bundle's name or the file's stem; an official name such as ffhq-512 also checks its hash)."),
    kind: str | None = typer.Option(None, "--kind", help="generator, encoder or navigator (default: detected by loading the file)."),
    generator: str | None = typer.Option(None, "--generator", help="Compose a bundle: generator file or registered name (needs --name)."),
    encoder: str | None = typer.Option(None, "--encoder", help="Compose a bundle: encoder file or registered name."),
    navigator: list[str] = typer.Option([], "--navigator", help="Compose a bundle: navigator file or registered name (repeatable)."),
    alignment: str = typer.Option("ffhq", "--alignment", help="Compose a bundle: alignment template name (ffhq, utkface)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a registered model of the same name."),
) -> None:
    """Register local files after checking they load: a bundle, a weights file, or a bundle composed of files."""
    from .. import registry
    from ..bundle import is_bundle
    from ..errors import UsageError

    if generator is not None:
        if path is not None:
            raise UsageError("give either PATH or --generator (to compose a bundle), not both")
        if not name:
            raise UsageError("--name is required when composing a bundle with --generator")
        navs = {f"nav{i}" if len(navigator) > 1 else "default": v for i, v in enumerate(navigator)}
        b = registry.compose_bundle(name, generator, encoder, navs, alignment=alignment, overwrite=overwrite)
        typer.echo(f"registered bundle '{b.name}' ({len(b.files)} files) -> {b.root}")
        return
    if path is None:
        raise UsageError("give a bundle folder or weights file to add (or --generator to compose a bundle)")
    if kind is not None and kind not in registry.KINDS:
        raise UsageError(f"--kind must be one of {', '.join(registry.KINDS)}, got {kind!r}")
    if is_bundle(path):
        r = registry.add_bundle(path, name, overwrite=overwrite)
        typer.echo(f"registered bundle '{r['name']}' -> {r['path']}")
    else:
        r = registry.add_weights(path, name, kind, overwrite=overwrite)
        typer.echo(f"registered {r['kind']} '{r['name']}' (sha256 {r['sha256'][:16]}..., {r['bytes']:,} bytes) -> {r['path']}")


@models_app.command("info")
def info_cmd(
    model: str = typer.Argument("bundled", help="Registered name, official file name, bundle folder or weights file."),
) -> None:
    """Show a model's details (files, hashes, alignment, licence, provenance) as JSON."""
    import json

    from ..registry import info

    typer.echo(json.dumps(info(model), indent=2, default=str))


@models_app.command("verify")
def verify_cmd(
    model: str = typer.Argument("bundled", help="Registered name or bundle folder (default: the bundled model)."),
) -> None:
    """Re-hash every file of a model and compare with the recorded SHA-256 (exit 3 on a mismatch)."""
    from ..registry import verify

    r = verify(model)
    typer.echo(f"ok: {r['name']}: {r['files']} file(s), {r['bytes']:,} bytes, hashes match")


@models_app.command("download")
def download_cmd(
    name: str = typer.Argument(..., help="Official file name (see `editkit models list`), e.g. ffhq-512."),
    dest: Path | None = typer.Option(None, "--dest", help="Folder or file to write (default: $EDITKIT_HOME/weights)."),
    timeout: float = typer.Option(10.0, "--timeout", help="Network timeout in seconds."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """Download an official public weights file, record its SHA-256 and register it (needs internet)."""
    from ..registry import download

    r = download(name, dest, timeout=timeout, overwrite=overwrite)
    typer.echo(f"downloaded {name} ({r['bytes']:,} bytes, sha256 {r['sha256']}) -> {r['path']}")


@models_app.command("remove")
def remove_cmd(name: str = typer.Argument(..., help="Registered name to forget (files are not deleted).")) -> None:
    """Unregister a model (its files stay where they are)."""
    from ..registry import remove

    remove(name)
    typer.echo(f"removed '{name}' from the registry")
