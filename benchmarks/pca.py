"""W PCA basis at the authors' sample count: time of the streamed exact PCA (navigator.bases.pca_basis) for
1,000,000 samples of a real-size mapping network (z/w 512, 8 layers, FFHQ's), and how far the leading
components from fewer samples are from the 10⁶-sample ones (|cosine| per component, and the largest
principal angle of the top-N subspace, N = 100 as the paper's navigator uses).

The mapping is randomly initialised (no official weights here): the same size and cost as FFHQ's; its W
distribution is not FFHQ's, so the agreement numbers are indicative for trained networks.

    .venv/bin/python benchmarks/pca.py [--samples 1000000] [--fewer 10000,100000] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from editkit.networks import Generator  # noqa: E402
from navigator.bases import pca_basis  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--fewer", default="10000,100000")
    ap.add_argument("--top", type=int, default=100)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("EDITKIT_CACHE", tempfile.mkdtemp(prefix="editkit-pca-"))
    torch.manual_seed(0)
    G = Generator(z_dim=512, w_dim=512, resolution=8, mapping_layers=8, channel_max=32).to(args.device).eval()
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({args.threads} thread)"
    print(f"streamed PCA of W, mapping 512 -> 512, 8 layers, on {where} (shared machine: times are noisy)")
    t = time.perf_counter()
    ref = pca_basis(G, args.samples, cache=False)
    print(f"{args.samples:>9} samples: {time.perf_counter() - t:7.1f} s")
    k = args.top
    print(f"\n{'samples':>9} {'s':>7} {'|cos| c1':>9} {'c10':>7} {'c30':>7} {'min |cos| 1-30':>15} "
          f"{'max angle top-' + str(k):>15}")
    for n in (int(x) for x in args.fewer.split(",")):
        t = time.perf_counter()
        b = pca_basis(G, n, seed=1, cache=False)
        dt = time.perf_counter() - t
        cos = (b.components[:, :30] * ref.components[:, :30]).sum(0).abs()
        sv = torch.linalg.svdvals(b.components[:, :k].double().T @ ref.components[:, :k].double())
        angle = float(torch.rad2deg(torch.arccos(sv.min().clamp(max=1))))
        print(f"{n:>9} {dt:>7.1f} {cos[0]:>9.5f} {cos[9]:>7.4f} {cos[29]:>7.4f} {cos.min():>15.4f} {angle:>14.2f}°")


if __name__ == "__main__":
    main()
