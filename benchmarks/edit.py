"""Editing speed on the CPU: cold `editkit edit` wall time, warm per-face latency, batch faces/s.

    .venv/bin/python benchmarks/edit.py [--model BUNDLE] [--photo PHOTO] [--repeats 3] [--batch-photos 8]

* cold: a fresh `editkit edit` process, from process start until the output file exists (median of
  ``--repeats`` runs), for the encoder path and the default hybrid path;
* warm: an Editor kept in memory, seconds per face for one `edit` call (align + invert + edit +
  generate + render into the photo), split into its stages, per inversion method;
* batch: `run_batch` over a folder of ``--batch-photos`` photos, faces per second (encoder path).

Default model: the bundled one. When this install has no bundled model, a random-weight stand-in of
the bundled architecture (64 px generator with z/w 128, channel_base 4096, channel_max 128, 2 mapping
layers; the default light encoder; a 20-direction navigator; UTKFace alignment) is timed instead and
the table says so: compute cost does not depend on the weight values.
Targets on a 2-core CPU: cold <= 8 s, warm <= 1 s per face with the encoder path.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# benchmarks/navigator.py would shadow the `navigator` package when this script's folder is on sys.path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
DEFAULT_PHOTO = REPO / "tests" / "fixtures" / "product" / "astronaut.jpg"
TARGETS = {"cold": 8.0, "warm": 1.0}


def standin_bundle(out: Path) -> Path:
    """A random-weight bundle with the bundled model's architecture (see the module docstring)."""
    import torch

    from editkit.bundle import write_bundle
    from editkit.networks import Generator
    from inversion.encoders import build_encoder
    from navigator import Navigator

    torch.manual_seed(0)
    G = Generator(z_dim=128, w_dim=128, resolution=64, channel_base=4096, channel_max=128, mapping_layers=2)
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mapping(torch.randn(2000, 128))[:, 0].mean(0))
    enc = build_encoder("light", G.num_ws, G.w_dim, G.resolution, latent_avg=G.w_avg.detach().clone())
    nav = Navigator(20, G.num_ws, G.w_dim, direction_mode="free", seed=0)
    return write_bundle(out, name="standin", generator=G, encoder=enc, navigators={"binary": nav},
                        alignment="utkface", licence="benchmark stand-in (random weights)").root


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cold_runs(model: str, photo: Path, method: str, repeats: int, tmp: Path) -> list[float]:
    exe = Path(sys.executable).parent / "editkit"
    times = []
    for i in range(repeats):
        out = tmp / f"cold-{method}-{i}.jpg"
        t0 = time.perf_counter()
        r = subprocess.run([str(exe), "edit", str(photo), "--attr", "0", "--strength", "2", "-o", str(out),
                            "--model", model, "--method", method, "-q"], capture_output=True, text=True)
        dt = time.perf_counter() - t0
        log(f"cold {method} run {i}: {dt:.2f} s")
        if r.returncode != 0 or not out.is_file():
            raise SystemExit(f"cold run failed: {r.stderr.strip()}")
        times.append(dt)
    return times


def warm_latency(editor, photo: Path, method: str, repeats: int) -> dict:
    import numpy as np

    from editkit.render import render_faces, to_uint8

    log(f"warm-up {method}")
    editor.edit(photo, 0, 2.0, method=method)  # warm-up (first-use imports, detector load)
    stages = {"align": [], "invert": [], "edit+generate": [], "render": [], "total": []}
    faces = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        src = editor._read(photo)
        aligned = editor.align(src)
        t1 = time.perf_counter()
        inv = editor.invert_crops([f.image for f in aligned], method)
        t2 = time.perf_counter()
        ws = editor.navigator.edit(inv.ws.detach(), 0, 2.0)
        after = editor.synthesize(ws)
        recon = to_uint8(inv.images)
        t3 = time.perf_counter()
        render_faces(src.array, [(f, recon[j], after[j]) for j, f in enumerate(aligned)], editor.render)
        t4 = time.perf_counter()
        n = len(aligned)
        faces = n
        log(f"warm {method}: {t4 - t0:.3f} s for {n} face(s)")
        for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            stages[k].append(v / n)
    out = {k: float(np.median(v)) for k, v in stages.items()}
    out["faces_per_photo"] = faces
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="bundle folder or registered name (default: the bundled model)")
    ap.add_argument("--photo", type=Path, default=DEFAULT_PHOTO, help="photo to edit")
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement (median reported)")
    ap.add_argument("--batch-photos", type=int, default=8, help="photos in the batch-throughput folder")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--skip-cold", action="store_true", help="skip the subprocess (cold-start) runs")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import editkit
    from editkit import registry
    from editkit.batch import run_batch

    tmp = Path(tempfile.mkdtemp(prefix="editkit-bench-"))
    try:
        model, label = args.model, args.model
        if model is None:
            try:
                registry.default_bundle()
                model, label = "bundled", "bundled"
            except editkit.errors.EditkitError:
                model = str(standin_bundle(tmp / "standin"))
                label = "random-weight stand-in of the bundled architecture (no bundled model installed)"
        rows: list[tuple[str, str, str]] = []
        if not args.skip_cold:
            for method in ("encoder", "hybrid"):
                t = cold_runs(model, args.photo, method, args.repeats, tmp)
                ok = "yes" if statistics.median(t) <= TARGETS["cold"] else "NO"
                rows.append((f"cold `editkit edit` ({method})", f"{statistics.median(t):.2f} s",
                             f"median of {len(t)}; target <= {TARGETS['cold']:.0f} s: {ok}" if method == "encoder"
                             else f"median of {len(t)}"))
        t0 = time.perf_counter()
        ed = editkit.Editor(model)
        load_s = time.perf_counter() - t0
        rows.append(("load models (in process)", f"{load_s:.2f} s", "generator + encoder + navigator"))
        for method in ("encoder", "hybrid"):
            w = warm_latency(ed, args.photo, method, args.repeats)
            note = f"per face ({w['faces_per_photo']} faces/photo): align {w['align']:.3f}, invert {w['invert']:.3f}, " \
                   f"edit+generate {w['edit+generate']:.3f}, render {w['render']:.3f}"
            if method == "encoder":
                note += f"; target <= {TARGETS['warm']:.0f} s: {'yes' if w['total'] <= TARGETS['warm'] else 'NO'}"
            rows.append((f"warm edit per face ({method})", f"{w['total']:.3f} s", note))
        folder = tmp / "batch-in"
        folder.mkdir()
        for i in range(args.batch_photos):
            shutil.copyfile(args.photo, folder / f"p{i:03d}{args.photo.suffix}")
        ed.method = "encoder"
        s = run_batch(ed, folder, tmp / "batch-out", 0, 2.0, method="encoder")
        rows.append(("batch throughput (encoder)", f"{s.faces_per_s:.2f} faces/s",
                     f"{s.done} photos, {s.faces} faces in {s.seconds:.1f} s"))
        print(f"model: {label}")
        print(f"photo: {args.photo.name}; torch threads: {torch.get_num_threads()}; cpu count: {os.cpu_count()}")
        w1 = max(len(r[0]) for r in rows)
        w2 = max(len(r[1]) for r in rows)
        print(f"| {'measure':<{w1}} | {'value':<{w2}} | notes |")
        print(f"|{'-' * (w1 + 2)}|{'-' * (w2 + 2)}|-------|")
        for r in rows:
            print(f"| {r[0]:<{w1}} | {r[1]:<{w2}} | {r[2]} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
