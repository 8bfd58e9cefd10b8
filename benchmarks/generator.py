"""Synthesis time of editkit's generator, side by side with the official NVIDIA generator.

    python benchmarks/generator.py --reference ~/src/stylegan2-ada-pytorch        # side by side
    python benchmarks/generator.py --reference PATH --sizes 256 --repeats 7 --precision float32,auto
    python benchmarks/generator.py                                                 # editkit alone

``--reference`` points at a checkout of NVlabs/stylegan2-ada-pytorch (editkit contains none of its
code). Its ``training.networks.Generator`` is imported from that folder at run time, with its optional
imports (``requests``, ``distutils``) stubbed; on the CPU its custom CUDA ops fall back to NVIDIA's
reference implementations, and it runs with ``force_fp32=True`` (float32 everywhere).

Both generators get the same configuration (z/w 512, 8 mapping layers, channel_base 16384 at 256 px
and 32768 at 1024 px, channel_max 512, conv_clamp 256, num_fp16_res 4), the same random weights (the
official network's state dict is loaded into editkit's) and the same W+ code; batch 1, noise 'const'.
Each generator runs in its own worker process; the parent asks them for one synthesis at a time,
alternating official / editkit mode A / editkit mode B / ..., so that both see the same machine load.
The table gives min / median / max per generator, the median of the per-round ratios
editkit / official (and its min..max), and the PSNR of editkit's image against the official one.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHANNEL_BASE = {64: 16384, 128: 16384, 256: 16384, 512: 32768, 1024: 32768}
TARGET_RATIO = 0.5  # issue 16: at most half the official float32 time


def config(res: int) -> dict:
    return dict(z_dim=512, w_dim=512, resolution=res, channel_base=CHANNEL_BASE.get(res, 32768), channel_max=512,
                conv_clamp=256, num_fp16_res=4, mapping_layers=8)


# ------------------------------------------------------------------------------------------ workers
def _import_official(path: Path):
    """``training.networks`` from a stylegan2-ada-pytorch checkout, its optional imports stubbed."""
    if not (path / "training" / "networks.py").is_file() or not (path / "torch_utils").is_dir():
        raise SystemExit(f"{path}: not a checkout of NVlabs/stylegan2-ada-pytorch (no training/networks.py)")
    try:
        import requests  # noqa: F401  (dnnlib.util imports it for downloads only)
    except ImportError:
        sys.modules["requests"] = types.ModuleType("requests")
    try:
        import distutils.util  # noqa: F401  (removed in Python 3.12; dnnlib uses strtobool)
    except ImportError:
        dist, util = types.ModuleType("distutils"), types.ModuleType("distutils.util")
        util.strtobool = lambda s: str(s).lower() in ("y", "yes", "t", "true", "on", "1")
        dist.util = util
        sys.modules.update({"distutils": dist, "distutils.util": util})
    sys.path.insert(0, str(path))
    import warnings

    warnings.filterwarnings("ignore")
    from training import networks  # noqa: E402

    return networks


def worker(kind: str, res: int, precision: str, threads: int, shared: Path, reference: str | None) -> None:
    """Serve timed syntheses: one JSON line per 'run' line read from stdin."""
    import torch

    torch.set_num_threads(threads)
    cfg = config(res)
    if kind == "official":
        networks = _import_official(Path(reference))
        torch.manual_seed(0)
        G = networks.Generator(z_dim=512, w_dim=512, c_dim=0, img_resolution=res, img_channels=3,
                               mapping_kwargs=dict(num_layers=cfg["mapping_layers"]),
                               synthesis_kwargs=dict(channel_base=cfg["channel_base"], channel_max=512,
                                                     num_fp16_res=cfg["num_fp16_res"], conv_clamp=256))
        G = G.eval().requires_grad_(False)
        with torch.no_grad():
            ws = G.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(1)), None, truncation_psi=0.7)

        def synth():
            return G.synthesis(ws, noise_mode="const", force_fp32=True)

        torch.save({k: v.detach().clone() for k, v in G.state_dict().items()}, shared / "state.pt")
        torch.save(ws, shared / "ws.pt")
        used = "float32"
    else:
        sys.path.insert(0, str(REPO))
        from editkit.networks import Generator
        from editkit.precision import apply_precision

        G = Generator(**cfg).eval().requires_grad_(False)
        if (shared / "state.pt").exists():  # the official network's weights, so that the images can be compared
            state = torch.load(shared / "state.pt", weights_only=True)
            own = G.state_dict()
            G.load_state_dict({k: state.get(k, v) for k, v in own.items()})
            ws = torch.load(shared / "ws.pt", weights_only=True)
        else:
            with torch.no_grad():
                ws = G.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(1)), truncation_psi=0.7)
        used = apply_precision(G, precision)

        def synth():
            return G.synthesis(ws, noise_mode="const")

    with torch.no_grad():
        img = synth()  # warm-up (oneDNN primitive creation)
    if kind == "official":
        torch.save(img, shared / "img.pt")
    psnr = None
    if kind != "official" and (shared / "img.pt").exists():
        ref = torch.load(shared / "img.pt", weights_only=True)
        mse = (img.float() - ref).square().mean().item()
        psnr = 10 * math.log10(4.0 / mse) if mse > 0 else float("inf")  # images in [-1, 1]: peak-to-peak 2
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
    print(json.dumps({"ready": True, "precision": used, "psnr": psnr, "peak_mb": peak}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        with torch.no_grad():
            t = time.perf_counter()
            synth()
            dt = time.perf_counter() - t
        print(json.dumps({"s": dt}), flush=True)


class Worker:
    def __init__(self, kind: str, res: int, precision: str, threads: int, shared: Path, reference: str | None):
        cmd = [sys.executable, __file__, "--worker", kind, "--sizes", str(res), "--precision", precision,
               "--threads", str(threads), "--shared", str(shared)]
        if reference:
            cmd += ["--reference", reference]
        self.name = "official" if kind == "official" else f"editkit {precision}"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        self.info = self._read()
        self.times: list[float] = []

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name} worker failed (exit {self.proc.wait()})")
        return json.loads(line)

    def run(self) -> float:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        dt = self._read()["s"]
        self.times.append(dt)
        return dt

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


def _stats(xs: list[float]) -> str:
    return f"{min(xs) * 1e3:.0f} / {statistics.median(xs) * 1e3:.0f} / {max(xs) * 1e3:.0f}"


def machine() -> str:
    import torch

    from editkit.precision import cpu_bf16_supported

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " ".join(f"{x:.1f}" for x in __import__("os").getloadavg())
    except OSError:
        load = "?"
    return (f"{time.strftime('%Y-%m-%d')}, torch {torch.__version__}, {cpu}, {__import__('os').cpu_count()} CPUs, "
            f"native CPU bf16: {'yes' if cpu_bf16_supported() else 'no'}, load average {load}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", default=None, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    ap.add_argument("--sizes", default="256,1024")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds per size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="float32,auto",
                    help="editkit modes to time, comma-separated (auto, float32, bf16)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--shared", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, int(args.sizes), args.precision, args.threads, Path(args.shared), args.reference)
        return
    sys.path.insert(0, str(REPO))
    modes = list(dict.fromkeys(m.strip() for m in args.precision.split(",") if m.strip()))
    print(f"# {machine()}; {args.threads} threads, batch 1, float32 reference, noise 'const', "
          f"{args.repeats} alternated rounds", flush=True)
    rows = []
    for res in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            workers = []
            try:
                if args.reference:
                    workers.append(Worker("official", res, "float32", args.threads, Path(tmp), args.reference))
                for m in modes:
                    workers.append(Worker("editkit", res, m, args.threads, Path(tmp), None))
                for r in range(args.repeats):
                    for w in workers:
                        w.run()
                    print(f"  {res} px round {r + 1}/{args.repeats}: "
                          + ", ".join(f"{w.name} {w.times[-1] * 1e3:.0f} ms" for w in workers), flush=True)
            finally:
                for w in workers:
                    w.close()
        ref = workers[0] if args.reference else None
        for w in workers:
            ratios = [a / b for a, b in zip(w.times, ref.times)] if ref is not None and w is not ref else None
            rows.append((res, w, ratios))
    print()
    print("| res | generator (mode used) | ms min / median / max | ratio to official: median (min..max) "
          "| target | PSNR vs official | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for res, w, ratios in rows:
        name = w.name if w.name == "official" else f"editkit {w.name.split()[1]} ({w.info['precision']})"
        ratio = (f"{statistics.median(ratios):.2f} ({min(ratios):.2f}..{max(ratios):.2f})" if ratios else "-")
        target = "-" if not ratios else (f"<= {TARGET_RATIO} ("
                                         f"{'met' if statistics.median(ratios) <= TARGET_RATIO else 'not met'})")
        psnr = w.info.get("psnr")
        psnr_s = "-" if psnr is None else ("exact" if psnr == float("inf") else f"{psnr:.1f} dB")
        print(f"| {res} | {name} | {_stats(w.times)} | {ratio} | {target} | {psnr_s} "
              f"| {w.info['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
