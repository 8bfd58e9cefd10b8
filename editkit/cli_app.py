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
