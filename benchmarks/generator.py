"""Synthesis speed and peak memory of editkit's generator (random weights, official layouts).

Usage: python benchmarks/generator.py [--threads 2] [--repeats 3] [--sizes 256,1024] [--batches 1,8]
Each configuration runs in a fresh subprocess so that peak memory (max RSS) is its own.
Reference (official NVIDIA code on the same 2-core machine, batch 1, float32): 1.16 s at 256 px,
8.5 s at 1024 px; target: at most half. GPU reference (H200, custom CUDA kernels, mixed precision):
1175 img/s at 256 and 274 img/s at 1024 (batch 16), 73 img/s at 1024 batch 1.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

REFERENCE_CPU_S = {256: 1.16, 1024: 8.5}
REFERENCE_GPU_IMG_S = {(256, 16): 1175, (1024, 16): 274, (1024, 1): 73}
CHANNEL_BASE = {256: 16384, 1024: 32768}


def run_one(res: int, batch: int, repeats: int, threads: int, device: str) -> dict:
    import resource
    import time

    import torch

    from editkit.networks import Generator

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    G = Generator(resolution=res, channel_base=CHANNEL_BASE[res], conv_clamp=256, num_fp16_res=4).eval()
    G.requires_grad_(False).to(device)
    if device == "cuda":
        G.set_precision(torch.float16)
    ws = G.mapping(torch.randn(batch, 512, device=device), truncation_psi=0.7)
    with torch.no_grad():
        out = G.synthesis(ws)  # warm-up (oneDNN / cuDNN primitive creation)
        if device == "cuda":
            torch.cuda.synchronize()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            out = G.synthesis(ws)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        # outputs unchanged: the batched path equals the batch-of-one path image by image
        single = G.synthesis(ws[:1])
        diff = (single - out[:1]).abs().max().item()
    peak = (torch.cuda.max_memory_allocated() / 2 ** 20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    best = min(times)
    return {"res": res, "batch": batch, "s_per_img": best / batch, "img_per_s": batch / best,
            "peak_mb": peak, "batch_vs_single_maxdiff": diff, "device": device}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="256,1024")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        res, batch = map(int, args.one.split(","))
        print(json.dumps(run_one(res, batch, args.repeats, args.threads, args.device)))
        return
    rows = []
    for res in map(int, args.sizes.split(",")):
        for batch in map(int, args.batches.split(",")):
            out = subprocess.run([sys.executable, __file__, "--one", f"{res},{batch}", "--repeats", str(args.repeats),
                                  "--threads", str(args.threads), "--device", args.device],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"| device | res | batch | ms/img | img/s | peak MB | reference | target | max diff batch vs single |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["device"] == "cpu":
            ref = REFERENCE_CPU_S.get(r["res"])
            refs, target = (f"{ref * 1000:.0f} ms (NVIDIA, b1)", f"<= {ref * 500:.0f} ms") if ref else ("-", "-")
        else:
            ref = REFERENCE_GPU_IMG_S.get((r["res"], r["batch"]))
            refs, target = (f"{ref} img/s", f"> {ref} img/s") if ref else ("-", "-")
        print(f"| {r['device']} | {r['res']} | {r['batch']} | {r['s_per_img'] * 1000:.0f} | {r['img_per_s']:.2f} | "
              f"{r['peak_mb']:.0f} | {refs} | {target} | {r['batch_vs_single_maxdiff']:.1e} |")


if __name__ == "__main__":
    main()
