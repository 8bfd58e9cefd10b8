"""Inversion: time per face and reconstruction quality of encoder / hybrid / optimize, with anchors.

Usage:
  python benchmarks/inversion.py                       # bundled model if installed, else a tiny random one
  python benchmarks/inversion.py --photos FOLDER       # real faces: every face of every photo, aligned
  python benchmarks/inversion.py --generator G --encoder E [--images FOLDER_OF_ALIGNED_CROPS]
  python benchmarks/inversion.py --photos FOLDER --id-sweep 0,0.05,0.1,0.3   # choose the identity weight
  python benchmarks/inversion.py --official-size --device cuda   # 1024 px generator + e4e, random weights

Rows: the encoder alone, hybrid and optimize with their defaults (early stopping, all faces in one
batch, bfloat16 where the CPU supports it), and "hybrid 250 (before)": the fixed 250-step float32
refinement that was the default before early stopping, as the reference for time and quality.
Each row is run ``--repeats`` times; seconds per face are the median (min-max) because the
machines are shared. Identity distance / similarity: editkit.facenets recognition descriptors of
target and reconstruction (distance < 0.6 = same person).

Targets are the generator's own images from known random W+ codes (truncation 0.7) unless
``--images`` gives real aligned crops or ``--photos`` real photos (aligned with the model's template). Without a generator of its own (no bundle) a random
64-px generator (num_ws 10, w_dim 64) is used and a light encoder is trained on it first
(``--encoder-steps``); its quality numbers describe the method, not a face model.
``--official-size`` times the 1024-px generator (18 x 512 W+) and the full e4e encoder with
random weights: seconds per face only (quality of random weights means nothing).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inversion.optimize import ProjectorSchedule  # noqa: E402

# The hybrid refinement before early stopping / batching / the faster schedule: 250 steps at lr 0.05.
BEFORE_SCHEDULE = ProjectorSchedule(steps=250, lr=0.05, lr_rampup=0.0, lr_rampdown=0.25, w_noise=0.0)

# Published anchors (shared/design/anchors.md 4a/4b; GPU models mostly not stated).
ANCHORS = [
    ("e4e (encoder)", "~0.1 s/img GPU", "LPIPS 0.20, L2 0.052 (CelebA-HQ, HyperStyle table)"),
    ("pSp (encoder)", "~0.1 s/img GPU", "LPIPS 0.17, L2 0.034"),
    ("NVIDIA projector, 1000 steps", "75 s at 512 px (GPU n/s); 228 s in HyperStyle's table", "LPIPS 0.09, L2 0.020"),
    ("PTI (450 + 350 steps)", "~1-2 min GPU, ~10 min CPU", "LPIPS 0.09, L2 0.015"),
]


def tiny_setup(encoder_steps: int, device: str):
    from editkit.networks import Generator
    from inversion.train_encoder import EncoderTrainConfig, train_encoder

    torch.manual_seed(0)
    G = Generator(z_dim=64, w_dim=64, resolution=64, channel_base=1024, channel_max=64).eval().to(device)
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mapping(torch.randn(4096, 64, device=device))[:, 0].mean(0))
    cfg = EncoderTrainConfig(steps=encoder_steps, batch_size=16, lr=2e-3, truncation_psi=0.7,
                             checkpoint_every=10 ** 9, preview_every=10 ** 9)
    t = time.perf_counter()
    enc = train_encoder(G, cfg, tempfile.mkdtemp(prefix="bench_enc_"), device=device, progress=False)
    print(f"(random 64-px generator; light encoder trained {encoder_steps} steps in {time.perf_counter() - t:.0f} s)")
    return G, enc


def load_setup(args):
    import editkit
    import inversion
    from editkit import registry

    if args.generator:
        G = editkit.load_generator(args.generator, device=args.device)
        enc = inversion.load_encoder(args.encoder, device=args.device) if args.encoder else None
        return G, enc, "ffhq"
    bundle = registry.default_bundle()
    G = editkit.load_generator(bundle.generator_path, device=args.device)
    enc = inversion.load_encoder(bundle.encoder_path, device=args.device) if bundle.encoder_path else None
    print(f"(bundled model: {bundle.generator_path.name})")
    return G, enc, bundle.alignment


def targets_for(G, args, alignment: str = "ffhq") -> torch.Tensor:
    if args.photos:
        return photo_faces(args.photos, alignment, G.resolution, args.faces).to(args.device)
    if args.images:
        from inversion.train_encoder import RealImages

        ds = RealImages(args.images, G.resolution)
        return torch.stack([ds[i] for i in range(min(args.faces, len(ds)))]).to(args.device)
    z = torch.randn(args.faces * G.num_ws, G.z_dim, generator=torch.Generator().manual_seed(1)).to(args.device)
    with torch.no_grad():
        ws = G.mapping(z, truncation_psi=0.7)[:, 0].reshape(args.faces, G.num_ws, G.w_dim)
        return G.synthesis(ws, noise_mode="const").clamp(-1, 1)


def photo_faces(folder: str, template, size: int, limit: int) -> torch.Tensor:
    """Every face (detector score > 0.3) of the photos under ``folder``, aligned, as [N, 3, size, size]."""
    import numpy as np

    from editkit.errors import EditkitError
    from editkit.photos import load_photo
    from inversion.align import align_faces

    crops = []
    for p in sorted(Path(folder).rglob("*")):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png", ".webp"):
            continue
        try:
            crops += [f.image for f in align_faces(load_photo(p), template=template, size=size) if f.score > 0.3]
        except EditkitError:
            continue
        if len(crops) >= limit:
            break
    if not crops:
        raise SystemExit(f"no faces found under {folder}")
    return torch.from_numpy(np.stack(crops[:limit])).permute(0, 3, 1, 2).float() / 127.5 - 1


def measure(G, enc, images, args, label: str, **options) -> dict:
    """One row: median/min/max seconds per face over ``args.repeats`` runs and the quality of the first."""
    from inversion import invert

    times, first = [], None
    for _ in range(max(1, args.repeats)):
        res = invert(G, images, encoder=enc, vgg16=args.vgg16, measure=first is None, **options)
        times.append(res.seconds / len(images))
        first = first or res
    times.sort()
    m = first.metrics
    steps = m.get("steps") or [first.steps]
    return {"method": label, "steps": sum(steps) / len(steps), "s_per_face": times[len(times) // 2],
            "s_min": times[0], "s_max": times[-1], "psnr": m["psnr_mean"], "ssim": m["ssim_mean"],
            "lpips": m.get("lpips_mean"), "id_dist": m.get("identity_distance_mean"),
            "id_sim": m.get("identity_similarity_mean"),
            "loss": ", ".join(x for x in (first.loss, first.precision) if x) or "-"}


def run_methods(G, enc, images, args) -> list[dict]:
    from inversion import invert

    plans = []
    if enc is not None:
        plans += [("encoder", "encoder", {}), ("hybrid", "hybrid", {"steps": args.hybrid_steps}),
                  ("hybrid 250 (before)", "hybrid", {"schedule": BEFORE_SCHEDULE, "early_stop": False,
                                                     "precision": "float32", "batch_size": 8, "identity_weight": 0.0})]
    plans += [("optimize", "optimize", {"steps": args.optimize_steps})]
    rows = []
    for label, method, options in plans:
        if args.only and label.split()[0] not in args.only.split(","):
            continue
        invert(G, images[:1], method=method, encoder=enc, steps=None if method == "encoder" else 2,
               vgg16=args.vgg16, measure=False)  # warm-up
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        rows.append(measure(G, enc, images, args, label, method=method, **options))
    return rows


def id_sweep(G, enc, images, args) -> list[dict]:
    """Hybrid with each identity weight: quality, identity and time (the weight is chosen from this)."""
    rows = []
    for w in (float(v) for v in args.id_sweep.split(",")):
        rows.append(measure(G, enc, images, args, f"hybrid id {w:g}", method="hybrid", identity_weight=w,
                            steps=args.hybrid_steps))
    return rows


def official_size(args) -> list[dict]:
    """1024-px generator + full e4e (random weights): seconds per face for encoder and per optimisation step."""
    from editkit.networks import Generator
    from inversion.encoders import build_encoder
    from inversion.losses import ReconstructionLoss
    from inversion.optimize import ProjectorSchedule, optimize_latents

    torch.manual_seed(0)
    G = Generator(resolution=1024, channel_base=32768, conv_clamp=256).eval().requires_grad_(False).to(args.device)
    enc = build_encoder("e4e", G.num_ws, G.w_dim, G.resolution, latent_avg=G.w_avg.detach().cpu())
    enc = enc.to(args.device).eval().requires_grad_(False)
    x = torch.rand(args.faces, 3, 1024, 1024, device=args.device) * 2 - 1

    def timed(fn, repeats=2):
        fn()
        best = float("inf")
        for _ in range(repeats):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
        return best

    rows = []
    with torch.no_grad():
        t_enc = timed(lambda: enc(x))
    rows.append({"method": "e4e encoder (1024 px, random)", "steps": 0, "s_per_face": t_enc / args.faces})
    loss = ReconstructionLoss(args.vgg16, quiet=True)
    steps = args.official_steps
    sched = ProjectorSchedule(steps=steps)
    t_opt = timed(lambda: optimize_latents(G, x.clamp(-1, 1), loss, schedule=sched, w_std=1.0), repeats=1)
    per_step = t_opt / steps / args.faces
    rows.append({"method": f"optimize step (1024 px, {loss.kind})", "steps": steps, "s_per_face": per_step * steps,
                 "note": f"{per_step:.3f} s/step/face -> 1000 steps ~ {per_step * 1000:.0f} s/face"})
    return rows


def print_table(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    cols = ("method", "steps/face", "s/face (median)", "min-max", "PSNR dB", "SSIM", "LPIPS", "ID dist", "ID sim",
            "loss / note")
    for col in cols:
        t.add_column(col, justify="left" if col in ("method", "loss / note") else "right")

    def f(v, spec):
        return "n/a" if v is None else format(v, spec)

    for r in rows:
        spread = f"{r['s_min']:.3f}-{r['s_max']:.3f}" if "s_min" in r else ""
        t.add_row(r["method"], f(r.get("steps"), ".0f"), f"{r['s_per_face']:.3f}", spread, f(r.get("psnr"), ".2f"),
                  f(r.get("ssim"), ".4f"), f(r.get("lpips"), ".4f"), f(r.get("id_dist"), ".3f"),
                  f(r.get("id_sim"), ".3f"), r.get("loss") or r.get("note", ""))
    Console(width=160).print(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", help="generator file (default: bundled model, else a tiny random one)")
    ap.add_argument("--encoder", help="encoder file for --generator")
    ap.add_argument("--images", help="folder or zip of aligned face crops to invert (default: generated targets)")
    ap.add_argument("--photos", help="folder of photos: every face is aligned with the model's template and inverted")
    ap.add_argument("--faces", type=int, default=4, help="at most this many faces")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per row (median reported)")
    ap.add_argument("--only", help="comma-separated rows to run: encoder, hybrid, optimize")
    ap.add_argument("--id-sweep", help="comma-separated identity-loss weights: run hybrid with each instead")
    ap.add_argument("--hybrid-steps", type=int, default=None, help="default: the refine schedule (140)")
    ap.add_argument("--optimize-steps", type=int, default=None, help="default: the projector schedule (1000)")
    ap.add_argument("--encoder-steps", type=int, default=500, help="training steps for the tiny fallback setup")
    ap.add_argument("--vgg16", help="local VGG16 weights for LPIPS (loss and metric)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--official-size", action="store_true", help="time 1024-px generator + e4e (random weights)")
    ap.add_argument("--official-steps", type=int, default=5, help="optimisation steps timed at 1024 px")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = args.device
    if args.official_size:
        print_table(official_size(args), f"official size, {dev}, {args.faces} face(s) per batch")
    else:
        from editkit.errors import MissingWeightsError

        alignment = "ffhq"
        try:
            G, enc, alignment = load_setup(args)
        except MissingWeightsError:
            G, enc = tiny_setup(args.encoder_steps, dev)
        images = targets_for(G, args, alignment)
        rows = id_sweep(G, enc, images, args) if args.id_sweep else run_methods(G, enc, images, args)
        import datetime

        print_table(rows, f"inversion at {G.resolution} px on {dev} ({args.threads} threads, torch {torch.__version__}, "
                          f"{datetime.date.today()}), {len(images)} faces; shared machine: medians")
    from rich.console import Console
    from rich.table import Table

    t = Table(title="published anchors (GPU unless stated; quality on CelebA-HQ at 256 px)")
    for col in ("method", "time", "quality"):
        t.add_column(col)
    for row in ANCHORS:
        t.add_row(*row)
    Console(width=140).print(t)


if __name__ == "__main__":
    main()
