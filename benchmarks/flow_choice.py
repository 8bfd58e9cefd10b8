"""Which dense flow splits a generated edit best into geometry: OpenCV DIS or Farneback?

On the faces of the project's real test photos (bundled model, encoder inversion), for every
direction at the end of its recommended range, the flow from the edit to the reconstruction is
measured three ways:

* residual: mean ΔE (CIE76) between the edit and the warped reconstruction, inside the face; the
  better the flow explains the change as motion, the less is left for the (blurred) residual;
* known warp: the reconstruction warped by a known smooth displacement (amplitude 1.5 generator
  pixels); end-point error of the recovered flow (generator pixels);
* time per face pair (median; the machine is shared, so timings are noisy).

    python benchmarks/flow_choice.py [--photos N] [--out benchmarks/results/flow_choice.json]
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
          "fr_two_people.jpg", "dlib_voc_2008_001009.jpg", "gfpgan_10045.png", "insightface_t1.jpg"]


def photo_paths(n: int, folder: Path | None = None) -> list[Path]:
    """The first ``n`` photos of ``folder`` named in PHOTOS, else the repository's own fixture photos."""
    found = [folder / p for p in PHOTOS if (folder / p).is_file()] if folder else []
    return (found or sorted((ROOT / "tests" / "fixtures" / "product").glob("*.jpg")))[:n]


def main(argv=None) -> int:
    import cv2
    import torch

    torch.set_num_threads(1)
    import editkit
    from editkit.render.transfer import TransferSettings, _lab, change_fields, dense_flow, warp

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--photo-dir", type=Path, default=None, help="folder with the test photos (default: the fixtures)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "flow_choice.json")
    args = ap.parse_args(argv)
    ed = editkit.Editor(method="encoder")
    nav = ed.navigator
    pairs = []
    for p in photo_paths(args.photos, args.photo_dir):
        for fi in ed.invert(p):
            w = fi.ws[None]
            for k in range(nav.num_directions):
                s = float(nav.strength_range[k][1])
                with torch.no_grad():
                    we = nav.edit(w, k, s)
                rec, edi = ed.synthesize(torch.cat([w, we]))
                pairs.append((rec, edi))
    print(f"{len(pairs)} reconstruction/edit pairs from {args.photos} photos, {nav.num_directions} directions",
          file=sys.stderr)
    r = pairs[0][0].shape[0]
    n = TransferSettings().field_size
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    known = np.stack([np.sin(2 * np.pi * (xx + 0.3 * yy)), np.cos(2 * np.pi * (yy - 0.2 * xx))], -1) * 1.5 * n / r
    inner = (np.abs(xx - 0.5) < 0.35) & (np.abs(yy - 0.5) < 0.35)
    rows = {}
    for method in ("dis", "farneback"):
        st = TransferSettings(flow=method)
        resid, epe, times, none_resid = [], [], [], []
        for rec, edi in pairs:
            t0 = time.perf_counter()
            f = change_fields(rec, edi, st)
            times.append(time.perf_counter() - t0)
            up = [cv2.resize(x.astype(np.float32) / 255, (n, n), interpolation=cv2.INTER_CUBIC).clip(0, 1) for x in (rec, edi)]
            de = np.linalg.norm(_lab(up[1]) - _lab(warp(up[0], f.flow)), axis=-1)
            resid.append(float(de[inner].mean()))
            none_resid.append(float(np.linalg.norm(_lab(up[1]) - _lab(up[0]), axis=-1)[inner].mean()))
            moved = warp(up[0], known)
            g = [np.rint(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) * 255).astype(np.uint8) for x in (moved, up[0])]
            est = dense_flow(g[0], g[1], method)
            epe.append(float(np.linalg.norm(est - known, axis=-1)[inner].mean() * r / n))
        rows[method] = {"residual_dE_median": statistics.median(resid), "no_warp_dE_median": statistics.median(none_resid),
                        "known_warp_epe_gen_px_median": statistics.median(epe),
                        "seconds_per_pair_median": statistics.median(times), "pairs": len(pairs)}
    print(f"{'flow':10s} {'ΔE left (median)':>17s} {'ΔE no warp':>11s} {'EPE known warp (gen px)':>24s} {'s/pair':>8s}")
    for m, v in rows.items():
        print(f"{m:10s} {v['residual_dE_median']:17.2f} {v['no_warp_dE_median']:11.2f} "
              f"{v['known_warp_epe_gen_px_median']:24.3f} {v['seconds_per_pair_median']:8.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"-> {args.out}  (timings: shared 2-core machine, noisy)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
