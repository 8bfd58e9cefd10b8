"""`editkit serve` in a real headless Chromium (Debian's, driven by Playwright): upload, drag a slider, the
preview is Editor.edit's image, the download is Editor.edit's file byte for byte, a text file gets a message,
and no request leaves the machine.

Skipped (with the reason) where Chromium or Playwright is missing; with CI=true it fails instead.
``EDITKIT_WEB_SCREENSHOTS=folder`` also saves the page at each step (how docs/images/serve-*.png are made).
"""
from __future__ import annotations

import base64
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from web_helpers import TWO_FACES, need, need_module

REPO = Path(__file__).resolve().parents[1]
K = 13  # a strong direction of the bundled model (once named "smile"; unnamed under the label promise)
STEPS = 6  # optimisation steps of 'refine' (hybrid), few to keep the test short
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions"]


def chromium_path() -> str | None:
    found = os.environ.get("EDITKIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and Path(found).exists() else None


@pytest.fixture(scope="module")
def server(request):
    need_module("fastapi", "the web extra is not installed: pip install -e '.[web]'")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(torch.get_num_threads()),
           "PYTHONUNBUFFERED": "1"}  # same thread count as this process: bit-identical floats
    proc = subprocess.Popen([sys.executable, "-m", "editkit.cli", "serve", "--port", "0", "--steps", str(STEPS)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    request.getfixturevalue("editor")  # load this process's models while the server loads its own
    url, seen = None, []
    while url is None:
        try:
            line = lines.get(timeout=180)
        except queue.Empty:
            break
        seen.append(line)
        if line.startswith("editkit serve: http://127.0.0.1:"):
            url = line.split()[2]
    if url is None:
        proc.kill()
        pytest.fail("the server did not start:\n" + "".join(seen))
    yield url
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(30) == 0  # Ctrl-C stops it cleanly (sessions deleted)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        need("chromium", "no Chromium here (apt-get install chromium, or set EDITKIT_CHROMIUM)")
    need_module("playwright", "pip install playwright (the Python package; it uses Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def editor():
    from editkit import Editor
    from inversion.align.detection import hog_detector, shape_predictor

    hog_detector(), shape_predictor()
    return Editor(invert_options={"steps": STEPS}, analyze_faces=False)


def js_number(x: float) -> str:
    """How JavaScript prints a number (both print the shortest repr that round-trips)."""
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


def shown_image(page) -> np.ndarray:
    """The pixels the page shows now (its canvas, read back losslessly)."""
    import io

    from PIL import Image

    data_url = page.evaluate("() => document.getElementById('photo').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def test_edit_in_the_browser(server, browser, editor, tmp_path):
    shots = os.environ.get("EDITKIT_WEB_SCREENSHOTS")
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page = ctx.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(60_000)

    page.goto(server)
    page.wait_for_selector("body[data-state=empty]")
    assert page.locator("#named .slider").count() + page.locator("#unnamed .slider").count() == 32
    assert page.locator("#others").get_attribute("open") is None  # unnamed directions start collapsed
    named = [f"{lab} ({k})" for k, lab in enumerate(editor.navigator.labels) if lab]
    assert named and all(n in page.inner_text("#named") for n in named)  # named directions first, with index

    page.set_input_files("#file", str(TWO_FACES))
    page.wait_for_selector("body.has-photo[data-state=ready][data-preview='0|encoder|']")
    assert page.locator("#overlay rect.face").count() == 2
    assert page.locator("#overlay rect.face.chosen").count() == 1
    start = shown_image(page)
    np.testing.assert_array_equal(start, editor.edit(TWO_FACES, 0, 0.0, faces=[0], method="encoder").image)

    if not editor.navigator.labels[K]:
        page.click("#others > summary")  # the direction is listed by index among the others
        page.wait_for_selector("#others[open]")
    # drag direction K's slider with the mouse and release it
    page.locator(f"#s{K}").scroll_into_view_if_needed()
    box = page.locator(f"#s{K}").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=4)
    page.mouse.move(box["x"] + box["width"] * 0.85, y, steps=4)
    page.mouse.up()
    value = float(page.input_value(f"#s{K}"))
    assert value > 0
    page.wait_for_selector(f"body[data-state=ready][data-preview='0|encoder|{K}:{js_number(value)}']")
    if shots:
        page.screenshot(path=str(Path(shots) / "serve-edit.png"))
    edited = shown_image(page)
    ref = editor.edit(TWO_FACES, K, value, faces=[0], method="encoder")
    assert np.abs(edited.astype(int) - start).max() > 20  # the preview changed
    np.testing.assert_array_equal(edited, ref.image)  # and is the API's image for that strength
    assert f"--attr {K} --strength {value!r}" in page.inner_text("#command")

    # before/after toggle shows the photo as it was
    page.click("#toggle")
    page.wait_for_selector("#toggle[aria-pressed=true]")
    from editkit.photos import read_photo

    np.testing.assert_array_equal(shown_image(page), read_photo(TWO_FACES).array)
    if shots:
        page.screenshot(path=str(Path(shots) / "serve-before.png"))
    page.click("#toggle")

    # download: byte for byte what Editor.edit writes
    with page.expect_download() as dl:
        page.click("#download")
    name = f"{TWO_FACES.stem}.edit-attr{K}-s{value:g}.jpg"
    assert dl.value.suggested_filename == name
    expected = ref.save(tmp_path / name)[0].read_bytes()
    assert Path(dl.value.path()).read_bytes() == expected

    # refine: the faithful inversion in the background, then the slider works on it
    page.click("#refine")
    page.wait_for_selector(f"body[data-state=ready][data-preview='0|hybrid|{K}:{js_number(value)}']")
    assert page.inner_text("#method") == "faithful (hybrid)" and page.locator("#refine-progress").is_hidden()
    refined = shown_image(page)
    np.testing.assert_array_equal(refined, editor.edit(TWO_FACES, K, value, faces=[0], method="hybrid").image)
    assert np.abs(refined.astype(int) - edited).max() > 0
    if shots:
        page.screenshot(path=str(Path(shots) / "serve-refined.png"))

    # a traversal GIF of the slider's direction
    page.click("#gif")
    page.wait_for_selector("#gif-out:not([hidden])")
    assert page.get_attribute("#gif-link", "download") == f"{TWO_FACES.stem}.traverse-attr{K}.gif"

    # a text file dropped on the page: a message, the photo stays
    drop = page.evaluate_handle("""() => { const dt = new DataTransfer();
        dt.items.add(new File(["not a photo at all\\n".repeat(20)], "notes.txt", { type: "text/plain" }));
        return dt; }""")
    page.dispatch_event("#stage", "drop", {"dataTransfer": drop})
    page.wait_for_selector("body[data-state=error] #message:not([hidden])")
    msg = page.inner_text("#message")
    assert msg.startswith("notes.txt: not an image file") and "Traceback" not in msg
    assert page.locator("#view").is_visible()
    if shots:
        page.screenshot(path=str(Path(shots) / "serve-error.png"))

    assert not errors, errors
    local = server.rstrip("/")
    assert all(u.startswith(local + "/") or u.startswith(("blob:" + local, "data:")) for u in requests), \
        [u for u in requests if not u.startswith(local)]
    assert any(u.endswith("/preview") for u in requests)

    # closing the tab ends its session: the server forgets the photo
    sid = page.evaluate("() => S.sid")
    page.close(run_before_unload=True)
    ctx.close()
    deadline = time.monotonic() + 30
    while _status(f"{server}api/sessions/{sid}/original") != 404 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _status(f"{server}api/sessions/{sid}/original") == 404


def _status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
