"""The GPU suite: one run, one table against the reference numbers of issue 16.

    python benchmarks/gpu_suite.py                 # on a CUDA machine (about 5-8 minutes on an H200)
    python benchmarks/gpu_suite.py --tiny          # tiny sizes on the CPU: checks that every part runs

Rows (random weights everywhere: compute cost does not depend on the weight values):

* generator img/s (FFHQ configs, noise 'const') at 256 px batch 16, 1024 px batch 16 and 1024 px batch 1,
  in the official mixed precision (fp16 in the 4 highest resolutions), in bf16 everywhere, and the faster
  of the two replayed as a CUDA graph (and compiled with ``--compile``); reference: the official CUDA
  kernels on an H200, mixed precision: 1175, 274 and 73 img/s;
* navigator training s/iter at 512 px, K=30, bf16 mixed precision (binary b=12, prototype b=10);
  reference: the authors' code, 0.187 and 0.166 s/iter;
* the GAN trainer's img/s at 64 px (NVIDIA's cfg auto, batch 32); reference: NVIDIA's 260 img/s;
* edit latency per face at 1024 px (photo -> edited photo, models loaded): e4e encoder path and the
  hybrid path (e4e + 250 refinement steps); no published reference.

``--budget-s`` (default 450) skips the rows that would start after it, so the run stays under 8 minutes.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# this folder's navigator.py must not shadow the `navigator` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

GEN_REF = {(256, 16): 1175.0, (1024, 16): 274.0, (1024, 1): 73.0}
NAV_REF = {"binary": 0.187, "prototype": 0.166}
NAV_BATCH = {"binary": 12, "prototype": 10}
TRAIN_REF = 260.0
PHOTO = REPO / "tests" / "fixtures" / "product" / "astronaut.jpg"


def _load_bench(name: str):
    """Another benchmarks/ script as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Suite:
    def __init__(self, device: torch.device, budget_s: float, tiny: bool):
        self.device, self.budget_s, self.tiny = device, budget_s, tiny
        self.t0 = time.perf_counter()
        self.rows: list[tuple[str, str, str, str, str]] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def row(self, part: str, what: str, value: str, ref: str = "-", ratio: str = "-") -> None:
        self.rows.append((part, what, value, ref, ratio))
        print(f"  [{self.elapsed():6.1f} s] {part} | {what} | {value} | {ref} | {ratio}", file=sys.stderr, flush=True)

    def over_budget(self, part: str, what: str) -> bool:
        if self.elapsed() > self.budget_s:
            self.row(part, what, "skipped (time budget)")
            return True
        return False

    def timed(self, fn, min_s: float, min_iters: int = 3) -> float:
        """Median seconds per call of ``fn`` over >= min_iters calls and >= min_s seconds."""
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < min_iters or time.perf_counter() - start < min_s:
            t = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    # ---------------------------------------------------------------------------------- generator
    def generator(self, compile_: bool) -> None:
        from editkit.networks import Generator

        plans = [(32, 4), (32, 1)] if self.tiny else [(256, 16), (1024, 16), (1024, 1)]
        for res, batch in plans:
            if self.over_budget("generator", f"{res} px batch {batch}"):
                continue
            torch.manual_seed(0)
            if self.tiny:
                G = Generator(z_dim=32, w_dim=32, resolution=res, channel_base=512, channel_max=32, num_fp16_res=2,
                              conv_clamp=256)
            else:
                G = Generator(resolution=res, channel_base=16384 if res <= 256 else 32768, num_fp16_res=4,
                              conv_clamp=256)
            G = G.to(self.device).eval().requires_grad_(False)
            with torch.no_grad():
                ws = G.mapping(torch.randn(batch, G.z_dim, device=self.device), truncation_psi=0.7)
            ref = GEN_REF.get((res, batch))
            modes = {"mixed fp16 (official's layout)": (torch.float16, None), "bf16 everywhere": (None, torch.bfloat16)}
            if self.device.type != "cuda":
                modes = {"float32": (None, None), "bf16 everywhere": (None, torch.bfloat16)}
            best: tuple[float, tuple] = (0.0, (None, None))
            for name, (half, inf) in modes.items():
                G.set_precision(half).set_inference_precision(inf)
                with torch.no_grad():
                    G.synthesis(ws)  # warm-up (cuDNN/oneDNN algorithm choice, weight caches)
                    dt = self.timed(lambda: G.synthesis(ws), min_s=0.2 if self.tiny else 2.0)
                ips = batch / dt
                if ips > best[0]:
                    best = (ips, (half, inf))
                self._gen_row(res, batch, name, ips, ref)
            G.set_precision(best[1][0]).set_inference_precision(best[1][1])
            if self.device.type == "cuda":
                self._gen_row(res, batch, "best + CUDA graph", self._graphed(G, ws), ref)
            if compile_:
                fn = torch.compile(G.synthesis)
                with torch.no_grad():
                    fn(ws)
                    fn(ws)
                    dt = self.timed(lambda: fn(ws), min_s=0.2 if self.tiny else 2.0)
                self._gen_row(res, batch, "best + torch.compile", batch / dt, ref)
            del G
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def _gen_row(self, res: int, batch: int, mode: str, ips: float, ref: float | None) -> None:
        self.row("generator", f"{res} px batch {batch}, {mode}", f"{ips:.1f} img/s",
                 f"{ref:.0f} img/s" if ref else "-", f"{ips / ref:.2f}x" if ref else "-")

    def _graphed(self, G, ws: torch.Tensor) -> float:
        static = ws.clone()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.no_grad(), torch.cuda.stream(side):
            for _ in range(3):
                G.synthesis(static)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph):
            G.synthesis(static)
        graph.replay()
        dt = self.timed(graph.replay, min_s=2.0)
        return ws.shape[0] / dt

    # ---------------------------------------------------------------------------------- navigator
    def navigator(self) -> None:
        nav = _load_bench("navigator")
        res = 16 if self.tiny else 512
        G = nav.make_generator(res, self.device)
        for variant in ("binary", "prototype"):
            if self.over_budget("navigator", f"{res} px {variant}"):
                continue
            K, batch = (4, 4) if self.tiny else (30, NAV_BATCH[variant])
            prec = "fp32" if self.tiny else "bf16"
            r = nav.bench(G, variant, K, batch, prec, iters=2 if self.tiny else 10, warmup=1 if self.tiny else 3,
                          device=self.device)
            ref = None if self.tiny else NAV_REF[variant]
            self.row("navigator", f"{res} px {variant} K={K} b={batch} {prec}", f"{r['s_per_iter']:.3f} s/iter",
                     f"{ref} s/iter" if ref else "-", f"{ref / r['s_per_iter']:.2f}x faster" if ref else "-")
        del G

    # ---------------------------------------------------------------------------------- trainer
    def trainer(self) -> None:
        if self.over_budget("trainer", "64 px"):
            return
        tg = _load_bench("train_generator")
        images = torch.randint(0, 256, (256 if self.tiny else 1024, 3, 64, 64), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0))
        if self.tiny:
            r = tg.measure("bundled-cpu", str(self.device), 0.5, False, False, images, 4)
        else:
            r = tg.measure("official-auto", str(self.device), 20.0, None, None, images, None)
        self.row("trainer", f"64 px {r['config']} batch {r['batch']} amp={r['amp']} compile={r['compile']}",
                 f"{r['img_s']:.1f} img/s (median step {r['img_s_median']:.1f})",
                 "-" if self.tiny else f"{TRAIN_REF:.0f} img/s", "-" if self.tiny else f"{r['img_s'] / TRAIN_REF:.2f}x")

    # ---------------------------------------------------------------------------------- edit latency
    def edit(self) -> None:
        if self.over_budget("edit", "latency"):
            return
        import editkit
        from editkit.bundle import write_bundle
        from editkit.networks import Generator
        from inversion.encoders import build_encoder
        from navigator import Navigator

        torch.manual_seed(0)
        if self.tiny:
            G = Generator(z_dim=16, w_dim=16, resolution=32, channel_base=256, channel_max=16)
            res, arch, steps, kw = 32, "light", 5, dict(width=8, max_channels=16, hidden=16)
        else:
            G = Generator(resolution=1024, channel_base=32768, num_fp16_res=4, conv_clamp=256)
            res, arch, steps, kw = 1024, "e4e", None, {}
        with torch.no_grad():
            G.mapping.w_avg.copy_(G.mapping(torch.randn(2000, G.z_dim))[:, 0].mean(0))
        enc = build_encoder(arch, G.num_ws, G.w_dim, G.resolution, latent_avg=G.w_avg.detach().clone(), **kw)
        nav = Navigator(4 if self.tiny else 30, G.num_ws, G.w_dim, direction_mode="free", seed=0)
        with tempfile.TemporaryDirectory() as tmp:
            card = Path(tmp) / "card.md"
            card.write_text("# GPU suite stand-in\nRandom weights, for timing only.\n")
            bundle = write_bundle(Path(tmp) / "b", name="suite", generator=G, encoder=enc, navigators={"free": nav},
                                  alignment="ffhq", licence="timing only", provenance={"made_by": "gpu_suite"},
                                  model_card=card)
            del G, enc, nav
            for method in ("encoder", "hybrid"):
                if self.over_budget("edit", f"{res} px {method}"):
                    continue
                ed = editkit.Editor(bundle.root, method=method, device=self.device,
                                    invert_options={"steps": steps} if steps else None)
                ed.edit(PHOTO, 0, 2.0)  # warm-up
                times = []
                for _ in range(2 if method == "hybrid" else 3):
                    t = time.perf_counter()
                    res_ = ed.edit(PHOTO, 0, 2.0)
                    self.sync()
                    times.append((time.perf_counter() - t) / len(res_.faces))
                self.row("edit", f"{res} px per face, {method} ({arch}{'' if method == 'encoder' else ' + refine'},"
                         f" generator {ed.precision})", f"{statistics.median(times):.2f} s")
                del ed

    def table(self) -> str:
        lines = ["| part | measure | editkit | reference | editkit vs reference |", "|---|---|---|---|---|"]
        lines += [f"| {' | '.join(r)} |" for r in self.rows]
        return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cuda (default) or cpu (default with --tiny)")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes on the CPU, to check that every part runs")
    ap.add_argument("--parts", default="generator,navigator,trainer,edit")
    ap.add_argument("--budget-s", type=float, default=450.0, help="skip rows that would start after this")
    ap.add_argument("--compile", action="store_true", help="also time the generator under torch.compile")
    args = ap.parse_args()
    device = torch.device(args.device or ("cpu" if args.tiny else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_suite: no CUDA device here (use --tiny for the CPU check)")
    os.environ.setdefault("EDITKIT_CACHE", tempfile.mkdtemp(prefix="editkit-suite-"))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        torch.set_num_threads(min(2, os.cpu_count() or 1))
        name = f"CPU ({torch.get_num_threads()} threads)"
    suite = Suite(device, args.budget_s, args.tiny)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in ("generator", "navigator", "trainer", "edit")]
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(unknown)} (choose from generator, navigator, trainer, edit)")
    for part in parts:
        try:  # one failing part (e.g. no dlib on the GPU machine for 'edit') must not lose the others' rows
            suite.generator(args.compile) if part == "generator" else getattr(suite, part)()
        except Exception as exc:  # noqa: BLE001 (reported in the table, the run goes on)
            suite.row(part, "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}")
            if device.type == "cuda":
                torch.cuda.empty_cache()
    print(f"\nGPU suite{' (tiny, CPU check)' if args.tiny else ''}: {name}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d')}, {suite.elapsed():.0f} s")
    print(suite.table())
    if any(r[1] == "failed" for r in suite.rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
