"""``editkit invert``: align the faces of a photo and write their W+ codes, reconstructions and quality."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from ..cli_app import app
from ..errors import UsageError
from .edit import (_DEVICE_HELP, _ENC_HELP, _GEN_HELP, _JSON_HELP, _METHOD_HELP, _MODEL_HELP, DEFAULT_DEVICE, check_early,
                   make_editor, parse_faces)


#: per-face numbers in the quality report (identity: editkit.facenets descriptors, distance < 0.6 = same person)
QUALITY_KEYS = ("psnr", "ssim", "lpips", "identity_distance", "identity_similarity")


def output_paths(latents: Path) -> dict[str, Path]:
    """The files written next to ``latents.npz``: reconstruction grid and quality JSON."""
    stem = latents.with_suffix("")
    return {"latents": latents, "recon": Path(f"{stem}.recon.png"), "quality": Path(f"{stem}.quality.json")}


def _aligned_crop(photo: Path, size: int) -> np.ndarray:
    from PIL import Image

    from ..photos import load_photo

    arr = load_photo(photo)
    if arr.shape[0] != arr.shape[1]:
        raise UsageError(f"--aligned expects a square aligned crop, got {arr.shape[1]}x{arr.shape[0]}", photo)
    if arr.shape[0] != size:
        arr = np.asarray(Image.fromarray(arr).resize((size, size), Image.LANCZOS))
    return arr


@app.command("invert")
def invert_cmd(
    photo: Path = typer.Argument(..., help="Photo with one or more faces (never modified); with --aligned, an aligned face crop."),
    method: str = typer.Option("hybrid", "--method", "-M", help=_METHOD_HELP),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Latents file (.npz); default: PHOTO.latents.npz next to the photo. The reconstruction grid (.recon.png) and quality numbers (.quality.json) go next to it."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    generator: Optional[str] = typer.Option(None, "--generator", help=_GEN_HELP),
    encoder: Optional[str] = typer.Option(None, "--encoder", help=_ENC_HELP),
    face: str = typer.Option("all", "--face", help="Which face to invert: an index (0 = leftmost) or 'all'."),
    aligned: bool = typer.Option(False, "--aligned", help="PHOTO is already an aligned square face crop: skip detection and alignment."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimisation steps (default: 1000 for optimize, 140 for hybrid; an upper bound with early stopping)."),
    w_space: str = typer.Option("w+", "--w-space", help="Optimise one code per layer ('w+') or one shared code ('w')."),
    vgg16: Optional[Path] = typer.Option(None, "--vgg16", help="Local torchvision VGG16 weights (vgg16-397923af.pth) for the LPIPS loss and metric; default: $EDITKIT_VGG16 or the torch hub cache. Without it a pixel + feature loss is used (blurrier detail)."),
    stop_psnr: Optional[float] = typer.Option(None, "--stop-psnr", help="Stop optimising once every face reaches this PSNR (dB)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Faces optimised together (default: all faces of the photo, up to 32 at <= 128 px, 8 at 256 px, 2 above)."),
    id_weight: Optional[float] = typer.Option(None, "--id-weight", min=0.0, help="Weight of the face-identity loss (editkit.facenets recognition network) in optimize/hybrid; default 0 (off). 0.1 measured on held-out real faces: identity distance -8 % for -0.1 dB PSNR at twice the time per step."),
    early_stop: bool = typer.Option(True, "--early-stop/--no-early-stop", help="Stop optimising each face once its loss stops improving (--steps is then an upper bound)."),
    precision: str = typer.Option("auto", "--precision", help="Optimisation arithmetic: auto (bfloat16 where the CPU supports it natively, else float32), float32 or bfloat16."),
    device: str = typer.Option(DEFAULT_DEVICE, "--device", help=_DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Invert every face of PHOTO into the generator's W+ space (aligns first).

    Writes the W+ code of each face (array "ws", faces x num_ws x w_dim, in the .npz, with the
    face index, alignment quad and quality numbers), a grid of aligned face | reconstruction,
    and PSNR / SSIM, identity distance / similarity (face-recognition descriptors of input and
    reconstruction; distance < 0.6 = same person) and LPIPS when VGG16 weights are available, per
    face and averaged.
    """
    from ..atomic import atomic_path, atomic_write_text, check_writable
    from ..errors import BadInputError
    from ..photos import save_image
    from ..render import make_grid, to_uint8

    check_early(method, device)
    if not photo.is_file():
        raise BadInputError("is a folder, not an image file" if photo.is_dir() else "no such file", photo)
    if w_space not in ("w", "w+"):
        raise UsageError(f"--w-space must be 'w' or 'w+', got {w_space!r}")
    out = output or photo.with_name(f"{photo.stem}.latents.npz")
    if out.suffix != ".npz":
        raise UsageError("the latents file must end in .npz", out)
    paths = output_paths(out)
    for p in paths.values():
        check_writable(p, overwrite=overwrite, inputs=(photo,))
    which = parse_faces(face)
    editor = make_editor(model, generator, encoder, None, device, method)
    if aligned:
        faces = [(0, None)]
        crops = [_aligned_crop(photo, editor.G.resolution)]
    else:
        found = editor.align(photo)
        if which != "all" and not 0 <= which < len(found):
            raise UsageError(f"face {which} out of range: the photo has {len(found)} face(s)")
        faces = list(enumerate(found)) if which == "all" else [(which, found[which])]
        crops = [f.image for _, f in faces]
    if precision not in ("auto", "float32", "bfloat16"):
        raise UsageError(f"--precision must be auto, float32 or bfloat16, got {precision!r}")
    options = dict(steps=steps, w_space=w_space, vgg16=vgg16, stop_psnr=stop_psnr, batch_size=batch_size,
                   identity_weight=id_weight, early_stop=early_stop, precision=precision)
    from ..console import Progress

    with Progress("invert: optimising") as bar:
        inv = editor.invert_crops(crops, method, progress=bar.invert_callback(), **options)
    ws = inv.ws.detach().cpu().float().numpy()
    recon = to_uint8(inv.images)
    m = inv.metrics
    n = len(faces)
    arrays = {
        "ws": ws.astype(np.float32),
        "face_index": np.array([i for i, _ in faces], dtype=np.int64),
        "psnr": np.array(m["psnr"], dtype=np.float32),
        "ssim": np.array(m["ssim"], dtype=np.float32),
        "method": np.array(inv.method),
    }
    for k in ("lpips", "identity_distance", "identity_similarity"):
        if m.get(k) is not None:
            arrays[k] = np.array(m[k], dtype=np.float32)
    if not aligned:
        arrays["quad"] = np.stack([np.asarray(f.quad, dtype=np.float32) for _, f in faces])
    with atomic_path(paths["latents"]) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    save_image(paths["recon"], make_grid([[crops[j], recon[j]] for j in range(n)]))
    face_steps = m.get("steps") or [inv.steps] * n
    report = {
        "photo": str(photo), "method": inv.method, "steps": inv.steps, "seconds": round(inv.seconds, 3),
        "loss": inv.loss, "precision": inv.precision or None, "generator": str(editor.paths["generator"]),
        "encoder": str(editor.paths["encoder"]) if editor.paths["encoder"] else None,
        "faces": [{"face": i, "steps": int(face_steps[j]),
                   **{k: (None if m.get(k) is None else round(float(m[k][j]), 4)) for k in QUALITY_KEYS}}
                  for j, (i, _) in enumerate(faces)],
        "mean": {k: (None if m.get(f"{k}_mean") is None else round(float(m[f"{k}_mean"]), 4))
                 for k in QUALITY_KEYS},
    }
    atomic_write_text(paths["quality"], json.dumps(report, indent=2))
    if as_json:
        from ..console import emit_json

        emit_json({**report, "outputs": {k: str(v) for k, v in paths.items()}})
    else:
        _print_quality(report, paths)


def _print_quality(report: dict, paths: dict[str, Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"inversion ({report['method']}, {report['steps']} steps, {report['seconds']} s"
                    f"{', ' + report['loss'] if report['loss'] else ''})")
    for col in ("face", "PSNR dB", "SSIM", "LPIPS", "ID dist", "ID sim"):
        t.add_column(col, justify="right")

    def fmt(v, spec):
        return "n/a" if v is None else format(v, spec)

    for row in report["faces"] + [{"face": "mean", **report["mean"]}]:
        t.add_row(str(row["face"]), fmt(row["psnr"], ".2f"), fmt(row["ssim"], ".4f"), fmt(row["lpips"], ".4f"),
                  fmt(row["identity_distance"], ".3f"), fmt(row["identity_similarity"], ".3f"))
    console = Console(width=100)
    console.print(t)
    console.print(f"wrote {paths['latents']}, {paths['recon']}, {paths['quality']}")
