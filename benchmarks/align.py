"""Alignment benchmarks: speed, golden agreement, and the UTKFace template measurement.

    python benchmarks/align.py                          # faces/s on tests/fixtures/align photos
    python benchmarks/align.py --photos DIR             # ... on any folder of photos
    python benchmarks/align.py --golden DIR             # PSNR vs the official crops + detector agreement
                                                        # (DIR = shared/golden/alignment, photos next to it via --photos)
    python benchmarks/align.py --measure-utkface ZIP    # re-measure the 'utkface' template constants

Prints tables; nothing is written.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from editkit.photos import load_photo  # noqa: E402
from inversion.align import TEMPLATES, align_face, align_faces  # noqa: E402
from inversion.align.detection import detect_boxes, dlib_landmarks, shape_predictor  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def table(rows: list[list], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))


def bench_speed(folder: Path, size: int, template: str) -> None:
    shape_predictor()  # model loading is a one-off cost per process, not per face
    detect_boxes(np.zeros((64, 64, 3), np.uint8))
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and "__face" not in p.name)
    rows, total_faces, totals = [], 0, np.zeros(3)
    for p in photos:
        img = load_photo(p)
        t0 = time.perf_counter()
        dets = detect_boxes(img)
        t1 = time.perf_counter()
        lms = [dlib_landmarks(img, d.box) for d in dets]
        t2 = time.perf_counter()
        for lm in lms:
            align_face(img, lm, template, size=size)
        t3 = time.perf_counter()
        parts = np.array([t1 - t0, t2 - t1, t3 - t2])
        totals += parts
        total_faces += len(dets)
        rows.append([p.name, f"{img.shape[1]}x{img.shape[0]}", len(dets), *(f"{v * 1000:.0f}" for v in parts),
                     f"{len(dets) / parts.sum():.1f}" if dets else "-"])
    rows.append(["TOTAL", "", total_faces, *(f"{v * 1000:.0f}" for v in totals),
                 f"{total_faces / max(totals.sum(), 1e-9):.1f}"])
    print(f"dlib HOG detection (upsample 1) + 68 landmarks + {template} alignment at {size}px "
          f"(transform {size * TEMPLATES[template].supersample}px)")
    table(rows, ["photo", "size", "faces", "detect ms", "landmarks ms", "align ms", "faces/s"])


def bench_golden(golden: Path, photos: Path) -> None:
    from PIL import Image

    doc = json.loads((golden / "alignment.json").read_text())
    rows, worst = [], float("inf")
    for ph in doc["photos"]:
        img = load_photo(photos / ph["photo"])
        dets = align_faces(img, size=256) if ph["faces"] else []
        boxes_ok = [tuple(f.box) for f in dets] == [tuple(f["box"]) for f in ph["faces"]]
        for f in ph["faces"]:
            for key, size in (("aligned_256", 256), ("aligned_1024", 1024)):
                if key in f:
                    ref = np.asarray(Image.open(golden / f[key]).convert("RGB"))
                    got = align_face(img, np.array(f["landmarks68"], float), "ffhq", size=size).image
                    v = psnr(got, ref)
                    worst = min(worst, v)
                    rows.append([f[key], f"{v:.2f}", "yes" if boxes_ok else "NO"])
        if not ph["faces"]:
            rows.append([ph["photo"] + " (no face)", "-", "yes" if not dets else "NO"])
    table(rows, ["golden crop", "PSNR dB", "same boxes"])
    print(f"worst PSNR {worst:.2f} dB")


def measure_utkface(zip_path: Path, n: int = 400) -> None:
    """Measure UTKFace's framing in the recipe's terms (see inversion/align/templates.py)."""
    from PIL import Image

    z = zipfile.ZipFile(zip_path)
    names = sorted(x for x in z.namelist() if x.lower().endswith(".jpg"))
    sel = names[:: max(len(names) // n, 1)][:n]
    lms = []
    for name in sel:
        im = np.asarray(Image.open(io.BytesIO(z.read(name))).convert("RGB"))
        pad = 50
        big = np.pad(im, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        big = np.asarray(Image.fromarray(big).resize((big.shape[1] * 2, big.shape[0] * 2), Image.Resampling.BICUBIC))
        dets = detect_boxes(big, upsample=0) or detect_boxes(big, upsample=1)
        if not dets:
            continue
        d = max(dets, key=lambda x: x.score)
        lms.append((dlib_landmarks(big, d.box) + 0.5) / 2 - 0.5 - pad)
    lm = np.array(lms)
    side = 200.0
    el, er = lm[:, 36:42].mean(1), lm[:, 42:48].mean(1)
    e = (el + er) / 2
    de, dm = er - el, (lm[:, 48] + lm[:, 54]) / 2 - e
    nde, ndm = np.hypot(*de.T), np.hypot(*dm.T)
    x = de + np.stack([dm[:, 1], -dm[:, 0]], 1)
    xd = x / np.hypot(*x.T)[:, None]
    yd = np.stack([-xd[:, 1], xd[:, 0]], 1)
    off = np.array([side / 2 - 0.5] * 2) - e
    true = np.array([[-0.5, -0.5], [-0.5, side - 0.5], [side - 0.5, side - 0.5], [side - 0.5, -0.5]])

    def corner_err(a: float, b: float, c: float) -> np.ndarray:
        half = np.maximum(a * nde, b * ndm)[:, None]
        cc = e + c * dm
        q = np.stack([cc - xd * half - yd * half, cc - xd * half + yd * half,
                      cc + xd * half + yd * half, cc + xd * half - yd * half], 1)
        return np.sqrt(((q - true) ** 2).sum(-1)).mean(1) / side

    best = min(((float(np.median(corner_err(a, b, c))), a, b, c)
                for a in np.linspace(1.1, 1.4, 31) for b in np.linspace(1.0, 1.4, 41)
                for c in np.linspace(0.45, 0.56, 12)), key=lambda t: t[0])
    tpl = TEMPLATES["utkface"]
    cur = corner_err(tpl.eye_scale, tpl.mouth_scale, tpl.centre_shift)
    ang = np.degrees(np.arctan2(xd[:, 1], xd[:, 0]))
    rows = [
        ["crops detected", f"{len(lm)} of {len(sel)}"],
        ["eye level / H (median)", f"{np.median(e[:, 1] / side):.3f}"],
        ["eye distance / W (median)", f"{np.median(nde / side):.3f}"],
        ["level-eyes axis angle, deg (median)", f"{np.median(ang):.2f}"],
        ["centre shift along d_mouth (median)", f"{np.median((off * yd).sum(1) / ndm):.3f}"],
        ["grid-search best eye/mouth scale, shift", f"{best[1]:.3f} / {best[2]:.3f}, {best[3]:.3f}"],
        ["  median corner error / side", f"{best[0]:.4f}"],
        ["template now: median corner error / side", f"{np.median(cur):.4f} (mean {cur.mean():.4f})"],
    ]
    table(rows, ["UTKFace measurement", "value"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=ROOT / "tests" / "fixtures" / "align", help="folder of photos")
    ap.add_argument("--size", type=int, default=256, help="crop size")
    ap.add_argument("--template", default="ffhq", help="alignment template")
    ap.add_argument("--golden", type=Path, help="shared/golden/alignment folder (compare with the official crops)")
    ap.add_argument("--measure-utkface", type=Path, metavar="ZIP", help="utkface_aligned_200.zip to measure")
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    if args.measure_utkface:
        measure_utkface(args.measure_utkface)
    elif args.golden:
        bench_golden(args.golden, args.photos)
    else:
        bench_speed(args.photos, args.size, args.template)


if __name__ == "__main__":
    main()
