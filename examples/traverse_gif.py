"""Animate a face along one direction (GIF or MP4) and write a grid of the first directions.

    .venv/bin/python examples/traverse_gif.py PHOTO [--model BUNDLE] [--attr 0] [--range 3] [-o OUT.gif]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import editkit
from editkit.photos import save_image


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", type=Path, help="photo with a face")
    ap.add_argument("--model", default=None, help="bundle folder or registered name (default: the bundled model)")
    ap.add_argument("--attr", default="0", help="direction index or label")
    ap.add_argument("--range", type=float, default=None, help="strengths -R..+R (default: the recommended range)")
    ap.add_argument("--frames", type=int, default=16, help="frames of the traversal")
    ap.add_argument("--face", type=int, default=0, help="which face of the photo")
    ap.add_argument("-o", "--output", type=Path, default=None, help=".gif or .mp4 (default: PHOTO-stem.traverse.gif)")
    args = ap.parse_args(argv)

    editor = editkit.Editor(args.model, method="encoder")
    face = editor.invert(args.photo, faces=[args.face])[0]  # invert once, reuse the code below
    trav = editor.traverse(None, args.attr, args.range, frames=args.frames, ws=face.ws)
    out = args.output or args.photo.with_name(f"{args.photo.stem}.traverse.gif")
    trav.save(out)
    first = list(range(min(4, len(editor.directions()))))
    grid = editor.traverse(None, first, args.range, frames=7, ws=face.ws).grid()
    grid_path = out.with_name(out.stem + ".grid.png")
    save_image(grid_path, grid)
    print(f"wrote {out} and {grid_path}")
    return out


if __name__ == "__main__":
    main()
