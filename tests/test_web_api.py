"""editkit serve's API, in-process (FastAPI TestClient) with the bundled model: previews and downloads are
Editor.edit's own results, bad files get one-line messages, sessions are isolated, no route reads server paths."""
from __future__ import annotations

import io
import urllib.parse
import time

import numpy as np
import pytest
from PIL import Image

from web_helpers import TWO_FACES, need_module

FACE, K, S = 0, 13, 2.0  # direction 13: a strong direction of the bundled model (once named 'smile')


@pytest.fixture(scope="module")
def editor():
    from editkit import Editor

    # a short refine keeps the test fast; the face-network report (not shown by the page) is skipped, as by `serve`
    return Editor(method="hybrid", invert_options={"steps": 4}, analyze_faces=False)


@pytest.fixture(scope="module")
def client(editor):
    need_module("fastapi", "pip install -e '.[web]'")
    need_module("httpx", "pip install httpx (FastAPI's TestClient)")
    from fastapi.testclient import TestClient

    from editkit.web.app import create_app
    from editkit.web.service import EditorService

    service = EditorService(editor, max_upload=2 * 2**20)
    with TestClient(create_app(service), base_url="http://127.0.0.1") as c:
        c.service = service
        yield c
    assert not service.sessions.root.exists()  # shutting down removes every session's files


def new_session(client) -> str:
    return client.post("/api/sessions").json()["id"]


def upload(client, sid, data: bytes, name: str):
    return client.post(f"/api/sessions/{sid}/photo", content=data, headers={"X-Filename": name})


@pytest.fixture(scope="module")
def sid(client):
    r = upload(client, s := new_session(client), TWO_FACES.read_bytes(), "voc.jpg")
    assert r.status_code == 200, r.text
    return s


def png_array(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def shown(client, sid, r) -> np.ndarray:
    """What the page shows for preview response ``r``: the original with the changed region drawn over it."""
    out = png_array(client.get(f"/api/sessions/{sid}/original").content).copy()
    x, y, w, h = map(int, r.headers["x-editkit-patch"].split(","))
    if w:
        patch = png_array(r.content)
        assert patch.shape == (h, w, 3)
        out[y:y + h, x:x + w] = patch
    return out


def test_info_lists_the_directions(client, editor):
    info = client.get("/api/info").json()
    assert info["fast_method"] == "encoder" and info["refine_method"] == "hybrid"
    assert [d["index"] for d in info["directions"]] == list(range(editor.navigator.num_directions))
    assert [d["label"] for d in info["directions"]] == list(editor.navigator.labels)
    assert info["directions"][K]["range"] == list(editor.directions()[K].strength_range)


def test_upload_numbers_the_faces(client, sid):
    s = client.service.sessions.get(sid)
    assert len(s.faces) == 2
    r = upload(client, new_session(client), TWO_FACES.read_bytes(), "../../etc/voc.jpg")
    body = r.json()
    assert body["name"] == "voc.jpg" and (body["width"], body["height"]) == (360, 480)
    assert [f["index"] for f in body["faces"]] == [0, 1]
    x0, y0, x1, y1 = body["faces"][0]["box"]
    assert 0 <= x0 < x1 <= 360 and 0 <= y0 < y1 <= 480
    orig = png_array(client.get(f"/api/sessions/{sid}/original").content)
    assert orig.shape == (480, 360, 3)


def test_preview_is_editor_edit_of_the_cached_code(client, sid, editor):
    r = client.post(f"/api/sessions/{sid}/preview", json={"face": FACE, "method": "encoder", "edits": [[K, S]]})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    ref = editor.edit(TWO_FACES, K, S, faces=[FACE], method="encoder")
    got = shown(client, sid, r)
    np.testing.assert_array_equal(got, ref.image)
    x, y, w, h = map(int, r.headers["x-editkit-patch"].split(","))
    assert 0 < w * h < 0.5 * 360 * 480  # only the region around the face travels
    assert r.headers["x-editkit-command"] == f"editkit edit voc.jpg --face {FACE} --method encoder --attr {K} --strength {S!r}"
    zero = shown(client, sid, client.post(f"/api/sessions/{sid}/preview", json={"face": FACE, "edits": [[K, 0]]}))
    assert np.abs(zero.astype(int) - got).max() > 20  # the slider changes the picture
    np.testing.assert_array_equal(zero, editor.edit(TWO_FACES, 0, 0.0, faces=[FACE], method="encoder").image)


def test_download_is_byte_for_byte_editor_edit(client, sid, editor, tmp_path):
    edits = [[2, -1.5], [K, S]]
    r = client.post(f"/api/sessions/{sid}/download", json={"face": 1, "method": "encoder", "edits": edits})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="voc.edit-attr2-s-1.5_attr13-s2.jpg"'
    assert r.headers["content-type"] == "image/jpeg"
    ref = editor.edit(TWO_FACES, [2, K], [-1.5, S], faces=[1], method="encoder")
    out = ref.save(tmp_path / "voc.edit-attr2-s-1.5_attr13-s2.jpg")[0]
    assert r.content == out.read_bytes()
    assert list(client.service.sessions.get(sid).folder.iterdir())[0].name == "upload.jpg"  # nothing left behind


def test_gif_is_the_traversal(client, sid, editor):
    r = client.post(f"/api/sessions/{sid}/gif", json={"face": FACE, "method": "encoder", "direction": K, "frames": 5})
    assert r.status_code == 200 and r.content[:6] == b"GIF89a"
    gif = Image.open(io.BytesIO(r.content))
    assert gif.n_frames == 8  # 5 frames forward, 3 back (bounce)
    trav = editor.traverse(TWO_FACES, [K], None, frames=5, face=FACE, method="encoder")
    gif.seek(4)
    last = np.asarray(gif.convert("RGB")).astype(int)
    assert np.abs(last - trav.frames[-1]).mean() < 6  # GIF palette quantisation only


def test_refine_runs_in_the_background_with_progress(client, sid, editor):
    r = client.post(f"/api/sessions/{sid}/preview", json={"face": 1, "method": "hybrid", "edits": []})
    assert r.status_code == 400 and "not been refined" in r.json()["error"]
    st = client.post(f"/api/sessions/{sid}/refine", json={"face": 1}).json()
    assert st["state"] in ("running", "done") and st["method"] == "hybrid"
    deadline = time.monotonic() + 120
    while st["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)  # polls the job's state; the assertions do not depend on timing
        st = client.get(f"/api/sessions/{sid}/refine").json()
    assert st["state"] == "done" and st["step"] == st["total"] == 4
    r = client.post(f"/api/sessions/{sid}/preview", json={"face": 1, "method": "hybrid", "edits": [[K, S]]})
    ref = editor.edit(TWO_FACES, K, S, faces=[1], method="hybrid")
    np.testing.assert_array_equal(shown(client, sid, r), ref.image)


@pytest.mark.parametrize("name,data,expected", [
    ("notes.txt", b"these are not the pixels you are looking for\n" * 10, "notes.txt: not an image file"),
    ("cut.jpg", TWO_FACES.read_bytes()[:3000], "cut.jpg: truncated or corrupt image"),
    ("empty.png", b"", "empty.png: empty file"),
])
def test_bad_files_get_one_line_messages_and_keep_the_photo(client, name, data, expected):
    s = new_session(client)
    assert upload(client, s, TWO_FACES.read_bytes(), "voc.jpg").status_code == 200
    r = upload(client, s, data, name)
    assert r.status_code == 400
    msg = r.json()["error"]
    assert msg.startswith(expected) and "\n" not in msg and "Traceback" not in msg and "/tmp" not in msg
    assert client.service.sessions.get(s).name == "voc.jpg"  # the open photo is kept
    assert client.post(f"/api/sessions/{s}/preview", json={"edits": []}).status_code == 200


def test_a_photo_without_faces_says_so(client):
    buf = io.BytesIO()
    Image.new("RGB", (120, 90), (90, 120, 150)).save(buf, format="PNG")
    r = upload(client, new_session(client), buf.getvalue(), "wall.png")
    assert r.status_code == 400 and r.json()["error"].startswith("wall.png: no face found")


def test_upload_size_limit(client):
    big = b"\xff\xd8" + b"\0" * (2 * 2**20 + 10)
    r = upload(client, new_session(client), big, "huge.jpg")
    assert r.status_code == 413 and "too large" in r.json()["error"]


def test_sessions_never_see_each_other(client, sid):
    other = new_session(client)
    r = client.post(f"/api/sessions/{other}/preview", json={"edits": [[K, S]]})
    assert r.status_code == 400 and r.json()["error"] == "open a photo first"
    assert client.get(f"/api/sessions/{other}/original").status_code == 400
    assert client.get("/api/sessions/not-a-session/original").status_code == 404
    assert client.post(f"/api/sessions/{sid[:-1]}/preview", json={"edits": []}).status_code == 404


def test_ending_a_session_deletes_its_files(client):
    s = new_session(client)
    upload(client, s, TWO_FACES.read_bytes(), "voc.jpg")
    folder = client.service.sessions.get(s).folder
    assert any(folder.iterdir())
    assert client.post(f"/api/sessions/{s}/end").json() == {"ended": True}
    assert not folder.exists()
    assert client.get(f"/api/sessions/{s}/original").status_code == 404


@pytest.mark.parametrize("path", ["/static/../../etc/passwd", "/static/..%2F..%2Fetc%2Fpasswd", "/static/%2Fetc%2Fpasswd",
                                  "/static/app.py", "/static/__init__.py", "/etc/passwd", "/api/sessions/..%2F..%2Fetc/original"])
def test_no_route_reads_server_paths(client, path):
    r = client.get(path)
    assert r.status_code in (404, 405) and b"root:" not in r.content


def test_static_files_and_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and b"/static/app.js" in r.content
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


def test_requests_for_other_host_names_are_refused(client):
    assert client.get("/api/info", headers={"Host": "attacker.example"}).status_code == 400
    assert client.get("/api/info", headers={"Host": "localhost:7860"}).status_code == 200


def test_bad_edit_values(client, sid):
    for edits, msg in (([[99, 1]], "out of range"), ([[K, "x"]], "bad edit"), ([[K, 1], [K, 2]], "twice"),
                       ("smile", "list")):
        r = client.post(f"/api/sessions/{sid}/preview", json={"edits": edits})
        assert r.status_code == 400 and msg in r.json()["error"]
    r = client.post(f"/api/sessions/{sid}/preview", json={"face": 7, "edits": []})
    assert r.status_code == 400 and "face 7 out of range" in r.json()["error"]


def test_the_service_keeps_the_given_session_store(editor):
    from editkit.web.service import EditorService
    from editkit.web.state import Sessions

    store = Sessions(ttl=5)
    try:
        assert EditorService(editor, store).sessions is store  # an empty store is falsy: not replaced
    finally:
        store.close()


def test_malformed_bodies_get_one_line_errors(client, sid):
    r = client.post(f"/api/sessions/{sid}/preview", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json() == {"error": "bad request: the body must be a JSON object"}


def test_strength_warnings_reach_the_page(client, sid, editor):
    hi = editor.directions()[K].strength_range[1]
    r = client.post(f"/api/sessions/{sid}/preview", json={"face": FACE, "edits": [[K, hi * 1.2]]})
    assert r.status_code == 200 and "recommended" in urllib.parse.unquote(r.headers["x-editkit-warnings"])
    r = client.post(f"/api/sessions/{sid}/preview", json={"face": FACE, "edits": [[K, hi / 2]]})
    assert r.headers["x-editkit-warnings"] == ""
