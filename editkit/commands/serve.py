"""``editkit serve``: the local web editor (needs the ``web`` extra)."""
from __future__ import annotations

from typing import Optional

import typer

from ..cli_app import app
from ..defaults import DEFAULT_MIN_FACE_SCORE
from ..errors import UsageError
from .edit import DEFAULT_DEVICE, _DET_HELP, _DEVICE_HELP, _ENC_HELP, _GEN_HELP, _MODEL_HELP, _NAV_HELP, _SCORE_HELP, _STEPS_HELP, _UPS_HELP


@app.command("serve")
def serve_cmd(
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    generator: Optional[str] = typer.Option(None, "--generator", help=_GEN_HELP),
    encoder: Optional[str] = typer.Option(None, "--encoder", help=_ENC_HELP),
    navigator: Optional[str] = typer.Option(None, "--navigator", help=_NAV_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but loopback exposes the editor to the network (a warning is printed)."),
    port: int = typer.Option(7860, "--port", "-p", min=0, max=65535, help="Port (0: any free port; the address is printed)."),
    device: str = typer.Option(DEFAULT_DEVICE, "--device", help=_DEVICE_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help=_STEPS_HELP + " Used by 'refine'."),
    detector: str = typer.Option("hog", "--detector", help=_DET_HELP),
    upsample: int = typer.Option(1, "--upsample", min=0, max=3, help=_UPS_HELP),
    min_score: float = typer.Option(DEFAULT_MIN_FACE_SCORE, "--min-score", help=_SCORE_HELP),
    max_upload_mb: float = typer.Option(25.0, "--max-upload-mb", min=0.01, help="Largest photo file accepted, in MiB."),
    session_minutes: float = typer.Option(30.0, "--session-minutes", min=0.1, help="A session idle this long is ended and its photo and results deleted."),
) -> None:
    """Start the local web editor: open a photo, drag a slider per direction, download the result."""
    from .. import web

    missing = web.missing_modules()
    if missing:
        raise UsageError(f"`editkit serve` needs the web extra ({', '.join(missing)} not installed): {web.INSTALL_HINT}")
    from .edit import make_editor

    opts: list[str] = []
    for flag, value, default in (("--model", model, None), ("--generator", generator, None), ("--encoder", encoder, None),
                                 ("--navigator", navigator, None), ("--device", device, DEFAULT_DEVICE), ("--steps", steps, None),
                                 ("--detector", detector, "hog"), ("--upsample", upsample, 1),
                                 ("--min-score", min_score, DEFAULT_MIN_FACE_SCORE)):
        if value is not None and value != default:
            opts += [flag, str(value)]

    def factory():
        # the face-network report costs ~0.5 s a face: too slow for a slider (the page does not show it)
        return make_editor(model, generator, encoder, navigator, device, "hybrid", steps, detector, upsample, min_score,
                           analyze_faces=False)

    web.serve(factory, host=host, port=port, max_upload=int(max_upload_mb * 2**20), session_ttl=session_minutes * 60,
              model_name=model or generator, cli_options=opts, echo=typer.echo)
