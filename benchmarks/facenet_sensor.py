"""How the bundled model's directions change with the pretrained face-network sensor.

    python benchmarks/facenet_sensor.py [--kimg 1.0] [--K 20] [--samples 48] [--work runs/facenet_sensor]

Trains short binary ContraFeat navigators on the bundled 64-px generator with the shipped sensor
(``random-alexnet``) and with ``--sensors`` (default ``facenets``: landmark + expression + age/gender
trunks), the same recipe as the bundle's sensor choice (preset final, K=20, 1 kimg, batch 8), then
scores each, and the shipped binary navigator, with BOTH probes: the old one (dlib landmarks and
colour regions + the bundled UTKFace age/gender CNN) and the face-network probe. A navigator found
with face-network features and scored by the same networks flatters itself; the old probe is the
check on that. Responses are standardised means (as in ``editkit evaluate``), strength 1.0,
truncation 0.5. Nothing shipped is changed; trained navigators are cached in ``--work``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class OldProbe:
    """The bundle's labelling predictor: dlib landmark/colour probe + the UTKFace age/gender CNN."""

    def __init__(self, age_gender_path: Path):
        from navigator.age_gender import load_age_gender
        from navigator.probe import LandmarkProbe

        self.probe, self.ag = LandmarkProbe(), load_age_gender(age_gender_path)
        self.names = list(self.probe.names) + list(self.ag.names)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.probe(images).double(), self.ag(images).double()], dim=1)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", nargs="+", default=["facenets"])
    ap.add_argument("--kimg", type=float, default=1.0)
    ap.add_argument("--K", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "facenet_sensor")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-shipped", action="store_true", help="do not score the shipped navigator")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    import editkit
    from editkit import registry
    from navigator.face_probe import FaceNetProbe
    from navigator.io import load_navigator
    from navigator.labels import label_directions
    from navigator.metrics import attribute_responses, discovered_attributes, disentanglement_score
    from navigator.sensors import build_sensor
    from navigator.train import TrainConfig, train_navigator

    bundle = registry.default_bundle()
    G = editkit.load_generator(bundle.generator_path).eval().requires_grad_(False)
    navs = {} if a.skip_shipped else {
        "shipped binary (random-alexnet, K=32, 20 kimg)": load_navigator(bundle.navigator_path("binary"))}
    for sensor in ["random-alexnet", *a.sensors]:
        out = a.work / f"nav-{sensor}"
        path = out / "navigator.safetensors"
        if not path.exists():
            log(f"training binary K={a.K} {a.kimg} kimg with sensor {sensor}")
            t = time.perf_counter()
            cfg = TrainConfig.preset("final", variant="binary", num_directions=a.K, kimg=a.kimg, batch=a.batch,
                                     sensor=sensor, pca_samples=100_000, snapshot_every=0, seed=0)
            train_navigator(G, cfg, out, sensor=build_sensor(sensor), progress=False)
            log(f"  {time.perf_counter() - t:.0f} s")
        navs[f"{sensor} (K={a.K}, {a.kimg:g} kimg)"] = load_navigator(path)
    probes = {"old (dlib + UTKFace CNN)": OldProbe(bundle.root / "age_gender.safetensors"),
              "facenets": FaceNetProbe()}
    rows, results = [], {}
    for nname, nav in navs.items():
        for pname, probe in probes.items():
            t = time.perf_counter()
            R = attribute_responses(G, nav, probe, n_samples=a.samples, strength=a.strength, truncation=0.5,
                                    batch_size=16, seed=0)
            labels = label_directions(R, probe.names, dominance=1.5)
            named = [l.name for l in labels if l.name]
            res = {"disentanglement": round(disentanglement_score(R), 4), "discovered": discovered_attributes(R),
                   "labelled": len(named), "labels": named, "top": [l.top for l in labels],
                   "seconds": round(time.perf_counter() - t)}
            results.setdefault(nname, {})[pname] = res
            rows.append([nname, pname, f"{res['disentanglement']:.3f}", str(res["discovered"]),
                         f"{len(named)}/{nav.num_directions}", ", ".join(sorted({re.sub(r"-\d+$", "", n) for n in named}))])
            log(f"{nname} / {pname}: {res['disentanglement']} DS, {res['discovered']} attrs, {named}")
    widths = [max(len(r[i]) for r in rows + [["navigator", "probe", "DS", "attrs", "labelled", "label kinds"]])
              for i in range(6)]
    print()
    for r in [["navigator", "probe", "DS", "attrs", "labelled", "label kinds"]] + rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    if a.json:
        a.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "results": results}, indent=1))


if __name__ == "__main__":
    main()
