"""Navigator training speed: seconds per iteration and synthesized images/s per variant, resolution
and precision, with peak memory.

CPU (default when no GPU): the tiny test generator (16 px, w_dim 16), K=4, batch 4.
CUDA: randomly initialised FFHQ-size generators at 256 and 512 px (num_fp16_res 4, conv_clamp 256, as
NVIDIA's), K=30, AlexNet at full resolution (random weights: same cost as ImageNet ones), binary b=12 /
prototype b=10, in each precision: ``mixed`` (the default on CUDA and the authors' setting: the
generator's own float16 blocks, sensor and loss in float32), ``fp32`` and ``bf16`` (autocast everywhere;
not the authors'). Reference (authors' code, one H200): mixed 512 px binary 0.187 s/iter, prototype 0.166;
256 px binary 0.124, prototype 0.099; float32 512 px 0.455 / 0.346. Target: >= 1.5x faster at the same
precision. The "precision" column is the one the trainer resolved and ran.

    .venv/bin/python benchmarks/navigator.py                  # auto: CUDA if present, else CPU tiny
    .venv/bin/python benchmarks/navigator.py --device cpu --iters 10
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from editkit.networks import Generator  # noqa: E402
from navigator.sensors import random_alexnet  # noqa: E402
from navigator.train import NavigatorTrainer, TrainConfig  # noqa: E402

REFERENCE = {(512, "binary", "mixed"): 0.187, (512, "prototype", "mixed"): 0.166, (256, "binary", "mixed"): 0.124,
             (256, "prototype", "mixed"): 0.099, (512, "binary", "fp32"): 0.455, (512, "prototype", "fp32"): 0.346}


def make_generator(res: int, device: torch.device) -> Generator:
    torch.manual_seed(0)
    if res <= 32:
        G = Generator(z_dim=16, w_dim=16, resolution=res, channel_base=256, channel_max=16)
    else:
        G = Generator(z_dim=512, w_dim=512, resolution=res, channel_base=32768 if res >= 512 else 16384,
                      channel_max=512, num_fp16_res=4, conv_clamp=256)
    return G.to(device).eval().requires_grad_(False)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # process peak RSS (Linux: KiB)


def bench(G, variant: str, K: int, batch: int, precision: str, iters: int, warmup: int, device: torch.device) -> dict:
    cfg = TrainConfig(variant=variant, num_directions=K, batch=batch, kimg=1e6, pca_samples=2048,
                      num_components=min(100, G.w_dim), precision=precision, snapshot_every=0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as tmp:
        tr = NavigatorTrainer(G, cfg, tmp, sensor=random_alexnet(0).to(device), progress=False)
        for _ in range(warmup):
            tr.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            tr.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = (time.perf_counter() - t0) / iters
        used = tr.precision
    images = 2.5 * batch if variant == "binary" else 2 * batch
    return {"s_per_iter": dt, "img_per_s": images / dt, "peak_mb": peak_memory_mb(device), "precision": used}


def sensor_costs(res: int, batch: int, device: torch.device, iters: int) -> None:
    """Forward + backward time of each sensor on ``batch`` images (random weights: same cost)."""
    import torchvision
    from editkit.networks import Discriminator
    from navigator.sensors import _STAGE_ENDS, DiscriminatorSensor, FeatureSensor

    torch.manual_seed(0)
    vgg = FeatureSensor(torchvision.models.vgg16(weights=None).features, _STAGE_ENDS["vgg16"], "vgg16")
    D = Discriminator(resolution=res, channel_base=32768 if res >= 512 else 16384, channel_max=512)
    sensors = {"alexnet / random-alexnet": random_alexnet(0), "vgg16": vgg, "discriminator": DiscriminatorSensor(D)}
    print(f"\nsensor cost at {res} px, batch {batch} (forward + backward to the input)")
    print(f"{'sensor':<26} {'ms/iter':>9} {'ms/image':>9}")
    for name, s in sensors.items():
        s = s.to(device)
        x = torch.randn(batch, 3, res, res, device=device, requires_grad=True)
        for i in range(iters + 1):
            if i == 1:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
            sum(f.float().square().mean() for f in s(x)).backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = (time.perf_counter() - t0) / iters
        print(f"{name:<26} {dt * 1000:>9.1f} {dt * 1000 / batch:>9.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    ap.add_argument("--iters", type=int, default=None, help="timed iterations (default 5 CPU, 20 CUDA)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--precision", default=None, choices=["auto", "mixed", "fp32", "bf16"],
                    help="only this precision (default: CUDA auto=mixed, fp32 and bf16; CPU auto=fp32)")
    ap.add_argument("--resolutions", default=None, help="comma list (default: 16 on CPU, 256,512 on CUDA)")
    ap.add_argument("--sensor-res", type=int, default=None, help="also time each sensor at this resolution "
                    "(default: 64 on CPU, 512 on CUDA; 0 to skip)")
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    os.environ.setdefault("EDITKIT_CACHE", tempfile.mkdtemp(prefix="editkit-bench-"))
    if device.type == "cpu":
        torch.set_num_threads(1)
        res_list = [int(r) for r in (args.resolutions or "16").split(",")]
        plans = [(r, v, 4, 4, args.precision or "auto") for r in res_list for v in ("binary", "prototype")]
        iters = args.iters or 5
    else:
        torch.backends.cudnn.benchmark = True
        res_list = [int(r) for r in (args.resolutions or "256,512").split(",")]
        precs = [args.precision] if args.precision else ["auto", "fp32", "bf16"]
        plans = [(r, v, 30, 12 if v == "binary" else 10, p) for r in res_list for p in precs
                 for v in ("binary", "prototype")]
        iters = args.iters or 20
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} thread)"
    print(f"navigator training benchmark on {name}, torch {torch.__version__}")
    header = f"{'res':>5} {'variant':<10} {'K':>3} {'batch':>5} {'precision':<9} {'s/iter':>8} {'img/s':>8} " \
             f"{'peak MB':>9} {'reference s/iter':>17} {'speed-up':>8}"
    print(header)
    print("-" * len(header))
    gens = {}
    for res, variant, K, batch, prec in plans:
        G = gens.setdefault(res, make_generator(res, device))
        r = bench(G, variant, K, batch, prec, iters, args.warmup, device)
        ref = REFERENCE.get((res, variant, r["precision"])) if device.type == "cuda" else None
        speed = f"{ref / r['s_per_iter']:.2f}x" if ref else "-"
        print(f"{res:>5} {variant:<10} {K:>3} {batch:>5} {r['precision']:<9} {r['s_per_iter']:>8.4f} {r['img_per_s']:>8.1f} "
              f"{r['peak_mb']:>9.0f} {ref if ref else '-':>17} {speed:>8}")
    if device.type == "cpu":
        print("peak MB on the CPU is the process's peak resident memory. The authors' reference numbers are for an "
              "H200 GPU at 256/512 px: no comparison is possible on the CPU.")
    sres = args.sensor_res if args.sensor_res is not None else (64 if device.type == "cpu" else 512)
    if sres:
        sensor_costs(sres, 4 if device.type == "cpu" else 30, device, 3 if device.type == "cpu" else 10)


if __name__ == "__main__":
    main()
