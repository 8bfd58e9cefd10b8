"""Re-label a bundle's navigators by the label promise (editkit.label_promise) measured on real faces.

    .venv/bin/python scripts/relabel_bundle.py --bundle editkit/bundled --work runs/promise

Stages (cached in --work, so a rerun resumes): align the real test photos with the bundle's template and
invert them (hybrid: encoder + optimisation); measure every direction of every navigator on them at its
recommended strength (face-network attributes and identity distance); then rewrite the navigators (names,
signs, measured effects), the traversal GIFs of the named directions, ``build_report.json``'s labels,
the model card's direction table and the manifest's hashes.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

PHOTOS = "../shared/data/photos/unaligned"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def invert_stage(work: Path, G, enc, photos: list[str], template: str, steps: int,
                 n_faces: int | None) -> tuple[torch.Tensor, list[str]]:
    from inversion import invert

    from editkit.label_promise import real_faces

    path = work / "inverted.pt"
    if path.exists():
        d = torch.load(path, weights_only=True)
        return d["ws"], json.loads(d["names"])
    faces, names = real_faces(photos, template=template, size=G.resolution)
    if n_faces is not None and n_faces < len(names):  # evenly spaced over the (sorted) photos
        keep = np.linspace(0, len(names) - 1, n_faces).round().astype(int).tolist()
        faces, names = faces[keep], [names[i] for i in keep]
    log(f"inverting {len(faces)} real faces (hybrid, {steps} steps)")
    res = invert(G, faces, method="hybrid", encoder=enc, steps=steps)
    log(f"reconstruction PSNR {res.metrics['psnr_mean']:.2f} dB")
    torch.save({"ws": res.ws.detach().cpu(), "faces": faces, "names": json.dumps(names),
                "psnr": torch.tensor(res.metrics["psnr_mean"])}, path)
    return res.ws.detach().cpu(), names


def direction_table(effects: dict[str, list[dict]]) -> list[str]:
    """The model card's direction table (markdown lines)."""
    from editkit.label_promise import DirectionEffect

    rows = ["| navigator | index | label | measured effect at the recommended strength | identity distance | strength |",
            "|---|---|---|---|---|---|"]
    for nav, effs in effects.items():
        for e in effs:
            de = DirectionEffect(**e)
            rows.append(f"| {nav} | {de.index} | {de.label or '-'} | {de.describe()} | {de.identity_distance:.3f} |"
                        f" ±{de.strength:g} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="editkit/bundled")
    ap.add_argument("--work", default="runs/promise")
    ap.add_argument("--photos", nargs="*", default=[PHOTOS])
    ap.add_argument("--steps", type=int, default=250, help="optimisation steps of the hybrid inversion")
    ap.add_argument("--faces", type=int, default=None, help="use this many of the aligned faces (evenly spaced over the photos)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stage", choices=("invert", "measure", "write"), default="write", help="stop after this stage")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import editkit
    from inversion import load_encoder
    from navigator import load_navigator, save_navigator

    from editkit.bundle import file_entry, load_bundle, write_manifest
    from editkit.label_promise import DirectionEffect, apply_labels, measure_directions

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(args.bundle)
    G = editkit.load_generator(bundle.generator_path)
    enc = load_encoder(bundle.encoder_path)
    template = bundle.alignment if isinstance(bundle.alignment, str) else "utkface"
    ws, names = invert_stage(work, G, enc, args.photos, template, args.steps, args.faces)
    log(f"{len(names)} inverted faces: {', '.join(names)}")
    if args.stage == "invert":
        return
    effects: dict[str, list[dict]] = {}
    for nav_name in bundle.navigators:
        cache = work / f"effects-{nav_name}.json"
        nav = load_navigator(bundle.navigator_path(nav_name))
        if cache.exists():
            effs = [DirectionEffect(**e) for e in json.loads(cache.read_text())]
        else:
            log(f"measuring {nav.num_directions} directions of {nav_name}")
            effs = measure_directions(G, nav, ws, progress=lambda i, n: log(f"  {nav_name}: {i}/{n}") if i % 4 == 0 else None)
            cache.write_text(json.dumps([e.as_dict() for e in effs], indent=1))
        effects[nav_name] = effs
    if args.stage == "measure":
        return

    # write: navigators, pictures, report, model card, manifest
    from editkit.atomic import atomic_write_text
    from editkit.render import bounce, save_gif
    from navigator.traverse import traversal_frames

    root = Path(bundle.root)
    report_path = root / "build_report.json"
    report = json.loads(report_path.read_text())
    shipped = {}
    for nav_name, effs in effects.items():
        nav = load_navigator(bundle.navigator_path(nav_name))
        if (nav.info or {}).get("promise"):
            raise SystemExit(f"{nav_name} is already re-labelled (its info has a promise); start from the original")
        apply_labels(nav, effs)
        save_navigator(nav, bundle.navigator_path(nav_name))
        shipped[nav_name] = nav
        report.setdefault("labels", {})[nav_name] = [{"index": e.index, "name": e.label, "top": [
            (t["attribute"], t["pass_rate"]) for t in e.top], "strength": e.strength} for e in effs]
    report["label_promise"] = {"faces": len(names), "face_names": names, "photos": args.photos,
                               "inversion": f"hybrid, {args.steps} steps",
                               "effects": {k: [e.as_dict() for e in v] for k, v in effects.items()}}
    # traversal GIFs of the named directions of the default navigator (the old ones go)
    pics = root / "pictures"
    for old in pics.glob("traverse-*.gif"):
        old.unlink()
        bundle.files.pop(f"pictures/{old.name}", None)
    nav = shipped[bundle.default_navigator]
    w0 = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(3)), truncation_psi=0.6)
    for k in [k for k in range(nav.num_directions) if nav.labels[k]][:8]:
        s = nav.strength_range[k][1]
        frames = [np.concatenate(list(f), axis=1) for f in
                  zip(*[traversal_frames(G, nav, w0[i], k, s, frames=12) for i in range(3)])]
        save_gif(pics / f"traverse-{k}-{nav.labels[k]}.gif", bounce(frames))
    report["pictures"] = sorted(p.name for p in pics.iterdir())
    atomic_write_text(report_path, json.dumps(report, indent=2))

    card_path = root / "MODEL_CARD.md"
    card = card_path.read_text()
    n_named = {k: sum(1 for e in v if e.label) for k, v in effects.items()}
    section = "\n".join([
        "## Directions (labels kept only where the promise holds)",
        f"Measured on {len(names)} real faces aligned from the test photos (`{', '.join(args.photos)}`), inverted"
        f" with the hybrid method ({args.steps} steps), each direction moved by its recommended strength both ways."
        " A direction is named only if the named attribute moves the named way (by at least a minimal change) on"
        " >= 80% of the faces with identity distance < 0.6 (face-recognition descriptors) to the unedited"
        " reconstruction; attributes from the face networks (`editkit.facenets`: age, P(male), 7 expressions,"
        " head pose and mouth/eye opening from their 68 landmarks) and region brightness. Named: "
        + ", ".join(f"{k} {v}/{len(effects[k])}" for k, v in n_named.items()) + ". Unnamed directions list their"
        " best attributes (attribute, sign, share of faces that kept the promise).",
        "",
        *direction_table({k: [e.as_dict() for e in v] for k, v in effects.items()}),
        ""])
    card = re.sub(r"## Directions.*?(?=\n## Pictures)", section, card, flags=re.S)
    card = re.sub(r"## Pictures.*?(?=\nEvery number)", "## Pictures\n" + "\n".join(
        f"![{p}](pictures/{p})" for p in report["pictures"]) + "\n", card, flags=re.S)
    atomic_write_text(card_path, card)
    for fname in list(bundle.files):
        if (root / fname).exists():
            bundle.files[fname] = file_entry(root / fname)
    for p in pics.iterdir():
        bundle.files[f"pictures/{p.name}"] = file_entry(p)
    write_manifest(root, bundle)
    log(f"re-labelled {', '.join(f'{k}: {v} named' for k, v in n_named.items())}; bundle manifest updated")


if __name__ == "__main__":
    main()
