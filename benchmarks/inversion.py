"""Inversion: time per face and reconstruction quality of encoder / hybrid / optimize, with anchors.

Usage:
  python benchmarks/inversion.py                       # bundled model if installed, else a tiny random one
  python benchmarks/inversion.py --generator G --encoder E [--images FOLDER_OF_ALIGNED_CROPS]
  python benchmarks/inversion.py --official-size --device cuda   # 1024 px generator + e4e, random weights

Targets are the generator's own images from known random W+ codes (truncation 0.7) unless
``--images`` gives real aligned crops. Without a generator of its own (no bundle) a random
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
        return G, enc
    bundle = registry.default_bundle()
    G = editkit.load_generator(bundle.generator_path, device=args.device)
    enc = inversion.load_encoder(bundle.encoder_path, device=args.device) if bundle.encoder_path else None
    print(f"(bundled model: {bundle.generator_path.name})")
    return G, enc


def targets_for(G, args) -> torch.Tensor:
    if args.images:
        from inversion.train_encoder import RealImages

        ds = RealImages(args.images, G.resolution)
        return torch.stack([ds[i] for i in range(min(args.faces, len(ds)))]).to(args.device)
    z = torch.randn(args.faces * G.num_ws, G.z_dim, generator=torch.Generator().manual_seed(1)).to(args.device)
    with torch.no_grad():
        ws = G.mapping(z, truncation_psi=0.7)[:, 0].reshape(args.faces, G.num_ws, G.w_dim)
        return G.synthesis(ws, noise_mode="const").clamp(-1, 1)


def run_methods(G, enc, images, args) -> list[dict]:
    from inversion import invert

    rows = []
    plans = []
    if enc is not None:
        plans += [("encoder", None), ("hybrid", args.hybrid_steps)]
    plans += [("optimize", args.optimize_steps)]
    for method, steps in plans:
        invert(G, images[:1], method=method, encoder=enc, steps=None if method == "encoder" else 2, vgg16=args.vgg16,
               measure=False)  # warm-up
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        res = invert(G, images, method=method, encoder=enc, steps=steps, vgg16=args.vgg16, batch_size=args.faces)
        m = res.metrics
        rows.append({"method": method, "steps": res.steps, "s_per_face": res.seconds / len(images),
                     "psnr": m["psnr_mean"], "ssim": m["ssim_mean"], "lpips": m.get("lpips_mean"),
                     "loss": res.loss or "-"})
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
    for col in ("method", "steps", "s/face", "PSNR dB", "SSIM", "LPIPS", "loss / note"):
        t.add_column(col, justify="left" if col in ("method", "loss / note") else "right")

    def f(v, spec):
        return "n/a" if v is None else format(v, spec)

    for r in rows:
        t.add_row(r["method"], str(r["steps"]), f"{r['s_per_face']:.4f}", f(r.get("psnr"), ".2f"),
                  f(r.get("ssim"), ".4f"), f(r.get("lpips"), ".4f"), r.get("loss") or r.get("note", ""))
    Console(width=140).print(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", help="generator file (default: bundled model, else a tiny random one)")
    ap.add_argument("--encoder", help="encoder file for --generator")
    ap.add_argument("--images", help="folder or zip of aligned face crops to invert (default: generated targets)")
    ap.add_argument("--faces", type=int, default=4)
    ap.add_argument("--hybrid-steps", type=int, default=None, help="default: the refine schedule (250)")
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

        try:
            G, enc = load_setup(args)
        except MissingWeightsError:
            G, enc = tiny_setup(args.encoder_steps, dev)
        images = targets_for(G, args)
        rows = run_methods(G, enc, images, args)
        print_table(rows, f"inversion at {G.resolution} px on {dev} ({args.threads} threads), "
                          f"{len(images)} faces per batch")
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
