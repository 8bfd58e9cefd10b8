"""Edit quality on the project's real test photos, for each inversion method × render mode.

For every face (bundled model) and each named direction (default: smile, skin-light) at strengths
0, half and all of its recommended strength, in the face region (the paste-back hull):

* sharpness retained: variance of the Laplacian, edited / original (target with transfer: >= 90 %
  at every strength);
* PSNR of the face against the photo at strength 0 and at the recommended strength (transfer at
  strength 0: identical, inf);
* ΔE (CIE76, mean) inside the face region but outside the change's own mask (the transfer mask of
  the same edit): what moved that the edit did not ask for;
* identity distance original -> edited at the recommended strength (editkit.facenets, face-api's
  descriptor on the photo with the face's landmarks; < 0.6 = same person; target: >= 90 % of faces);
* the named attribute's change (landmark probe: smile width / inter-ocular distance, skin brightness)
  from the same mode's strength-0 output to the recommended strength (target: transfer moves it the
  named way at least as much as generated);
* seconds per face: inversion (per method) and rendering (per mode).

Writes a JSON with every number and a contact sheet PNG (per face: photo | generated | transfer, per
direction, method ``--sheet-method``). The machine is shared: timings are medians and noisy.

    python benchmarks/edit_quality.py                       # encoder, hybrid (100 steps), pti on 3 faces
    python benchmarks/edit_quality.py --methods encoder --max-faces 12
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHOTOS = ["fr_obama.jpg", "dlib_tom_cruise.jpg", "hyperstyle_face_image.jpg", "fa_aflw_test.jpg",
          "fr_two_people.jpg", "dlib_voc_2008_001009.jpg", "gfpgan_10045.png", "fr_obama_and_biden.jpg",
          "insightface_t1.jpg"]
ATTRIBUTE = {"smile": "smile_width", "skin-light": "skin_brightness", "skin-hue": "skin_hue",
             "mouth-open": "mouth_open", "head-turn": "yaw"}
MODES = ("generated", "transfer")


def photo_paths(folder: Path | None = None) -> list[Path]:
    """The photos of ``folder`` named in PHOTOS (e.g. the project's shared test photos), else the
    repository's own real fixture photos."""
    found = [folder / p for p in PHOTOS if (folder / p).is_file()] if folder else []
    return found or sorted((ROOT / "tests" / "fixtures" / "product").glob("*.jpg"))


def sharpness(img: np.ndarray, region: np.ndarray) -> float:
    import cv2

    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(g, cv2.CV_64F)[region].var())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import cv2

    la = cv2.cvtColor(a.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    lb = cv2.cvtColor(b.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    return np.linalg.norm(la - lb, axis=-1)


def med(values) -> float:
    v = [x for x in values if x is not None and not np.isnan(x)]  # inf (identical) is a value
    return float(statistics.median(v)) if v else float("nan")


def main(argv=None) -> int:
    import cv2
    import torch

    torch.set_num_threads(1)
    import editkit
    from editkit import facenets
    from editkit.photos import read_photo, save_image
    from editkit.render import face_crops, make_grid, paste_mask, render_faces
    from inversion.pti import PTISettings
    from navigator.probe import ATTRIBUTES, LandmarkProbe

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photo-dir", type=Path, default=None, help="folder with the test photos (default: the fixtures)")
    ap.add_argument("--methods", default="encoder,hybrid,pti")
    ap.add_argument("--attrs", default="skin-light")
    ap.add_argument("--max-faces", type=int, default=10, help="faces in all (first photos first)")
    ap.add_argument("--pti-faces", type=int, default=3, help="faces for the slow pti method")
    ap.add_argument("--steps", type=int, default=100, help="optimisation steps of hybrid (and of pti's pivot)")
    ap.add_argument("--pti-steps", type=int, default=150)
    ap.add_argument("--sheet-method", default="encoder")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "edit_quality.json")
    ap.add_argument("--sheet", type=Path, default=ROOT / "benchmarks" / "results" / "edit_quality.png")
    args = ap.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    ed = editkit.Editor(method="encoder", pti=PTISettings(steps=args.pti_steps))
    nav = ed.navigator
    ks = [ed.resolve_attr(a) for a in args.attrs.split(",")]
    probe = LandmarkProbe()

    faces = []  # (photo path, Photo, face index)
    for p in photo_paths(args.photo_dir):
        src = read_photo(p)
        for f in ed.align(src):
            if len(faces) < args.max_faces:
                faces.append((p, src, f.index))
    print(f"{len(faces)} faces from {len({p for p, _, _ in faces})} photos; directions "
          f"{[nav.labels[k] for k in ks]}; methods {methods}", file=sys.stderr)

    def attribute(img: np.ndarray, face, name: str) -> float:
        crop = face_crops(img, [face], 256)[0]
        return float(probe.attributes(crop)[ATTRIBUTES.index(name)])

    def identity(img: np.ndarray, face) -> np.ndarray:
        return facenets.analyze(img, landmarks=face.landmarks, networks=("recognition",)).descriptor[0]

    rows, sheet_rows = [], []
    for method in methods:
        n_faces = args.pti_faces if method == "pti" else len(faces)
        for p, src, fidx in faces[:n_faces]:
            opts = {} if method == "encoder" else {"steps": args.steps}
            if method == "pti":
                ends = [s * nav.offsets()[k].detach() for k in ks for s in nav.strength_range[k]]
                opts["offsets"] = torch.stack(ends)
            t0 = time.perf_counter()
            fi = ed.invert(src, [fidx], method, **opts)[0]
            t_inv = time.perf_counter() - t0
            face = fi.face
            region = paste_mask(src.array.shape, [face]) > 0.5
            id0 = identity(src.array, face)
            w = fi.ws[None]
            sheet = [face_crops(src.array, [face], 192)[0]]
            for k in ks:
                label = nav.labels[k] or f"attr{k}"
                rec_s = float(nav.strength_range[k][1])
                base = label if label in ATTRIBUTE else label.rsplit("-", 1)[0]  # skin-light-2 -> skin-light
                attr_name = ATTRIBUTE.get(base, "skin_brightness")
                results = {}
                for s in (0.0, 0.5 * rec_s, rec_s):
                    with torch.no_grad():
                        we = nav.edit(w, k, s)
                    rec, aft = ed.synthesize(torch.cat([w, we]), fi.generator)
                    for mode in MODES:
                        t1 = time.perf_counter()
                        out, mask = render_faces(src.array, [(face, rec, aft)], mode)
                        results[(mode, s)] = (out, mask, time.perf_counter() - t1)
                change = results[("transfer", rec_s)][1] > 0
                outside = region & ~change
                for mode in MODES:
                    out0 = results[(mode, 0.0)][0]
                    a0 = attribute(out0, face, attr_name)
                    out_r = results[(mode, rec_s)][0]
                    row = {"photo": p.name, "face": fidx, "method": method, "render": mode, "direction": label,
                           "strength": rec_s, "invert_s": t_inv,
                           "render_s": med([results[(mode, s)][2] for s in (0.0, 0.5 * rec_s, rec_s)]),
                           "sharpness": {f"{s:g}": sharpness(results[(mode, s)][0], region) / sharpness(src.array, region)
                                         for s in (0.0, 0.5 * rec_s, rec_s)},
                           "psnr_0": psnr(out0[region], src.array[region]),
                           "psnr_rec": psnr(out_r[region], src.array[region]),
                           "dE_outside_mask": float(delta_e(out_r, src.array)[outside].mean()) if outside.sum() > 100 else None,
                           "identity": float(np.linalg.norm(identity(out_r, face) - id0)),
                           "attribute": attr_name,
                           "attribute_change": attribute(out_r, face, attr_name) - a0,
                           "max_abs_diff_0": int(np.abs(out0.astype(int) - src.array.astype(int)).max())}
                    rows.append(row)
                    print(f"{method:8s} {mode:9s} {p.name[:22]:22s} f{fidx} {label:10s} sharp(min) "
                          f"{min(row['sharpness'].values()):.2f} psnr0 {row['psnr_0']:.1f} psnr {row['psnr_rec']:.1f} "
                          f"id {row['identity']:.3f} d{attr_name} {row['attribute_change']:+.4f}", file=sys.stderr, flush=True)
                sheet += [face_crops(results[(m, rec_s)][0], [face], 192)[0] for m in MODES]
            fi.generator = None
            if method == args.sheet_method:
                sheet_rows.append(sheet)

    # ---------------------------------------------------------------------------------------- summary
    summary = {}
    print(f"\n{'method':8s} {'render':9s} {'faces':>5s} {'sharp min':>9s} {'PSNR s=0':>9s} {'PSNR rec':>9s} "
          f"{'ΔE out':>7s} {'id<0.6':>7s} {'id med':>7s} " + " ".join(f"{'Δ' + nav.labels[k][:9]:>11s}" for k in ks)
          + f" {'inv s':>6s} {'rend s':>6s}")
    for method in methods:
        for mode in MODES:
            sel = [r for r in rows if r["method"] == method and r["render"] == mode]
            if not sel:
                continue
            ids = [r["identity"] for r in sel]
            s = {"faces": len({(r["photo"], r["face"]) for r in sel}),
                 "sharpness_min_median": med([min(r["sharpness"].values()) for r in sel]),
                 "sharpness_min_worst": min(min(r["sharpness"].values()) for r in sel),
                 "psnr_0_median": med([r["psnr_0"] for r in sel]), "psnr_rec_median": med([r["psnr_rec"] for r in sel]),
                 "dE_outside_median": med([r["dE_outside_mask"] for r in sel]),
                 "identity_below_0.6": float(np.mean([d < facenets.SAME_PERSON_DISTANCE for d in ids])),
                 "identity_median": med(ids),
                 "attribute_change_median": {nav.labels[k]: med([r["attribute_change"] for r in sel
                                                                 if r["direction"] == nav.labels[k]]) for k in ks},
                 "max_abs_diff_at_0": max(r["max_abs_diff_0"] for r in sel),
                 "invert_s_median": med([r["invert_s"] for r in sel]), "render_s_median": med([r["render_s"] for r in sel])}
            summary[f"{method}/{mode}"] = s
            print(f"{method:8s} {mode:9s} {s['faces']:5d} {s['sharpness_min_median']:9.2f} {s['psnr_0_median']:9.1f} "
                  f"{s['psnr_rec_median']:9.1f} {s['dE_outside_median']:7.2f} {s['identity_below_0.6']:7.0%} "
                  f"{s['identity_median']:7.3f} " + " ".join(f"{v:+11.4f}" for v in s["attribute_change_median"].values())
                  + f" {s['invert_s_median']:6.1f} {s['render_s_median']:6.2f}")
    print("\ntargets (transfer): strength 0 identical (max |diff| <= 1), sharpness >= 0.90 at every strength, "
          "identity < 0.6 for >= 90 % of faces, named attribute moves at least as much as with generated")
    for method in methods:
        t, g = summary.get(f"{method}/transfer"), summary.get(f"{method}/generated")
        if not t:
            continue
        moves = {a: (t["attribute_change_median"][a] >= g["attribute_change_median"][a]) for a in t["attribute_change_median"]}
        print(f"  {method:8s} identical at 0: {t['max_abs_diff_at_0'] <= 1}; sharpness worst {t['sharpness_min_worst']:.2f} "
              f"({'ok' if t['sharpness_min_worst'] >= 0.9 else 'MISSED'}); identity {t['identity_below_0.6']:.0%} "
              f"({'ok' if t['identity_below_0.6'] >= 0.9 else 'MISSED'}); attribute >= generated: {moves}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "rows": rows,
                                    "settings": {k: str(v) for k, v in vars(args).items()},
                                    "note": "bundled model (64 px); shared 2-core CPU, timings noisy"}, indent=1) + "\n")
    if sheet_rows:
        heads = ["photo"] + [f"{nav.labels[k]} {m}" for k in ks for m in MODES]
        save_image(args.sheet, make_grid(sheet_rows, pad=4))
        print(f"sheet columns: {' | '.join(heads)}")
    print(f"-> {args.out}, {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
