"""Build editkit's bundled model from a trained generator: the exact recipe behind editkit/bundled/.

    .venv/bin/python scripts/build_bundle.py --network runs/bundled_generator/network-final.safetensors \
        --work runs/bundle_work --out editkit/bundled

Stages (each result is cached in --work, so a rerun resumes): age/gender predictor on UTKFace labels,
light encoder (generator samples + real UTKFace crops), sensor choice by measurement, ContraFeat
navigators (binary and prototype), GANSpace/SeFa baselines, attribute responses and the paper's
metrics, direction labels and recommended strengths, reconstruction quality, sample grid and GIFs,
then the bundle folder with its manifest and model card numbers (``build_report.json``).
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

import editkit
from editkit.atomic import atomic_write_text
from editkit.generator_quality import model_card_section
from editkit.render import bounce, make_grid, save_gif, to_uint8
from editkit.photos import save_image
from editkit.training.data import default_cache_dir, load_dataset

UTKFACE = "../shared/data/faces/utkface_aligned_200.zip"
PHOTOS = "../shared/data/photos/unaligned"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Combined:
    """Landmark probe + age/gender predictor as one attribute predictor (images in [-1, 1])."""

    def __init__(self, probe, age_gender):
        self.probe, self.ag = probe, age_gender
        self.names = list(probe.names) + list(age_gender.names)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.probe(images), self.ag(images)], dim=1)


def stage_age_gender(work: Path, data, steps: int):
    from navigator.age_gender import load_age_gender, train_age_gender

    path = work / "age_gender.safetensors"
    if path.exists():
        return load_age_gender(path)
    log(f"training the age/gender predictor ({steps} steps)")
    pred = train_age_gender(data.images, data.names, steps=steps, batch=128, progress=False)
    pred.save(path)
    log(f"age/gender: {pred.metrics}")
    return pred


def stage_encoder(work: Path, G, steps: int, init: str | None = None):
    from inversion import load_encoder
    from inversion.train_encoder import EncoderTrainConfig, train_encoder

    out = work / "encoder"
    if (out / "encoder.safetensors").exists() and json.loads((work / "encoder.done").read_text() or "0") >= steps:
        return load_encoder(out / "encoder.safetensors")
    log(f"training the light encoder ({steps} steps)")
    cfg = EncoderTrainConfig(arch="light", steps=steps, batch_size=16, lr=1e-3, real_data=UTKFACE, real_fraction=0.5,
                             checkpoint_every=500, preview_every=500, seed=0)
    start = load_encoder(init) if init else None  # e.g. pre-trained on an earlier generator snapshot
    enc = train_encoder(G, cfg, out, resume=True, progress=False, init_encoder=start)
    atomic_write_text(work / "encoder.done", str(steps))
    return enc


def train_nav(work: Path, G, D, name: str, variant: str, sensor: str, K: int, kimg: float, batch: int):
    from navigator.io import load_navigator
    from navigator.sensors import build_sensor
    from navigator.train import TrainConfig, train_navigator

    out = work / f"nav-{name}"
    if (out / "navigator.safetensors").exists():
        return load_navigator(out / "navigator.safetensors")
    log(f"training navigator {name}: {variant}, sensor {sensor}, K={K}, {kimg} kimg, batch {batch}")
    cfg = TrainConfig.preset("paper-real-image", variant=variant, num_directions=K, num_components=100, kimg=kimg,
                             batch=batch, sensor=sensor, pca_samples=100_000, snapshot_every=0, seed=0)
    nav = train_navigator(G, cfg, out, sensor=build_sensor(sensor, discriminator=D), progress=False)
    return nav


def responses(G, nav, predictor, n: int, strength: float) -> torch.Tensor:
    from navigator.metrics import attribute_responses

    # t-statistics: the probe measures some attributes (head roll, hues) noisily on 64-px faces, and plain
    # standardised means let that noise win; every method is scored the same way.
    return attribute_responses(G, nav, predictor, n_samples=n, strength=strength, truncation=0.5, batch_size=16,
                               statistic="t")


def scores(R: torch.Tensor) -> dict:
    from navigator.metrics import discovered_attributes, disentanglement_score

    return {"disentanglement": round(disentanglement_score(R), 4), "discovered_attributes": discovered_attributes(R)}


def calibration_codes(G) -> torch.Tensor:
    gen = torch.Generator().manual_seed(7)
    return G.mapping(torch.randn(16, G.z_dim, generator=gen), truncation_psi=0.7)


@torch.no_grad()
def strength_target(G, ws_cal: torch.Tensor, cal_sensor) -> float:
    """The change of a strength-2 edit along an average W PCA direction."""
    from navigator.bases import baseline_navigator
    from navigator.traverse import perceptual_magnitude

    ref = baseline_navigator(G, "ganspace", 8)
    return float(perceptual_magnitude(G, ref, ws_cal, cal_sensor, strength=2.0).mean())


def ship_navigator(G, nav, R: torch.Tensor, names, ws_cal, target: float, cal_sensor, sensor: str):
    """Labels (signs flipped so + raises the top attribute) and recommended strengths; returns the
    navigator and its build-report rows."""
    from navigator.labels import label_directions
    from navigator.traverse import calibrate_strengths

    labels = label_directions(R, names, dominance=1.5, min_response=3.0)
    nav.negate([l.index for l in labels if l.sign < 0])
    nav.labels = [l.name for l in labels]
    nav.strength_range = [(float(a), float(b)) for a, b in
                          calibrate_strengths(G, nav, ws_cal, target, sensor=cal_sensor, s_max=8.0, steps=6)]
    nav.info.update({"sensor": sensor, "top_attributes": [l.top for l in labels]})
    rows = [{"index": l.index, "name": l.name, "top": l.top, "strength": nav.strength_range[l.index][1]}
            for l in labels]
    return nav, rows


def choose_default(metrics: dict) -> str:
    return max(("binary", "prototype"), key=lambda n: (metrics[n]["discovered_attributes"],
                                                       metrics[n]["disentanglement"]))


def reconstruction(G, enc, faces: torch.Tensor, steps: int) -> dict:
    from inversion import invert

    res = {}
    for method in ("encoder", "hybrid"):
        t = time.perf_counter()
        r = invert(G, faces, method=method, encoder=enc, steps=None if method == "encoder" else steps,
                   discriminator=None)
        res[method] = {"psnr": round(r.metrics["psnr_mean"], 2), "ssim": round(r.metrics["ssim_mean"], 4),
                       "s_per_face": round((time.perf_counter() - t) / len(faces), 3), "faces": len(faces)}
    return res


def real_photo_faces(size: int, limit: int) -> torch.Tensor:
    from editkit.photos import load_photo
    from inversion.align import align_faces

    crops = []
    for p in sorted(Path(PHOTOS).glob("*")):
        try:
            for f in align_faces(load_photo(p), template="utkface", size=size):
                if f.score > 0.3:
                    crops.append(f.image)
        except editkit.errors.EditkitError:
            continue
        if len(crops) >= limit:
            break
    x = torch.from_numpy(np.stack(crops[:limit])).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x


def retrain_lines(report: dict) -> list[str]:
    """Model-card lines for navigators retrained after the bundle was built (``scripts/refresh_bundled_prototype.py``)."""
    r = report.get("retrained")
    if not r:
        return []
    out = []
    for name, run in r.items():
        if not isinstance(run, dict) or "command" not in run:
            continue
        out += [f"### Retrained: {name} navigator", f"Why: {run['why']}.", "",
                f"Command: `{run['command']}`", "",
                f"{run['kimg']} kimg ({run['iterations']} iterations, batch {run['batch']}), {run['threads']} CPU thread,"
                f" precision {run['precision']}: training wall time {run['train_wall_s'] / 60:.1f} min on {run['machine']};"
                f" mean loss of the last 50 iterations {run['final_loss_mean_last50']}.", ""]
    prev = r.get("previous_metrics")
    if prev:
        out += [f"Rescored: {r.get('rescored', '')}. Before (old prototype loss, SeFa over every toRGB, all directions"
                " summarised, one attribute per tied row):", "",
                "| method | disentanglement score | discovered attributes |", "|---|---|---|",
                *[f"| {k} | {v['disentanglement']} | {v['discovered_attributes']} |" for k, v in prev.items()], ""]
    return out


def write_model_card(report: dict, path: Path, args: argparse.Namespace) -> Path:
    """The bundle's model card, written from the build report's measured numbers."""
    g = report["generator"]
    retrained = report.get("retrained", {})
    train = g["meta"].get("training", {})
    m = report["metrics"]
    rec = report["reconstruction"]
    lines = [
        "# editkit bundled model `utkface64` (PROVISIONAL)",
        "",
        "**Provisional:** trained on a 2-core CPU (no GPU was available to this build): faces are blurry, low",
        "in detail and show grid artefacts. It will be retrained on a GPU with the same scripts.",
        "",
        "## Data and licence",
        "UTKFace aligned & cropped faces (23,317 images, 200x200, resized to 64x64; Zhang, Song, Qi, CVPR 2017),",
        "**non-commercial research use only**; copyright of the images stays with their owners. Landmarks come",
        "from dlib's 68-point model (trained on iBUG 300-W: no commercial use). Photos are aligned with the",
        "`utkface` template (measured on the UTKFace crops), the framing the generator was trained on.",
        "",
        "## Networks",
        f"- Generator: StyleGAN2, {g['config']['resolution']} px, num_ws {2 * int(np.log2(g['config']['resolution'])) - 2},"
        f" z/w {g['config']['z_dim']}/{g['config']['w_dim']}, channels {g['config']['channels']}, "
        f"{g['config']['mapping_layers']} mapping layers; trained by `scripts/train_bundled_generator.sh`"
        f" ({args.generator_note or json.dumps(train)[:400]}).",
        f"- Encoder: editkit light encoder, {args.encoder_steps} steps on generator samples + real UTKFace crops.",
        f"- Navigators: ContraFeat binary (K={args.K_binary or args.K}, {args.nav_kimg} kimg) and prototype (K={args.K},"
        f" {retrained.get('prototype', {}).get('kimg', args.nav_kimg)} kimg), sensor `{report['sensor_choice']['chosen']}`,"
        " the authors' real-image preset (lr 0.1, diversity 0.01, sigma 0.5, per-layer style mixing; N = 100 PCA"
        " components of 100,000 samples). Default navigator: `" + report["default_navigator"] + "`.",
        f"- Age/gender predictor (for labels): {report['age_gender']}.",
        "- Face networks (shipped with editkit in `editkit/facenets/weights/`, not part of this bundle; used by every"
        " model for `editkit edit --report`, `editkit evaluate --probe facenets` and `--sensor facenets`): face-api's"
        " recognition (128-D descriptor), age/gender, expression and 68-landmark networks from `@vladmandic/face-api`"
        " 1.7.15, MIT licence (LICENSE and PROVENANCE.md beside the weights); on 300 tight UTKFace crops: age MAE"
        " 4.7 years, gender accuracy 0.95 (benchmarks/facenets.py).",
        "",
        *(model_card_section(report["generator_quality"]) if "generator_quality" in report else []),
        "## Sensor choice (measured)",
        "The paper's ImageNet AlexNet cannot be downloaded here; candidates were scored by short binary runs:",
        "",
        "| sensor | disentanglement | discovered attributes |",
        "|---|---|---|",
        *[f"| {k} | {v['disentanglement']} | {v['discovered_attributes']} |"
          for k, v in report["sensor_choice"]["candidates"].items()],
        f"\nChosen: `{report['sensor_choice']['chosen']}`.",
        "",
        "## Discovery metrics (contrafeat.md §5, on this model)",
        f"Attribute predictor: the offline landmark/region probe (15 attributes) + the age/gender predictor;"
        f" {args.eval_samples} samples at truncation 0.5, strength {args.eval_strength}, constant noise. Responses are"
        " t-statistics of the per-sample attribute changes (mean / standard error), because the probe measures"
        " some attributes noisily on 64-px faces; all four methods are scored the same way, by the authors' summary"
        f" rules: the first 30 directions (binary K={args.K_binary or args.K}: its first 30; the others K={args.K}),"
        " every attribute tied for a row's maximum counts. SeFa uses the authors' affine selection (every conv"
        " affine and only the last toRGB). **These are not the paper's numbers** (the paper used the authors'"
        " ResNet-50 regressing 24 FFHQ attributes on 512-px faces): they compare the four methods on this model only.",
        "",
        "| method | disentanglement score | discovered attributes |",
        "|---|---|---|",
        *[f"| {k} | {v['disentanglement']} | {v['discovered_attributes']} |" for k, v in m.items()],
        "",
        *retrain_lines(report),
        "## Reconstruction (64 px)",
        "| faces | method | PSNR dB | SSIM | s/face |",
        "|---|---|---|---|---|",
        *[f"| {src} ({r[meth]['faces']}) | {meth} | {r[meth]['psnr']} | {r[meth]['ssim']} | {r[meth]['s_per_face']} |"
          for src, r in rec.items() for meth in r],
        "",
        "UTKFace faces were part of the generator's training data (not of any evaluation split); the real-photo",
        "faces (from the test photos, aligned with the `utkface` template) were never seen by any model.",
        "",
        "## Directions",
        "| navigator | index | label | top attributes (normalised response) | recommended strength |",
        "|---|---|---|---|---|",
        *[f"| {n} | {d['index']} | {d['name'] or '-'} | {', '.join(f'{a} {v}' for a, v in d['top'])} | ±{d['strength']} |"
          for n, ds in report["labels"].items() for d in ds],
        "",
        "## Pictures",
        *[f"![{p}](pictures/{p})" for p in report["pictures"]],
        "",
        "Every number above is read from `build_report.json`, written by `scripts/build_bundle.py`.",
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", required=True)
    ap.add_argument("--work", default="runs/bundle_work")
    ap.add_argument("--out", default="editkit/bundled")
    ap.add_argument("--K", type=int, default=20)
    ap.add_argument("--K-binary", type=int, default=None, help="directions of the binary navigator (default --K)")
    ap.add_argument("--nav-kimg", type=float, default=6.0)
    ap.add_argument("--probe-kimg", type=float, default=1.0, help="kimg of each sensor-choice run")
    ap.add_argument("--encoder-steps", type=int, default=3000)
    ap.add_argument("--encoder-init", default=None, help="encoder.safetensors to start from")
    ap.add_argument("--ag-steps", type=int, default=800)
    ap.add_argument("--eval-samples", type=int, default=64)
    ap.add_argument("--eval-strength", type=float, default=1.0)
    ap.add_argument("--hybrid-steps", type=int, default=250)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--generator-note", default="", help="how the generator was trained, for the model card")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    report_path = work / "build_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}

    def save_report() -> None:
        atomic_write_text(report_path, json.dumps(report, indent=2))

    net = editkit.load_network(args.network)
    G, D = net.G, net.D
    report["generator"] = {"config": G.config, "meta": {k: v for k, v in net.meta.items() if k != "path"}}
    data = load_dataset(UTKFACE, G.resolution, cache_dir=default_cache_dir())
    from navigator.probe import LandmarkProbe

    ag = stage_age_gender(work, data, args.ag_steps)
    report["age_gender"] = ag.metrics
    predictor = Combined(LandmarkProbe(), ag)
    enc = stage_encoder(work, G, args.encoder_steps, args.encoder_init)
    save_report()

    # Sensor choice by measurement: the ImageNet AlexNet of the paper cannot be downloaded here, so the
    # candidates are the generator's own discriminator and a seeded random AlexNet; short binary runs of
    # each are scored with the paper's disentanglement metric on the attribute predictor.
    if "sensor_choice" not in report:
        choice = {}
        for sensor in ("discriminator", "random-alexnet"):
            nav = train_nav(work, G, D, f"probe-{sensor}", "binary", sensor, args.K, args.probe_kimg, 8)
            R = responses(G, nav, predictor, max(16, args.eval_samples // 2), args.eval_strength)
            choice[sensor] = scores(R)
            log(f"sensor {sensor}: {choice[sensor]}")
        best = max(choice, key=lambda s: (choice[s]["discovered_attributes"], choice[s]["disentanglement"]))
        report["sensor_choice"] = {"candidates": choice, "chosen": best,
                                   "method": f"binary navigator K={args.K}, {args.probe_kimg} kimg per sensor"}
        save_report()
    sensor = report["sensor_choice"]["chosen"]

    k_of = {"binary": args.K_binary or args.K, "prototype": args.K}
    navs = {v: train_nav(work, G, D, v, v, sensor, k_of[v], args.nav_kimg, 10 if v == "binary" else 8)
            for v in ("binary", "prototype")}
    from navigator.bases import baseline_navigator

    evaluated = {}
    if "metrics" not in report:
        report["metrics"] = {}
    for name in ("binary", "prototype", "ganspace", "sefa"):
        nav = navs.get(name) or baseline_navigator(G, name, args.K)
        rfile = work / f"responses-{name}.pt"
        if rfile.exists():
            R = torch.load(rfile, weights_only=True)
        else:
            log(f"attribute responses of {name}")
            R = responses(G, nav, predictor, args.eval_samples, args.eval_strength)
            torch.save(R, rfile)
        report["metrics"][name] = scores(R)
        evaluated[name] = (nav, R)
        log(f"{name}: {report['metrics'][name]}")
    save_report()

    # Labels and recommended strengths for the shipped navigators.
    from navigator.sensors import build_sensor

    ws_cal = calibration_codes(G)
    cal_sensor = build_sensor(sensor, discriminator=D)
    target = strength_target(G, ws_cal, cal_sensor)
    report["strength_target"] = target
    shipped = {}
    for name in ("binary", "prototype"):
        nav, R = evaluated[name]
        shipped[name], report.setdefault("labels", {})[name] = ship_navigator(
            G, nav, R, predictor.names, ws_cal, target, cal_sensor, sensor)
    default = choose_default(report["metrics"])
    report["default_navigator"] = default
    save_report()

    # Reconstruction quality: UTKFace crops (seen by the generator, never by the encoder's eval split is not
    # separated) and faces from real photos aligned with the utkface template (never seen by any model).
    if "reconstruction" not in report:
        idx = torch.linspace(0, len(data) - 1, 32).long()
        utk = data.images[idx].float() / 127.5 - 1
        report["reconstruction"] = {"utkface": reconstruction(G, enc, utk, args.hybrid_steps),
                                    "real_photos": reconstruction(G, enc, real_photo_faces(G.resolution, 32),
                                                                  args.hybrid_steps)}
        save_report()
    log(f"reconstruction: {report['reconstruction']}")

    # Pictures for the model card: samples, traversal GIFs of the best-named directions.
    pics = work / "pictures"
    shutil.rmtree(pics, ignore_errors=True)  # only this build's pictures go into the bundle
    pics.mkdir()
    with torch.no_grad():
        z = torch.randn(32, G.z_dim, generator=torch.Generator().manual_seed(1))
        imgs = to_uint8(G(z, truncation_psi=0.7))
    save_image(pics / "samples.png", make_grid([list(imgs[i * 8:(i + 1) * 8]) for i in range(4)]))
    from navigator.traverse import traversal_frames

    nav = shipped[default]
    named = [k for k in range(nav.num_directions) if nav.labels[k]][:6]
    w0 = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(3)), truncation_psi=0.6)
    gifs = {}
    for k in named:
        s = nav.strength_range[k][1]
        frames = [np.concatenate(list(f), axis=1) for f in
                  zip(*[traversal_frames(G, nav, w0[i], k, s, frames=12) for i in range(3)])]
        gifs[k] = save_gif(pics / f"traverse-{k}-{nav.labels[k]}.gif", bounce(frames))
    report["pictures"] = sorted(p.name for p in pics.iterdir())
    save_report()

    from editkit.bundle import write_bundle

    card = write_model_card(report, work / "MODEL_CARD.md", args)
    extra = {f"pictures/{p.name}": p for p in pics.iterdir()}
    extra["build_report.json"] = report_path
    extra["age_gender.safetensors"] = work / "age_gender.safetensors"
    write_bundle(args.out, name="utkface64", generator=Path(args.network), encoder=enc,
                 navigators={"binary": shipped["binary"], "prototype": shipped["prototype"]},
                 default_navigator=default, alignment="utkface",
                 licence="Non-commercial research only (UTKFace images; dlib 68-point model trained on iBUG 300-W).",
                 provenance={"data": "UTKFace aligned & cropped (23,317 images)", "script": "scripts/build_bundle.py",
                             "generator_script": "scripts/train_bundled_generator.sh"},
                 model_card=card, extra_files=extra, overwrite=True)
    log(f"bundle written to {args.out}")


if __name__ == "__main__":
    main()
