"""Throughput of ``editkit train generator`` (images/s through full training steps) at 64x64.

Runs the real training step (G main, lazy path length, D main, lazy R1, EMA) on an in-memory
uint8 dataset (random images by default, or ``--data`` for a real folder/zip) and prints a table
next to the reference: NVIDIA's official stylegan2-ada-pytorch, cfg auto, batch 32, 64x64, no
augmentation, 3.84 s/kimg = 260 img/s on one H200; the target is 3x that on the same GPU.

    .venv/bin/python benchmarks/train_generator.py                     # CPU, the CPU presets
    .venv/bin/python benchmarks/train_generator.py --device cuda --configs official-auto,bundled-cpu
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from editkit.training.data import BatchSampler, load_dataset  # noqa: E402
from editkit.training.generator_trainer import GeneratorTrainer, TrainConfig  # noqa: E402

REFERENCE_IMG_S = 260.0  # official trainer, cfg auto, batch 32, 64x64, one H200 (3.84 s/kimg)
TARGET_FACTOR = 3.0

# NVIDIA's cfg 'auto' at 64x64 on one GPU: fmaps 0.5 -> channel_base 16384, cmax 512, map 2, batch 32,
# mbstd 4, gamma 0.0002 * 64^2 / 32, ema 10 kimg, pl_weight 2, style mixing 0.9, z/w 512.
PRESETS: dict[str, dict] = {
    "official-auto": dict(z_dim=512, w_dim=512, mapping_layers=2, channel_base=16384, channel_max=512, batch=32,
                          r1_gamma=0.0256, pl_weight=2.0, augment="none"),
    # the bundled model's config (scripts/train_bundled_generator.sh), and two wider alternatives
    "bundled-cpu": dict(z_dim=128, w_dim=128, mapping_layers=2, channel_base=1024, channel_max=128, batch=16,
                        r1_gamma=0.1, pl_weight=0.0, augment="none"),
    "cpu-base2048": dict(z_dim=128, w_dim=128, mapping_layers=2, channel_base=2048, channel_max=128, batch=16,
                         r1_gamma=0.1, pl_weight=0.0, augment="none"),
    "cpu-base4096": dict(z_dim=128, w_dim=128, mapping_layers=2, channel_base=4096, channel_max=128, batch=16,
                         r1_gamma=0.1, pl_weight=0.0, augment="none"),
}


def measure(name: str, device: str, seconds: float, amp: bool | None, compile_: bool | None, images: torch.Tensor,
            batch: int | None, channels_last: bool = True) -> dict:
    kw = dict(PRESETS[name])
    if batch:
        kw["batch"] = batch
    cfg = TrainConfig(data="<memory>", out="/nonexistent", resolution=64, device=device, amp=amp, compile=compile_,
                      channels_last=channels_last, **kw)
    tr = GeneratorTrainer(cfg, show_progress=False, log=lambda m: None)
    sampler = BatchSampler(images.shape[0], cfg.batch, seed=0)
    sync = torch.cuda.synchronize if tr.device.type == "cuda" else (lambda: None)

    def step() -> None:
        idx, flips = sampler.indices(tr.step)
        tr.train_step(images[idx], flips)

    warm = 3 if tr.device.type == "cuda" else 1
    for _ in range(warm):  # includes the R1 and compile steps
        step()
    sync()
    t0, times = time.perf_counter(), []
    # runs >= `seconds` and >= 2 steps; the mean includes the lazy R1 steps that fall in the window
    while time.perf_counter() - t0 < seconds or len(times) < 2:
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    dt = time.perf_counter() - t0
    n = len(times)
    return dict(config=name, device=str(tr.device), batch=cfg.batch, amp=tr.amp, compile=tr._compiled, steps=n,
                img_s=n * cfg.batch / dt, img_s_median=cfg.batch / sorted(times)[n // 2],
                params=sum(p.numel() for p in tr.G.parameters()) + sum(p.numel() for p in tr.D.parameters()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--configs", default=None, help=f"comma separated presets: {', '.join(PRESETS)} "
                    "(default: the bundled-cpu ones on CPU; official-auto and bundled-cpu on CUDA)")
    ap.add_argument("--seconds", type=float, default=10.0, help="timed seconds per row")
    ap.add_argument("--batch", type=int, default=None, help="override the presets' batch size")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--amp", choices=["auto", "on", "off", "both"], default="auto",
                    help="bfloat16 autocast (auto: CUDA only; both: a row each)")
    ap.add_argument("--no-compile", action="store_true", help="no torch.compile on CUDA")
    ap.add_argument("--no-channels-last", action="store_true", help="contiguous (NCHW) conv weights")
    ap.add_argument("--data", default=None, help="measure on a real folder/zip instead of random images")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    names = args.configs.split(",") if args.configs else (
        ["official-auto", "bundled-cpu"] if cuda else ["bundled-cpu", "cpu-base2048", "cpu-base4096"])
    if args.data:
        images = load_dataset(args.data, 64, max_images=4096).images
    else:
        images = torch.randint(0, 256, (1024, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    amps = {"auto": [None], "on": [True], "off": [False], "both": [False, True]}[args.amp]
    rows = []
    for name in names:
        for amp in amps:
            r = measure(name, args.device, args.seconds, amp, False if args.no_compile else None, images, args.batch,
                        channels_last=not args.no_channels_last)
            rows.append(r)
            print(f"  {r['config']}: {r['img_s']:.1f} img/s", file=sys.stderr, flush=True)
    target = REFERENCE_IMG_S * TARGET_FACTOR
    print(f"\nStyleGAN2 training throughput, 64x64 (reference: official trainer {REFERENCE_IMG_S:.0f} img/s on one "
          f"H200, target {target:.0f} img/s = {TARGET_FACTOR:.0f}x on the same GPU)")
    hdr = f"{'config':<18} {'device':<8} {'params':>7} {'batch':>5} {'amp':>5} {'compile':>7} {'steps':>5} " \
          f"{'img/s':>8} {'median':>8} {'s/kimg':>8} {'vs ref':>7}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['config']:<18} {r['device']:<8} {r['params'] / 1e6:6.2f}M {r['batch']:>5} {str(r['amp']):>5} "
              f"{str(r['compile']):>7} {r['steps']:>5} {r['img_s']:8.1f} {r['img_s_median']:8.1f} {1000 / r['img_s']:8.1f} "
              f"{r['img_s'] / REFERENCE_IMG_S:6.2f}x")
    print(f"{'official (NVIDIA)':<18} {'H200':<8} {'':>7} {32:>5} {'':>5} {'':>7} {'':>5} {REFERENCE_IMG_S:8.1f} {'':>8} "
          f"{1000 / REFERENCE_IMG_S:8.2f} {1.0:6.2f}x")
    print("img/s: mean over the window; median: from the median step time (robust to CPU contention).")
    print("'vs ref' compares with the H200 reference; only CUDA rows of the official-auto config on an H200 "
          "are like for like.")


if __name__ == "__main__":
    main()
