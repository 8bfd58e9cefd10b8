"""Edit the faces of a photo with the Python API (several directions at once) and save the results.

    .venv/bin/python examples/edit_photo.py PHOTO [--model BUNDLE] [--attr skin-light --strength 0.5 ...] [-o OUT]

Writes OUT (the full photo with the edits transferred onto its own pixels) and OUT-stem.crops.png (aligned faces
before | after), then prints each face's inversion quality.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import editkit


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", type=Path, help="photo with one or more faces")
    ap.add_argument("--model", default=None, help="bundle folder or registered name (default: the bundled model)")
    ap.add_argument("--attr", action="append", default=None, help="direction index or label (repeatable)")
    ap.add_argument("--strength", action="append", type=float, default=None, help="strength per --attr")
    ap.add_argument("--method", default="hybrid", choices=["hybrid", "encoder", "optimize"], help="inversion method")
    ap.add_argument("-o", "--output", type=Path, default=None, help="output file (default: PHOTO-stem.edited.png)")
    args = ap.parse_args(argv)

    editor = editkit.Editor(args.model, method=args.method)  # loads generator, encoder, navigator once
    attrs = args.attr or [0]
    strengths = args.strength or [2.0]
    result = editor.edit(args.photo, attr=attrs, strength=strengths)
    out = args.output or args.photo.with_name(f"{args.photo.stem}.edited.png")
    result.save(out, crops=True)
    for face in result.faces:
        quality = ", ".join(f"{k} {v:.2f}" for k, v in face.metrics.items() if isinstance(v, float))
        print(f"face {face.index}: {quality}")
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
