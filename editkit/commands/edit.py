"""``editkit edit``, ``batch``, ``traverse`` and ``directions``: editing photos with a model bundle."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import List, Optional

import typer

from ..cli_app import app
from ..defaults import DEFAULT_MIN_FACE_SCORE
from ..errors import UsageError

_MODEL_HELP = "Model: a bundle folder, a registered name (see `editkit models list`) or a generator file; default: the bundled model."
_GEN_HELP = ("Generator weights file (official NVIDIA .pkl, rosinality/e4e .pt, editkit .safetensors) or registered name; "
             "replaces only the --model bundle's generator (its encoder and navigator are kept); without --model it is used on its own.")
_ENC_HELP = "Encoder weights (e4e .pt or editkit light encoder) or registered name; replaces the bundle's."
_NAV_HELP = "Navigator file (.safetensors from `editkit train navigator`) or registered name; replaces the bundle's."
_METHOD_HELP = ("Inversion: 'encoder' (fast), 'optimize' (faithful, slow), 'hybrid' (encoder + short optimisation) "
                "or 'pti' (hybrid pivot + a per-face tuned copy of the generator; slowest, most faithful).")
_RENDER_HELP = ("'transfer': keep the photo and carry over only the edit's change (warp + filtered colour/light), "
                "at the face's own resolution; 'generated': paste the generator's face back (for a high-resolution "
                "generator whose detail you want).")
_DEVICE_HELP = "Device: cpu, cuda, cuda:N or auto (the GPU when there is one)."
DEFAULT_DEVICE = "auto"
_STEPS_HELP = "Optimisation steps for 'hybrid'/'optimize' (default: the inversion's own: 140 hybrid, 1000 optimize)."
_DET_HELP = "Face detector: 'hog' (fast) or 'cnn' (dlib MMOD; finds small and turned faces, slower)."
_SCORE_HELP = "Ignore face detections scoring below this (HOG; real faces score ~0.3-3, false ones ~0.1)."
_UPS_HELP = "Upsample the photo this many times before detection (finds smaller faces, slower)."
_PREC_HELP = "Generator precision: auto (bf16 where the CPU runs it natively, else float32), float32 (exact) or bf16."
_ATTR_HELP = "Direction: an index or a label (see `editkit directions`); repeat for several edits at once."
_FORCE_HELP = ("Render strengths beyond the hard limit (4 x the direction's recommended range); outside the recommended "
               "range a warning is printed either way.")
_VGG_HELP = ("Local torchvision VGG16 weights (vgg16-397923af.pth) for the LPIPS loss of 'hybrid'/'optimize'; default: "
             "$EDITKIT_VGG16 or the torch hub cache, else a fallback loss (blurrier detail).")
_JSON_HELP = "Print the result as JSON on stdout (progress and messages go to stderr)."


def make_editor(model: str | None, generator: str | None, encoder: str | None, navigator: str | None,
                device: str, method: str, steps: int | None = None, detector: str = "hog", upsample: int = 1,
                min_score: float | None = None, vgg16: Path | None = None, render: str = "transfer",
                analyze_faces: bool = True, precision: str = "auto"):
    """An Editor from the common model options (loads every network once)."""
    from ..editor import Editor

    if detector not in ("hog", "cnn"):
        raise UsageError(f"--detector must be 'hog' or 'cnn', got {detector!r}")
    if render not in ("transfer", "generated"):
        raise UsageError(f"--render must be 'transfer' or 'generated', got {render!r}")
    opts = {**({"steps": steps} if steps else {}), **({"vgg16": str(vgg16)} if vgg16 else {})}
    return Editor(model, generator=generator, encoder=encoder, navigator=navigator, device=device, method=method,
                  render=render, invert_options=opts or None, analyze_faces=analyze_faces,
                  align_options={"detector": detector, "upsample": upsample,
                                 **({} if min_score is None else {"min_score": min_score})},
                  precision=precision)


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
    if photo.is_dir():
        raise BadInputError("is a folder, not an image file", photo)


def check_early(method: str, device: str, strengths: list[float] = (), option: str = "--strength") -> None:
    """Option values that need no model, checked before any file is read or model loaded."""
    import math

    from ..editor import METHODS

    if method not in METHODS:
        raise UsageError(f"unknown inversion method {method!r}: --method must be one of {', '.join(METHODS)}")
    dev = str(device)
    base = dev.split(":", 1)[0]
    if base not in ("cpu", "cuda", "mps", "auto") or (base in ("cpu", "auto", "mps") and ":" in dev) or (
            base == "cuda" and ":" in dev and not dev.split(":", 1)[1].isdigit()):
        raise UsageError(f"--device must be cpu, cuda, cuda:N or auto, got {device!r}")
    for s in strengths:
        if not math.isfinite(s):
            raise UsageError(f"{option} must be a finite number, got {s}")


def check_output_format(out: Path) -> None:
    from ..photos import _SAVE_FORMATS

    if out.suffix.lower() not in _SAVE_FORMATS:
        raise UsageError(f"unsupported output format {out.suffix or '(none)'!r} (use one of "
                         f"{', '.join(sorted(_SAVE_FORMATS))})", out)


def progress_for(method: str, label: str):
    """Progress with an ETA for the optimising methods (None for 'encoder', which takes a moment)."""
    from ..console import Progress

    return Progress(label) if method in ("hybrid", "optimize") else None


def edit_json(photo: Path, written: list[Path], res, labels) -> dict:
    return {"photo": str(photo), "outputs": [str(p) for p in written],
            "faces": [{"face": f.index, **{k: v for k, v in f.metrics.items() if isinstance(v, (int, float))}}
                      for f in res.faces],
            "edits": [{"direction": k, "label": labels[k], "strength": s} for k, s in res.edits],
            "warnings": list(res.warnings)}


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
    crop_only: bool = typer.Option(False, "--crop-only", help="Write only the edited aligned face crop(s) (the photo's own resolution with transfer)."),
    crops: bool = typer.Option(False, "--crops", help="Also write OUTPUT-stem.crops.png: every aligned face before | after."),
    method: str = typer.Option("hybrid", "--method", "-M", help=_METHOD_HELP),
    render: str = typer.Option("transfer", "--render", help=_RENDER_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help=_STEPS_HELP),
    vgg16: Optional[Path] = typer.Option(None, "--vgg16", help=_VGG_HELP),
    detector: str = typer.Option("hog", "--detector", help=_DET_HELP),
    upsample: int = typer.Option(1, "--upsample", min=0, max=3, help=_UPS_HELP),
    min_score: float = typer.Option(DEFAULT_MIN_FACE_SCORE, "--min-score", help=_SCORE_HELP),
    device: str = typer.Option(DEFAULT_DEVICE, "--device", help=_DEVICE_HELP),
    precision: str = typer.Option("auto", "--precision", help=_PREC_HELP),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file (the input is never replaced)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write a JSON report: per face, identity distance to the input and predicted age/gender/expression before and after."),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors (no progress, notes, warnings or summary)."),
) -> None:
    """Edit the face(s) in PHOTO along a direction and write the edited photo."""
    from ..atomic import check_writable
    from ..console import emit_json

    faces = parse_faces(face)
    check_early(method, device, strength)
    out = output or default_output(photo, attr, strength, crop_only)
    _check_photo(photo)
    check_output_format(out)
    check_writable(out, overwrite, (photo,))  # fail before loading any model
    if crops:
        check_writable(out.with_name(out.stem + ".crops.png"), overwrite, (photo,))
    if report is not None:
        from ..edit_report import check_report_path

        check_report_path(report, overwrite, (photo, out))
    ed = make_editor(model, generator, encoder, navigator, device, method, steps, detector, upsample, min_score,
                     vgg16=vgg16, render=render, precision=precision)
    bar = progress_for(method, "edit: inverting")
    with bar or contextlib.nullcontext():
        extra = {"progress": bar.invert_callback()} if bar else {}
        res = ed.edit(photo, list(attr), list(strength), faces=faces, method=method, force=force, **extra)
    written = res.save(out, crop_only=crop_only, crops=crops, overwrite=overwrite, inputs=(photo,))
    if report is not None:
        from ..edit_report import write_report

        written.append(write_report(report, res.report(ed.navigator.labels, photo, written)))
    if as_json:
        emit_json(edit_json(photo, written, res, [lab or f"attr{i}" for i, lab in enumerate(ed.navigator.labels)]))
    elif not quiet:
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
    method: str = typer.Option("hybrid", "--method", "-M", help=_METHOD_HELP),
    render: str = typer.Option("transfer", "--render", help=_RENDER_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help=_STEPS_HELP),
    vgg16: Optional[Path] = typer.Option(None, "--vgg16", help=_VGG_HELP),
    detector: str = typer.Option("hog", "--detector", help=_DET_HELP),
    upsample: int = typer.Option(1, "--upsample", min=0, max=3, help=_UPS_HELP),
    min_score: float = typer.Option(DEFAULT_MIN_FACE_SCORE, "--min-score", help=_SCORE_HELP),
    device: str = typer.Option(DEFAULT_DEVICE, "--device", help=_DEVICE_HELP),
    precision: str = typer.Option("auto", "--precision", help=_PREC_HELP),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo every photo, also those finished with other settings (default: skip photos finished with these settings, so runs resume)."),
    as_json: bool = typer.Option(False, "--json", help="Print the batch report as JSON on stdout."),
) -> None:
    """Edit every photo under FOLDER; resumable, goes on past bad files, writes a failure report.

    Exit code 0 when every photo was edited or skipped, 3 when some failed (see batch-report.json/.csv),
    2 when the output folder cannot be written (the report says how far it got, or where it could not be written).
    Several batch processes may share one output folder: each photo is claimed before it is edited.
    """
    params = dict(locals())  # the command's options, before any other local name exists
    from ..atomic import check_folder_writable
    from ..batch import parse_shard, run_batch
    from ..console import Progress, emit_json
    from ..errors import BadInputError, OutputError

    sh = parse_shard(shard)
    faces = parse_faces(face)
    check_early(method, device, strength)
    if not folder.is_dir():
        raise BadInputError("not a folder" if folder.exists() else "no such folder", folder)
    if output.exists() and not output.is_dir():
        raise OutputError("output exists and is not a folder", output)
    check_folder_writable(output)  # before any model is loaded
    # every option that decides what an output looks like is recorded in the folder's manifest, generically
    # (new options are included automatically); these only say where/how to run:
    not_settings = {"folder", "output", "shard", "device", "overwrite", "as_json", "quiet", "force", "model",
                    "generator", "encoder", "navigator", "attr", "strength"}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in params.items() if k not in not_settings}
    ed = make_editor(model, generator, encoder, navigator, device, method, steps, detector, upsample, min_score,
                     vgg16=vgg16, render=render, precision=precision)
    with Progress("batch") as bar:
        counts = {"done": 0, "skipped": 0, "claimed": 0, "failed": 0}
        total = [0]

        def step(path: Path, status: str) -> None:
            counts[status] += 1
            bar.update(sum(counts.values()), total[0], " ".join(f"{k} {v}" for k, v in counts.items() if v))

        def start(n: int) -> None:
            total[0] = n

        try:
            s = run_batch(ed, folder, output, list(attr), list(strength), faces=faces, method=method, shard=sh,
                          overwrite=overwrite, crop_only=crop_only, suffix=".png" if crop_only else None,
                          on_item=step, on_start=start, settings=settings, force=force)
        except (OutputError, KeyboardInterrupt) as exc:
            s = getattr(exc, "summary", None)
            if s is not None:
                _batch_summary(s, err=isinstance(exc, OutputError))
            raise
    if as_json:
        emit_json(s.report)
    else:
        _batch_summary(s)
    for f in s.failures[:10]:
        typer.echo(f"  failed: {f.message}", err=True)
    if len(s.failures) > 10:
        typer.echo(f"  ... and {len(s.failures) - 10} more (see {s.report_csv})", err=True)
    if s.failed:
        raise typer.Exit(3)


def _batch_summary(s, err: bool = False) -> None:
    from ..console import is_quiet

    if is_quiet():
        err = False  # stdout is silenced; errors come from the caller
    claimed = f", {s.claimed} taken by another worker" if s.claimed else ""
    where = f"report: {s.report_json}" if s.report_json else (s.report_error or "no report written")
    typer.echo(f"done {s.done}, skipped {s.skipped} (already finished){claimed}, failed {s.failed}; {s.faces} faces "
               f"in {s.seconds:.1f} s ({s.faces_per_s:.2f} faces/s); {where}", err=err)
    for old, new in list(s.renamed.items())[:5]:
        typer.echo(f"  note: {old} -> {new} (another input has the same name)", err=err)


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
    method: str = typer.Option("hybrid", "--method", "-M", help=_METHOD_HELP),
    render: str = typer.Option("transfer", "--render", help=_RENDER_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help=_STEPS_HELP),
    vgg16: Optional[Path] = typer.Option(None, "--vgg16", help=_VGG_HELP),
    detector: str = typer.Option("hog", "--detector", help=_DET_HELP),
    upsample: int = typer.Option(1, "--upsample", min=0, max=3, help=_UPS_HELP),
    min_score: float = typer.Option(DEFAULT_MIN_FACE_SCORE, "--min-score", help=_SCORE_HELP),
    device: str = typer.Option(DEFAULT_DEVICE, "--device", help=_DEVICE_HELP),
    precision: str = typer.Option("auto", "--precision", help=_PREC_HELP),
    force: bool = typer.Option(False, "--force", help=_FORCE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Render a face moving along direction(s) as a GIF/MP4 animation or a PNG grid."""
    from ..atomic import check_writable

    check_early(method, device, [range_] if range_ is not None else [], option="--range")
    if range_ is not None and range_ == 0:
        raise UsageError("--range must be non-zero (frames go from -R to +R)")
    tag = "_".join(f"attr{int(a)}" if a.strip().isdigit() else a.strip().lower() for a in attr)
    out = output or photo.with_name(f"{photo.stem}.traverse-{tag}.gif")
    if out.suffix.lower() not in (".gif", ".mp4", ".png", ".jpg", ".jpeg", ".webp"):
        raise UsageError(f"unsupported output format '{out.suffix}' (use .gif, .mp4 or .png)", out)
    _check_photo(photo)
    check_writable(out, overwrite, (photo,))
    ed = make_editor(model, generator, encoder, navigator, device, method, steps, detector, upsample, min_score,
                     vgg16=vgg16, render=render, precision=precision)
    bar = progress_for(method, "traverse: inverting")
    with bar or contextlib.nullcontext():
        extra = {"progress": bar.invert_callback()} if bar else {}
        trav = ed.traverse(photo, list(attr), range_, frames=frames, face=face, method=method, force=force, **extra)
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
    device: str = typer.Option(DEFAULT_DEVICE, "--device", help=_DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing preview file."),
) -> None:
    """List the model's directions: index, label, recommended strengths, the effect measured on real faces, its identity cost and the W+ layers."""
    from ..atomic import check_writable

    if preview is not None:
        check_writable(preview, overwrite)
    ed = make_editor(model, generator, None, navigator, device, "encoder")
    dirs = ed.directions()
    if as_json:
        from ..console import emit_json

        emit_json([{"index": d.index, "label": d.label, "strength_range": list(d.strength_range), "layers": d.layers,
                    "effect": d.effect, "identity_distance": d.identity_distance} for d in dirs])
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"{len(dirs)} directions")
        for col in ("index", "label", "recommended strength", "measured effect (real faces)", "identity", "layers"):
            t.add_column(col)
        for d in dirs:
            t.add_row(str(d.index), d.label or "-", f"{d.strength_range[0]:+g} .. {d.strength_range[1]:+g}",
                      d.effect or "not measured", "-" if d.identity_distance is None else f"{d.identity_distance:.2f}",
                      ",".join(map(str, d.layers)))
        Console(width=140).print(t)
        if any(d.effect for d in dirs):
            typer.echo("names are kept only where the attribute moved the named way on >= 80% of real inverted faces"
                       " with identity distance < 0.6 (same person); identity: median distance at the recommended strength")
    if preview is not None:
        from ..photos import save_image

        save_image(preview, ed.preview(samples=samples, seed=seed))
        typer.echo(f"preview grid -> {preview}")
