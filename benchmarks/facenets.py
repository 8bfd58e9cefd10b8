"""Face networks (editkit.facenets): CPU speed per network and accuracy on real UTKFace labels.

Usage:
  python benchmarks/facenets.py                      # both tables (300 UTKFace faces, seed 0)
  python benchmarks/facenets.py --speed              # speed only
  python benchmarks/facenets.py --accuracy --n 300 --zip ../shared/data/faces/utkface_aligned_200.zip
  python benchmarks/facenets.py --json out.json      # also write the numbers

Speed: milliseconds per face of each network's forward pass (face-api inputs already made) at
batch 1 and 32, median of ``--repeats`` runs, plus ``analyze`` end to end (uint8 crop → all four).
Accuracy: a seeded random ``--n`` of the UTKFace crops (labels in the file names), each cropped
several ways: the UTKFace crop as is (tight; face-api's reference: age MAE 6.0 years, gender
accuracy 0.95), the same with the landmark box, and the crops the editkit aligner makes for each
template, analysed whole, with the landmarks (dlib's 68 points, mapped into each crop) and with
``locate=2`` (the landmark network finds the face itself).
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from editkit import facenets  # noqa: E402

REFERENCE = {"age_mae": 6.0, "gender_acc": 0.95}  # face-api on tight UTKFace crops (issue 10)
DEFAULT_ZIP = ROOT.parent / "shared" / "data" / "faces" / "utkface_aligned_200.zip"
#: (row name, template or None for the UTKFace crop itself, output size)
CROPS = [("utkface crop (tight)", None, None), ("aligner ffhq 256", "ffhq", 256),
         ("aligner utkface 200", "utkface", 200), ("aligner utkface 64 (bundled model)", "utkface", 64)]
CROP_1024 = ("aligner ffhq 1024", "ffhq", 1024)  # --with-1024: slow (4096-px supersampled warps)


def bench_speed(repeats: int) -> list[list[str]]:
    rows = []
    for name, size in facenets.INPUT_SIZES.items():
        net = facenets.load(name)
        row = [name, f"{size}"]
        for batch in (1, 32):
            x = torch.randn(batch, 3, size, size) * 0.3
            with torch.inference_mode():
                net(x)
                times = []
                for _ in range(repeats):
                    t = time.perf_counter()
                    net(x)
                    times.append(time.perf_counter() - t)
            row.append(f"{1000 * statistics.median(times) / batch:.2f}")
        rows.append(row)
    img = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    row = ["analyze (all four, 200 px uint8)", "-"]
    for batch in (1, 32):
        imgs = [img] * batch
        facenets.analyze(imgs)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            facenets.analyze(imgs)
            times.append(time.perf_counter() - t)
        row.append(f"{1000 * statistics.median(times) / batch:.2f}")
    rows.append(row)
    return rows


def utk_landmarks(image: np.ndarray) -> np.ndarray | None:
    """dlib's 68 landmarks on a 200-px UTKFace crop (edge-padded and upsampled ×2 so HOG fires)."""
    from PIL import Image

    from inversion.align.detection import detect_boxes, dlib_landmarks

    pad = 50
    big = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    big = np.asarray(Image.fromarray(big).resize((big.shape[1] * 2, big.shape[0] * 2), Image.Resampling.BICUBIC))
    dets = detect_boxes(big, upsample=0) or detect_boxes(big, upsample=1)
    if not dets:
        return None
    d = max(dets, key=lambda x: x.score)
    return (dlib_landmarks(big, d.box) + 0.5) / 2 - 0.5 - pad


def load_sample(zip_path: Path, n: int, seed: int):
    """(images, ages, genders, landmarks, names) of a seeded random ``n`` of the zip's crops."""
    from PIL import Image

    from navigator.age_gender import parse_utkface_name

    z = zipfile.ZipFile(zip_path)
    names = sorted(x for x in z.namelist() if x.lower().endswith(".jpg") and parse_utkface_name(x))
    pick = np.random.default_rng(seed).choice(len(names), n, replace=False)
    out = []
    for i in sorted(pick):
        name = names[i]
        img = np.asarray(Image.open(io.BytesIO(z.read(name))).convert("RGB"))
        age, gender = parse_utkface_name(name)
        out.append((img, age, gender, utk_landmarks(img), name))
    return out


def bench_accuracy(zip_path: Path, n: int, seed: int, padding: float,
                   with_1024: bool = False) -> tuple[list[list[str]], dict]:
    from inversion.align import align_face

    t0 = time.perf_counter()
    sample = load_sample(zip_path, n, seed)
    found = [s for s in sample if s[3] is not None]
    print(f"[{time.perf_counter() - t0:.0f}s] {len(sample)} faces, dlib landmarks on {len(found)}", flush=True)
    ages = np.array([s[1] for s in found], np.float64)
    male = np.array([s[2] == 0 for s in found])
    results, rows = {}, []

    def score(key: str, res: facenets.FaceAnalysis, ref: facenets.FaceAnalysis | None) -> None:
        err = np.abs(res.age - ages)
        acc = float(((res.p_male > 0.5) == male).mean())
        entry = {"age_mae": float(err.mean()), "age_median_ae": float(np.median(err)), "gender_acc": acc}
        if ref is not None:
            d_age = np.abs(res.age - ref.age)
            entry.update(age_vs_tight_mean=float(d_age.mean()), age_vs_tight_median=float(np.median(d_age)),
                         age_vs_tight_p90=float(np.percentile(d_age, 90)),
                         gender_agree_tight=float(((res.p_male > 0.5) == (ref.p_male > 0.5)).mean()))
        results[key] = entry
        rows.append([key, f"{entry['age_mae']:.2f}", f"{acc:.3f}",
                     f"{entry['age_vs_tight_mean']:.2f} / {entry['age_vs_tight_p90']:.1f}" if ref is not None else "-",
                     f"{entry['gender_agree_tight']:.3f}" if ref is not None else "-"])
        print(f"[{time.perf_counter() - t0:.0f}s] {' | '.join(rows[-1])}", flush=True)

    tight = None
    nets = ("age_gender",)
    for label, template, size in CROPS + ([CROP_1024] if with_1024 else []):
        if template is None:
            imgs, lms = [s[0] for s in found], [s[3] for s in found]
        else:
            faces = [align_face(s[0], s[3], template=template, size=size) for s in found]
            imgs, lms = [f.image for f in faces], [f.landmarks_in_crop for f in faces]
        whole = facenets.analyze(imgs, networks=nets)
        if tight is None:
            tight = whole
        score(f"{label}, whole crop", whole, None if template is None else tight)
        score(f"{label}, dlib landmark box", facenets.analyze(imgs, landmarks=lms, box_padding=padding, networks=nets),
              tight)
        if template is not None:
            score(f"{label}, locate=2 (no landmarks given)",
                  facenets.analyze(imgs, locate=2, box_padding=padding, networks=nets), tight)
    results["_n"] = len(found)
    return rows, results


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
    fmt = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    return "\n".join([fmt(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [fmt(r) for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", action="store_true", help="speed table only")
    ap.add_argument("--accuracy", action="store_true", help="UTKFace table only")
    ap.add_argument("--zip", type=Path, default=DEFAULT_ZIP)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--box-padding", type=float, default=facenets.DEFAULT_BOX_PADDING)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--with-1024", action="store_true", help="also the 1024-px FFHQ crops (slow)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out: dict = {"threads": a.threads}
    if not a.accuracy:
        rows = bench_speed(a.repeats)
        print(f"\nms per face, CPU, {a.threads} thread(s), median of {a.repeats} (shared machine: noisy)")
        print(table(["network", "input", "batch 1", "batch 32"], rows))
        out["speed_ms_per_face"] = {r[0]: {"batch1": float(r[2]), "batch32": float(r[3])} for r in rows}
    if not a.speed:
        if not a.zip.is_file():
            raise SystemExit(f"{a.zip}: UTKFace zip not found (give --zip)")
        rows, res = bench_accuracy(a.zip, a.n, a.seed, a.box_padding, a.with_1024)
        print(f"\nUTKFace, seeded random {a.n} (seed {a.seed}), {res['_n']} with dlib landmarks; landmark box "
              f"padding {a.box_padding}; reference (face-api, tight crops): age MAE "
              f"{REFERENCE['age_mae']} y, gender acc {REFERENCE['gender_acc']}")
        print(table(["crop", "age MAE (y)", "gender acc", "|Δage| vs tight: mean / p90", "gender = tight"], rows))
        out["utkface"] = res
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
