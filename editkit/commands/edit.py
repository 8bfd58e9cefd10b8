"""``editkit edit``, ``batch``, ``traverse`` and ``directions``: editing photos with a model bundle."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..cli_app import app
from ..defaults import DEFAULT_MIN_FACE_SCORE
from ..errors import UsageError

_MODEL_HELP = "Model: a bundle folder, a registered name (see `editkit models list`) or a generator file; default: the bundled model."
_GEN_HELP = "Generator weights file (official NVIDIA .pkl, rosinality/e4e .pt, editkit .safetensors) or registered name; replaces the bundle's."
_ENC_HELP = "Encoder weights (e4e .pt or editkit light encoder) or registered name; replaces the bundle's."
_NAV_HELP = "Navigator file (.safetensors from `editkit train navigator`) or registered name; replaces the bundle's."
_METHOD_HELP = "Inversion: 'encoder' (fast), 'optimize' (faithful, slow) or 'hybrid' (encoder + short optimisation)."
_DEVICE_HELP = "Device: cpu, cuda, cuda:N or auto."
_STEPS_HELP = "Optimisation steps for 'hybrid'/'optimize' (default: the inversion's own: 140 hybrid, 1000 optimize)."
_DET_HELP = "Face detector: 'hog' (fast) or 'cnn' (dlib MMOD; finds small and turned faces, slower)."
_SCORE_HELP = "Ignore face detections scoring below this (HOG; real faces score ~0.3-3, false ones ~0.1)."
_UPS_HELP = "Upsample the photo this many times before detection (finds smaller faces, slower)."
_ATTR_HELP = "Direction: an index or a label (see `editkit directions`); repeat for several edits at once."


def make_editor(model: str | None, generator: str | None, encoder: str | None, navigator: str | None,
                device: str, method: str, steps: int | None = None, detector: str = "hog", upsample: int = 1,
                min_score: float | None = None):
    """An Editor from the common model options (loads every network once)."""
    from ..editor import Editor

    if detector not in ("hog", "cnn"):
        raise UsageError(f"--detector must be 'hog' or 'cnn', got {detector!r}")
    return Editor(model, generator=generator, encoder=encoder, navigator=navigator, device=device, method=method,
                  invert_options={"steps": steps} if steps else None,
                  align_options={"detector": detector, "upsample": upsample,
                                 **({} if min_score is None else {"min_score": min_score})})


def parse_faces(face: str) -> str | int:
    if face.strip().lower() == "all":
        return "all"
    try:
        i = int(face)
    except ValueError:
        raise UsageError(f"--face must be a face index (0, 1, ...) or 'all', got {face!r}") from None
    if i < 0:
        raise UsageError(f"--face must be >= 0, got {i}")
    return i


def edit_tag(attrs: list[str], strengths: list[float]) -> str:
    """'attr3-s2' / 'smile-s-1.5' parts of default output names (one per edit)."""
    if len(strengths) == 1 and len(attrs) > 1:
        strengths = strengths * len(attrs)
    parts = []
    for a, s in zip(attrs, strengths):
        a = a.strip()
        name = f"attr{int(a)}" if a.lstrip("-").isdigit() else "".join(c if c.isalnum() else "_" for c in a.lower())
        parts.append(f"{name}-s{float(s):g}")
    return "_".join(parts)


def default_output(photo: Path, attrs: list[str], strengths: list[float], crop_only: bool) -> Path:
    from ..photos import _SAVE_FORMATS

    suffix = photo.suffix if photo.suffix.lower() in _SAVE_FORMATS else ".png"
    if crop_only:
        suffix = ".png"
    return photo.with_name(f"{photo.stem}.edit-{edit_tag(attrs, strengths)}{'.crop' if crop_only else ''}{suffix}")


def _check_photo(photo: Path) -> None:
    from ..errors import BadInputError

    if not photo.exists():
        raise BadInputError("no such file", photo)


@app.command("edit")
def edit_cmd(
    photo: Path = typer.Argument(..., help="Photo to edit (JPEG, PNG, WebP, BMP, TIFF); it is never modified."),
    attr: List[str] = typer.Option(..., "--attr", "-a", help=_ATTR_HELP),
    strength: List[float] = typer.Option(..., "--strength", "-s", help="Edit strength (negative reverses); one, or one per --attr."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output file; default: next to the photo, e.g. photo.edit-attr3-s2.jpg."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    generator: Optional[str] = typer.Option(None, "--generator", help=_GEN_HELP),
    encoder: Optional[str] = typer.Option(None, "--encoder", help=_ENC_HELP),
    navigator: Optional[str] = typer.Option(None, "--navigator", help=_NAV_HELP),
    face: str = typer.Option("all", "--face", help="Which face to edit: an index (0 = first detected) or 'all'."),
    crop_only: bool = typer.Option(False, "--crop-only", help="Write only the edited aligned face crop(s), no paste-back."),
    crops: bool = typer.Option(False, "--crops", help="Also write OUTPUT-stem.crops.png: every aligned face before | after."),
    method: str = typer.Option("hybrid", "--method", help=_METHOD_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help=_STEPS_HELP),
    detector: str = typer.Option("hog", "--detector", help=_DET_HELP),
    upsample: int = typer.Option(1, "--upsample", min=0, max=3, help=_UPS_HELP),
    min_score: float = typer.Option(DEFAULT_MIN_FACE_SCORE, "--min-score", help=_SCORE_HELP),
    device: str = typer.Option("cpu", "--device", help=_DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file (the input is never replaced)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Edit the face(s) in PHOTO along a direction and write the edited photo."""
    from ..atomic import check_writable

    faces = parse_faces(face)
    out = output or default_output(photo, attr, strength, crop_only)
    _check_photo(photo)
    check_writable(out, overwrite, (photo,))  # fail before loading any model
    if crops:
        check_writable(out.with_name(out.stem + ".crops.png"), overwrite, (photo,))
    ed = make_editor(model, generator, encoder, navigator, device, method, steps, detector, upsample, min_score)
    res = ed.edit(photo, list(attr), list(strength), faces=faces, method=method)
    written = res.save(out, crop_only=crop_only, crops=crops, overwrite=overwrite, inputs=(photo,))
    if not quiet:
        names = ", ".join(f"{(ed.navigator.labels[k] or f'attr{k}')} {s:+g}" for k, s in res.edits)
        typer.echo(f"edited {len(res.faces)} face(s) ({names}) -> {', '.join(map(str, written))}")


@app.command("batch")
def batch_cmd(
    folder: Path = typer.Argument(..., help="Folder of photos, searched recursively (hidden files skipped)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder; each result mirrors the photo's relative path."),
    attr: List[str] = typer.Option(..., "--attr", "-a", help=_ATTR_HELP),
    strength: List[float] = typer.Option(..., "--strength", "-s", help="Edit strength; one, or one per --attr."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    generator: Optional[str] = typer.Option(None, "--generator", help=_GEN_HELP),
    encoder: Optional[str] = typer.Option(None, "--encoder", help=_ENC_HELP),
    navigator: Optional[str] = typer.Option(None, "--navigator", help=_NAV_HELP),
    face: str = typer.Option("all", "--face", help="Which face to edit in each photo: an index or 'all'."),
    crop_only: bool = typer.Option(False, "--crop-only", help="Write the edited aligned crops (PNG) instead of full photos."),
    shard: Optional[str] = typer.Option(None, "--shard", help="i/n: process only shard i of n (split a folder across processes or machines)."),
    method: str = typer.Option("hybrid", "--method", help=_METHOD_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help=_STEPS_HELP),
    detector: str = typer.Option("hog", "--detector", help=_DET_HELP),
    upsample: int = typer.Option(1, "--upsample", min=0, max=3, help=_UPS_HELP),
    min_score: float = typer.Option(DEFAULT_MIN_FACE_SCORE, "--min-score", help=_SCORE_HELP),
    device: str = typer.Option("cpu", "--device", help=_DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo photos whose output exists (default: skip them, so runs resume)."),
) -> None:
    """Edit every photo under FOLDER; resumable, goes on past bad files, writes a failure report.

    Exit code 0 when every photo was edited or skipped, 3 when some failed (see batch-report.json/.csv).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..batch import iter_photos, parse_shard, run_batch

    sh = parse_shard(shard)
    faces = parse_faces(face)
    if not folder.is_dir():
        from ..errors import BadInputError

        raise BadInputError("not a folder", folder)
    ed = make_editor(model, generator, encoder, navigator, device, method, steps, detector, upsample, min_score)
    total = sum(1 for _ in iter_photos(folder, sh, exclude=output))
    with Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), transient=False, disable=not sys.stderr.isatty()) as prog:
        task = prog.add_task("", total=total)
        counts = {"done": 0, "skipped": 0, "failed": 0}

        def step(path: Path, status: str) -> None:
            counts[status] += 1
            prog.update(task, advance=1, description=" ".join(f"{k} {v}" for k, v in counts.items()))

        s = run_batch(ed, folder, output, list(attr), list(strength), faces=faces, method=method, shard=sh,
                      overwrite=overwrite, crop_only=crop_only, suffix=".png" if crop_only else None, on_item=step)
    typer.echo(f"done {s.done}, skipped {s.skipped} (already finished), failed {s.failed}; {s.faces} faces in "
               f"{s.seconds:.1f} s ({s.faces_per_s:.2f} faces/s); report: {s.report_json}")
    for f in s.failures[:10]:
        typer.echo(f"  failed: {f.message}", err=True)
    if len(s.failures) > 10:
        typer.echo(f"  ... and {len(s.failures) - 10} more (see {s.report_csv})", err=True)
    if s.failed:
        raise typer.Exit(3)


@app.command("traverse")
def traverse_cmd(
    photo: Path = typer.Argument(..., help="Photo whose face is traversed."),
    attr: List[str] = typer.Option(..., "--attr", "-a", help="Direction index or label; repeat for a grid/animation of several."),
    range_: Optional[float] = typer.Option(None, "--range", "-r", help="Traverse strengths -R..+R; default: each direction's recommended range."),
    frames: int = typer.Option(24, "--frames", "-n", min=2, help="Frames per direction."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output .gif or .mp4 (animation, forward then back) or .png/.jpg (grid); default photo.traverse-attrK.gif."),
    duration: int = typer.Option(100, "--duration", help="Milliseconds per animation frame."),
    face: int = typer.Option(0, "--face", min=0, help="Which face of the photo (0 = first detected)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    generator: Optional[str] = typer.Option(None, "--generator", help=_GEN_HELP),
    encoder: Optional[str] = typer.Option(None, "--encoder", help=_ENC_HELP),
    navigator: Optional[str] = typer.Option(None, "--navigator", help=_NAV_HELP),
    method: str = typer.Option("hybrid", "--method", help=_METHOD_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help=_STEPS_HELP),
    detector: str = typer.Option("hog", "--detector", help=_DET_HELP),
    upsample: int = typer.Option(1, "--upsample", min=0, max=3, help=_UPS_HELP),
    min_score: float = typer.Option(DEFAULT_MIN_FACE_SCORE, "--min-score", help=_SCORE_HELP),
    device: str = typer.Option("cpu", "--device", help=_DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Render a face moving along direction(s) as a GIF/MP4 animation or a PNG grid."""
    from ..atomic import check_writable

    tag = "_".join(f"attr{int(a)}" if a.strip().isdigit() else a.strip().lower() for a in attr)
    out = output or photo.with_name(f"{photo.stem}.traverse-{tag}.gif")
    if out.suffix.lower() not in (".gif", ".mp4", ".png", ".jpg", ".jpeg", ".webp"):
        raise UsageError(f"unsupported output format '{out.suffix}' (use .gif, .mp4 or .png)", out)
    _check_photo(photo)
    check_writable(out, overwrite, (photo,))
    ed = make_editor(model, generator, encoder, navigator, device, method, steps, detector, upsample, min_score)
    trav = ed.traverse(photo, list(attr), range_, frames=frames, face=face, method=method)
    trav.save(out, duration_ms=duration, overwrite=overwrite, inputs=(photo,))
    typer.echo(f"{len(trav.directions)} direction(s) x {frames} frames ({trav.strengths[0]:+g}..{trav.strengths[-1]:+g}) -> {out}")


@app.command("directions")
def directions_cmd(
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    generator: Optional[str] = typer.Option(None, "--generator", help=_GEN_HELP),
    navigator: Optional[str] = typer.Option(None, "--navigator", help=_NAV_HELP),
    preview: Optional[Path] = typer.Option(None, "--preview", "-o", help="Write a preview grid PNG: a row per direction, -s / 0 / +s on random faces."),
    samples: int = typer.Option(3, "--samples", min=1, help="Random faces in the preview grid."),
    seed: int = typer.Option(0, "--seed", help="Seed of the preview faces."),
    as_json: bool = typer.Option(False, "--json", help="Print the directions as JSON."),
    device: str = typer.Option("cpu", "--device", help=_DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing preview file."),
) -> None:
    """List the model's directions: index, label, recommended strengths and the W+ layers they act on."""
    from ..atomic import check_writable

    if preview is not None:
        check_writable(preview, overwrite)
    ed = make_editor(model, generator, None, navigator, device, "encoder")
    dirs = ed.directions()
    if as_json:
        typer.echo(json.dumps([{"index": d.index, "label": d.label, "strength_range": list(d.strength_range),
                                "layers": d.layers} for d in dirs], indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"{len(dirs)} directions")
        for col in ("index", "label", "recommended strength", "layers"):
            t.add_column(col)
        for d in dirs:
            t.add_row(str(d.index), d.label or "-", f"{d.strength_range[0]:+g} .. {d.strength_range[1]:+g}",
                      ",".join(map(str, d.layers)))
        Console(width=100).print(t)
    if preview is not None:
        from ..photos import save_image

        save_image(preview, ed.preview(samples=samples, seed=seed))
        typer.echo(f"preview grid -> {preview}")
