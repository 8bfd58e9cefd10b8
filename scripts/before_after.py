"""Before/after sheet of real photos for the README: one row per face, crops at 1:1.

Each row: the whole photo (small, the face boxed) | the face before | after with ``--render transfer``
(the default) | after with ``--render generated`` (the old paste-back), all three face crops cut at
the photo's own resolution with no rescaling, so sharpness can be judged.

    python scripts/before_after.py                      # docs/images/before_after.png
    python scripts/before_after.py a.jpg b.jpg --attr 13 --strength 3 -o sheet.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path("/work/shared/data/photos/unaligned")
DEFAULT_PHOTOS = [ROOT / "tests" / "fixtures" / "product" / "astronaut.jpg", SHARED / "fr_obama.jpg",
                  SHARED / "dlib_tom_cruise.jpg", SHARED / "hyperstyle_face_image.jpg"]


def window(crop: np.ndarray, size: int) -> np.ndarray:
    """The central ``size``×``size`` pixels of a crop at 1:1 (padded white when the face is smaller)."""
    h, w = crop.shape[:2]
    out = np.full((size, size, 3), 255, np.uint8)
    y0, x0 = max((h - size) // 2, 0), max((w - size) // 2, 0)
    part = crop[y0:y0 + size, x0:x0 + size]
    oy, ox = (size - part.shape[0]) // 2, (size - part.shape[1]) // 2
    out[oy:oy + part.shape[0], ox:ox + part.shape[1]] = part
    return out


def thumbnail(photo: np.ndarray, face, size: int) -> np.ndarray:
    import cv2

    img = photo.copy()
    q = np.asarray(face.quad, dtype=np.float64)
    t = max(2, int(round(max(img.shape[:2]) / size)))
    cv2.polylines(img, [np.round(q).astype(np.int32)], True, (255, 40, 40), t)
    s = size / max(img.shape[:2])
    small = cv2.resize(img, (max(int(img.shape[1] * s), 1), max(int(img.shape[0] * s), 1)), interpolation=cv2.INTER_AREA)
    return window(small, size)


def main(argv=None) -> int:
    import torch

    torch.set_num_threads(1)
    import editkit
    from editkit.photos import read_photo, save_image
    from editkit.render import face_crops, make_grid, render_faces

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("photos", nargs="*", type=Path)
    ap.add_argument("--attr", default="13")
    ap.add_argument("--strength", type=float, default=3.0)
    ap.add_argument("--method", default="hybrid")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--size", type=int, default=256, help="side of each 1:1 crop window")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "images" / "before_after.png")
    args = ap.parse_args(argv)
    photos = args.photos or [p for p in DEFAULT_PHOTOS if p.is_file()]
    ed = editkit.Editor(method=args.method, invert_options={"steps": args.steps} if args.steps else None)
    k = ed.resolve_attr(args.attr)
    rows = []
    for p in photos:
        src = read_photo(p)
        for fi in ed.invert(src):
            with torch.no_grad():
                we = ed.navigator.edit(fi.ws[None], k, args.strength)
            rec, aft = ed.synthesize(torch.cat([fi.ws[None], we]), fi.generator)
            outs = [render_faces(src.array, [(fi.face, rec, aft)], mode)[0] for mode in ("transfer", "generated")]
            crops = face_crops(src.array, [fi.face], None) + [face_crops(o, [fi.face], None)[0] for o in outs]
            rows.append([thumbnail(src.array, fi.face, args.size)] + [window(c, args.size) for c in crops])
            print(f"{p.name} face {fi.index}: crop {crops[0].shape[0]} px", file=sys.stderr)
    sheet = make_grid(rows, pad=4)
    head = _header(sheet.shape[1], args.size, [f"photo", "before (1:1)", f"{ed.navigator.labels[k] or args.attr} "
                                                f"{args.strength:+g}: transfer", "generated (paste-back)"])
    save_image(args.output, np.concatenate([head, sheet]))
    print(f"-> {args.output}")
    return 0


def _header(width: int, cell: int, titles: list[str]) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, 22), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for i, t in enumerate(titles):
        draw.text((4 + i * (cell + 4) + 6, 5), t, fill=(0, 0, 0))
    return np.asarray(img)


if __name__ == "__main__":
    raise SystemExit(main())
