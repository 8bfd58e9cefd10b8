"""Gradio vs a small FastAPI app with one static page: install size, start time, slider round trip.

How `editkit serve` chose its framework. Each framework runs in its own throwaway venv (created under
/tmp with --create, never in the project's), serving the same toy editor: a slider whose value
renders a 512x512 image (the same NumPy work and PNG encode in both), so the numbers are the
framework's own cost. Measured:

* install size: the venv's site-packages minus an empty venv's;
* start time: process start to the first 200 answer of ``GET /`` (median of --starts runs);
* slider round trip: the value sent -> the new image's bytes received, as the page does it
  (FastAPI: one POST answered with the PNG; Gradio: gradio_client's predict, the queue protocol its
  page uses, then the image file fetched), median and p95 of --moves moves;
* requests the page makes to hosts other than the server, in headless Chromium (network closed).

    python benchmarks/serve_frameworks.py --create          # builds /tmp/serve-bench-{fastapi,gradio}
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

VENVS = {"fastapi": ["fastapi", "uvicorn", "python-multipart", "pillow", "numpy"],
         "gradio": ["gradio", "pillow", "numpy"]}

TOY = '''
import io, numpy as np
from PIL import Image
def render(s):
    y, x = np.mgrid[0:512, 0:512] / 512.0
    a = (np.stack([np.sin(x * 6 + s), np.cos(y * 6 - s), np.sin((x + y) * 3 * s)], -1) * 127 + 128).astype(np.uint8)
    return a
def png(a):
    b = io.BytesIO(); Image.fromarray(a).save(b, format="PNG", compress_level=1); return b.getvalue()
'''

FASTAPI_APP = TOY + '''
import sys, uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
app = FastAPI()
PAGE = """<!doctype html><input type=range id=s min=-3 max=3 step=0.1><img id=i>
<script>s.onchange=async()=>{const r=await fetch('/edit?s='+s.value,{method:'POST'});
i.src=URL.createObjectURL(await r.blob())}</script>"""
@app.get("/")
def index(): return HTMLResponse(PAGE)
@app.post("/edit")
def edit(s: float): return Response(png(render(s)), media_type="image/png")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
'''

GRADIO_APP = TOY + '''
import sys, gradio as gr
with gr.Blocks() as demo:
    s = gr.Slider(-3, 3, value=0, step=0.1, label="strength")
    out = gr.Image(type="numpy", format="png")
    s.release(render, inputs=s, outputs=out, api_name="edit")
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), prevent_thread_lock=False)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_size(venv: Path) -> int:
    out = subprocess.run(["du", "-sk", str(venv)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) * 1024


def start(python: Path, code: str, port: int, tmp: Path) -> tuple[subprocess.Popen, float]:
    script = tmp / f"app_{port}.py"
    script.write_text(code)
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(python), str(script), str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "True"})
    deadline = t0 + 120
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - t0
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("server did not start")


def roundtrips(name: str, python: Path, port: int, moves: int) -> list[float]:
    code = {
        "fastapi": textwrap.dedent(f'''
            import time, urllib.request
            out = []
            for k in range({moves}):
                t = time.perf_counter()
                req = urllib.request.Request("http://127.0.0.1:{port}/edit?s=%.1f" % ((k % 60) / 10 - 3), method="POST")
                urllib.request.urlopen(req).read()
                out.append(time.perf_counter() - t)
            print(" ".join(map(str, out)))'''),
        "gradio": textwrap.dedent(f'''
            import time
            from gradio_client import Client
            c = Client("http://127.0.0.1:{port}/", verbose=False)
            out = []
            for k in range({moves}):
                t = time.perf_counter()
                path = c.predict((k % 60) / 10 - 3, api_name="/edit")
                open(path, "rb").read()
                out.append(time.perf_counter() - t)
            print(" ".join(map(str, out)))'''),
    }[name]
    res = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=600)
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    return [float(v) for v in res.stdout.split()]


def external_requests(port: int) -> list[str]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return ["(playwright not installed)"]
    seen: list[str] = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium",
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = b.new_page()
        page.on("request", lambda r: seen.append(r.url))
        page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle", timeout=60_000)
        b.close()
    return sorted({u.split("?")[0] for u in seen if not u.startswith(f"http://127.0.0.1:{port}")
                   and not u.startswith("data:") and not u.startswith("blob:")})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--create", action="store_true", help="create the throwaway venvs first")
    ap.add_argument("--root", default="/tmp", help="where the venvs live")
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--moves", type=int, default=30)
    args = ap.parse_args()
    root = Path(args.root)
    empty = root / "serve-bench-empty"
    if args.create:
        for name in ["empty", *VENVS]:
            v = root / f"serve-bench-{name}"
            if not v.exists():
                subprocess.run([sys.executable, "-m", "venv", str(v)], check=True)
                if name != "empty":
                    subprocess.run([str(v / "bin/pip"), "install", "-q", *VENVS[name]], check=True)
    base = site_size(empty)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, code in (("fastapi", FASTAPI_APP), ("gradio", GRADIO_APP)):
            py = root / f"serve-bench-{name}" / "bin/python"
            size = site_size(py.parent.parent) - base
            starts, lat, ext = [], [], []
            for i in range(args.starts):
                port = free_port()
                proc, dt = start(py, code, port, Path(tmp))
                starts.append(dt)
                try:
                    if i == 0:
                        lat = roundtrips(name, py, port, args.moves)
                        ext = external_requests(port)
                finally:
                    proc.terminate()
                    proc.wait(10)
            lat_sorted = sorted(lat)
            p95 = lat_sorted[min(len(lat_sorted) - 1, int(round(0.95 * (len(lat_sorted) - 1))))]
            rows.append((name, size / 2**20, statistics.median(starts), statistics.median(lat) * 1000, p95 * 1000, ext))
    print("| framework | install (MiB) | start (s, median) | slider round trip median / p95 (ms) | page requests off the server |")
    print("|---|---|---|---|---|")
    for name, size, st, med, p95, ext in rows:
        print(f"| {name} | {size:.0f} | {st:.2f} | {med:.0f} / {p95:.0f} | {len(ext)}: {', '.join(ext) or 'none'} |")


if __name__ == "__main__":
    main()
