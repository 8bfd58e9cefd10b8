"""The typer application objects; command modules in ``editkit.commands`` register onto them."""
from __future__ import annotations

import typer

app = typer.Typer(
    name="editkit",
    help="Edit real face photos with ContraFeat directions in StyleGAN2's W+ space.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(help="Train generators, navigators and encoders.", no_args_is_help=True)
models_app = typer.Typer(help="Model registry: bundles and official weights.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(models_app, name="models")


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"editkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the editkit version and exit.",
                                       is_eager=True, callback=_print_version)) -> None:
    """Edit real face photos with ContraFeat directions in StyleGAN2's W+ space."""
