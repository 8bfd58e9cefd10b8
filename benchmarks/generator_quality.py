"""Generator quality: face-network Fréchet distance and k-NN precision/recall against real UTKFace faces.

    PYTHONPATH=. .venv/bin/python benchmarks/generator_quality.py \
        --network v1=editkit/bundled --network v1-early=runs/v1_early/network-snapshot-000002.safetensors

Rows: a disjoint real set (the floor the measure reaches on real faces), the same real set blurred
(sanity: must score worse), then each network (a network file or a bundle folder). Columns: FD in the
128-D descriptor space and in the 256-D pooled trunk space (lower is better), precision and recall
(k=3, descriptor space; higher is better). Prints a table, writes --out JSON.
Sanity check passes when real < blurred real, and every ``--expect-order A<B`` pair holds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

UTKFACE = "../shared/data/faces/utkface_aligned_200.zip"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", action="append", default=[], help="NAME=PATH (network file or bundle folder)")
    ap.add_argument("--real", default=UTKFACE)
    ap.add_argument("--samples", type=int, default=5000, help="generated faces per network and real faces per set")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--blur-sigma", type=float, default=1.0)
    ap.add_argument("--truncation", type=float, default=1.0)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-real", action="store_true", help="only the networks (no real / blurred rows)")
    ap.add_argument("--expect-order", action="append", default=[], help="A<B: row A must have a lower FD than row B")
    ap.add_argument("--out", default="runs/generator_quality.json")
    ap.add_argument("--merge", nargs="*", default=[], help="earlier --out JSON files whose rows join this table")
    ap.add_argument("--note", default="", help="a sentence for the model card (why this many samples, hardware)")
    ap.add_argument("--bundle", default=None, help="write the table into this bundle's build_report.json and model card")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import editkit
    from editkit.generator_quality import blur, face_features, generate_images, real_features, real_images
    from editkit.quality import compare_features

    n = args.samples
    t0 = time.perf_counter()
    ref = {s: real_features(args.real, args.resolution, n, s, part=0) for s in ("descriptor", "trunk")}
    print(f"reference: {n} real faces at {args.resolution} px ({time.perf_counter() - t0:.0f} s)", flush=True)

    rows: dict[str, dict] = {}

    def score(name: str, images: torch.Tensor, note: str) -> None:
        t = time.perf_counter()
        f = face_features(images)
        d = compare_features(ref["descriptor"], f["descriptor"], k=args.k)
        tr = compare_features(ref["trunk"], f["trunk"], k=args.k)
        rows[name] = {"fd_descriptor": d.fd, "fd_trunk": tr.fd, "precision": d.precision, "recall": d.recall,
                      "precision_trunk": tr.precision, "recall_trunk": tr.recall, "n": len(images), "note": note,
                      "seconds": round(time.perf_counter() - t, 1)}
        print(f"{name}: FD {d.fd:.4f} / trunk {tr.fd:.4f}, P {d.precision:.3f} R {d.recall:.3f}"
              f" ({rows[name]['seconds']} s)", flush=True)

    if not args.skip_real:
        other = real_images(args.real, args.resolution, n, part=1)
        score("real (disjoint set)", other, f"UTKFace, another {n}")
        score(f"real blurred (sigma {args.blur_sigma:g})", blur(other, args.blur_sigma), "the same set, Gaussian blur")
    for spec in args.network:
        name, _, path = spec.partition("=")
        p = Path(path)
        if p.is_dir():
            from editkit.bundle import load_bundle
            p = load_bundle(p).generator_path
        G = editkit.load_generator(p)
        kimg = editkit.load_network(p).meta.get("kimg")
        score(name, generate_images(G, n, seed=0, truncation=args.truncation),
              f"{p.name}" + (f", {kimg:g} kimg" if isinstance(kimg, (int, float)) else ""))

    for extra in args.merge:
        for name, r in json.loads(Path(extra).read_text())["rows"].items():
            rows.setdefault(name if r["n"] == n else f"{name} ({r['n']:,} vs {r['n']:,})", r)
    print()
    print(f"| set | FD descriptor | FD trunk | precision | recall | n | note |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['fd_descriptor']:.4f} | {r['fd_trunk']:.4f} | {r['precision']:.3f} | {r['recall']:.3f} |"
              f" {r['n']} | {r['note']} |")
    checks = {}
    if not args.skip_real:
        a, b = rows["real (disjoint set)"], rows[f"real blurred (sigma {args.blur_sigma:g})"]
        checks["real < blurred real"] = a["fd_descriptor"] < b["fd_descriptor"] and a["fd_trunk"] < b["fd_trunk"]
    for pair in args.expect_order:
        a, _, b = pair.partition("<")
        checks[pair] = rows[a]["fd_descriptor"] < rows[b]["fd_descriptor"] and rows[a]["fd_trunk"] < rows[b]["fd_trunk"]
    for c, v in checks.items():
        print(f"sanity {c}: {'ok' if v else 'FAILED'}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "checks": checks, "samples": n, "k": args.k,
                                          "truncation": args.truncation, "real": args.real}, indent=2))
    print(f"wrote {args.out}")
    if args.bundle:
        write_into_bundle(Path(args.bundle), rows, checks, n, args)
    return 0 if all(checks.values()) else 1


def write_into_bundle(root: Path, rows: dict, checks: dict, n: int, args) -> None:
    import re

    from editkit.atomic import atomic_write_text
    from editkit.bundle import file_entry, load_bundle, write_manifest

    bundle = load_bundle(root)
    report_path = root / "build_report.json"
    report = json.loads(report_path.read_text())
    report["generator_quality"] = {"rows": rows, "checks": checks, "samples": n, "k": args.k,
                                   "truncation": args.truncation, "note": args.note}
    atomic_write_text(report_path, json.dumps(report, indent=2))
    card_path = root / "MODEL_CARD.md"
    card = card_path.read_text()
    from editkit.generator_quality import model_card_section

    section = "\n".join(model_card_section(report["generator_quality"]))
    if "## Generator quality" in card:
        card = re.sub(r"## Generator quality.*?(?=\n## )", section, card, flags=re.S)
    else:
        card = card.replace("\n## Sensor choice", "\n" + section + "\n## Sensor choice")
    atomic_write_text(card_path, card)
    for fname in ("build_report.json", "MODEL_CARD.md"):
        if fname in bundle.files:
            bundle.files[fname] = file_entry(root / fname)
    write_manifest(root, bundle)
    print(f"wrote the table into {report_path} and {card_path}")


if __name__ == "__main__":
    sys.exit(main())
