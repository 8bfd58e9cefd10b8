"""``editkit align PHOTO... -o DIR``: aligned face crops plus a JSON of landmarks and transforms."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..cli_app import app
from ..defaults import DEFAULT_MIN_FACE_SCORE
from ..errors import BadInputError, EditkitError, UsageError


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files given directly, plus the non-hidden files of given folders (sorted, not recursive)."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            files.extend(c for c in sorted(p.iterdir()) if c.is_file() and not c.name.startswith("."))
        else:
            files.append(p)  # missing or unreadable files are reported when loaded
    return files


def _compact_json(doc: dict) -> str:
    """Indented JSON with every innermost list of numbers on one line (landmarks stay readable)."""
    import re

    text = json.dumps(doc, indent=1)
    return re.sub(r"\[\s+([-+0-9.eE,\s]+?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)


def _unique_stem(path: Path, used: set[str]) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.stem) or "photo"
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}-{n}"
    used.add(name)
    return name


@app.command("align")
def align_cmd(
    photos: List[Path] = typer.Argument(..., help="Photos (JPEG, PNG, WebP, BMP, TIFF) or folders of photos."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder for the crops and alignment.json."),
    template: str = typer.Option("ffhq", "--template", "-t", help="Alignment template: ffhq or utkface."),
    size: Optional[int] = typer.Option(None, "--size", "-s", help="Crop size in pixels (default: 256 for ffhq, the template's size otherwise)."),
    detector: str = typer.Option("hog", "--detector", help="Face detector: hog (fast) or cnn (dlib MMOD, slower, finds more poses)."),
    upsample: int = typer.Option(1, "--upsample", help="Upsample the photo this many times before detection (finds small faces; slower)."),
    min_score: float = typer.Option(DEFAULT_MIN_FACE_SCORE, "--min-score", help="Ignore face detections scoring below this (HOG; real faces score ~0.3-3, false ones ~0.1); the same default as `edit`, so faces are numbered alike."),
    landmarks: str = typer.Option("dlib", "--landmarks", help="Landmark backend: dlib (default) or fan (needs the 'fan' extra and its weights)."),
    fan_weights: Optional[Path] = typer.Option(None, "--fan-weights", help="Folder or file with the FAN weights (2DFAN4-*.pth.tar) for --landmarks fan."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing crops and alignment.json in the output folder."),
) -> None:
    """Detect every face in the photos and write aligned crops (PHOTO_faceN.png) plus alignment.json."""
    from ..atomic import atomic_write_text, check_writable
    from ..photos import read_photo, save_image
    from inversion.align import align_faces, get_template

    tpl = get_template(template)
    if size is None:
        size = 256 if tpl.name == "ffhq" else tpl.size
    if size < 8 or size > 4096:
        raise UsageError(f"--size must be between 8 and 4096, got {size}")
    if upsample < 0 or upsample > 4:
        raise UsageError(f"--upsample must be between 0 and 4, got {upsample}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError("output exists and is not a folder", out_dir)
    files = expand_inputs(list(photos))
    if not files:
        raise UsageError("no photos given (the folders are empty)")
    json_path = out_dir / "alignment.json"
    check_writable(json_path, overwrite=overwrite, inputs=tuple(files))

    from rich.progress import Progress

    used: set[str] = set()
    results: list[dict] = []
    failures: list[EditkitError] = []
    n_faces = 0
    with Progress(disable=not sys.stderr.isatty(), transient=True) as progress:
        task = progress.add_task("aligning", total=len(files))
        for f in files:
            try:
                photo = read_photo(f)
                faces = align_faces(photo.array, template=tpl, size=size, detector=detector, upsample=upsample,
                                    min_score=min_score, landmarks=landmarks, fan_weights=fan_weights)
            except EditkitError as exc:
                if exc.path is None:  # errors about the photo's content name the file too
                    exc = type(exc)(str(exc), f)
                if isinstance(exc, BadInputError):
                    failures.append(exc)
                    progress.advance(task)
                    continue
                raise
            stem = _unique_stem(f, used)
            entry = {"photo": str(f), "size": [int(photo.array.shape[1]), int(photo.array.shape[0])], "faces": []}
            for face in faces:
                crop_path = out_dir / f"{stem}_face{face.index}.png"
                check_writable(crop_path, overwrite=overwrite, inputs=tuple(files))
                save_image(crop_path, face.image)
                entry["faces"].append({**face.to_dict(), "crop": crop_path.name})
            n_faces += len(faces)
            results.append(entry)
            progress.advance(task)

    doc = {"template": tpl.to_dict(), "size": size, "detector": detector, "upsample": upsample,
           "landmarks": landmarks, "photos": results,
           "failed": [{"photo": e.path, "error": str(e)} for e in failures]}
    if results:
        atomic_write_text(json_path, _compact_json(doc) + "\n")
        typer.echo(f"aligned {n_faces} face(s) from {len(results)} photo(s) -> {out_dir} (alignment.json)")
    if failures:
        if len(files) == 1:
            raise failures[0]
        for e in failures:
            typer.echo(f"editkit: error: {e}", err=True)
        raise BadInputError(f"{len(failures)} of {len(files)} photos failed (listed above)")
