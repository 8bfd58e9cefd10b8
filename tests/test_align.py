"""Face detection, FFHQ/UTKFace alignment, the FAN backend and ``editkit align`` (paste-back: test_render_paste.py)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from editkit.errors import BadInputError, MissingWeightsError, NoFaceError, UsageError
from editkit.photos import load_photo
from inversion.align import TEMPLATES, align_face, align_faces, apply_transform, detect_faces, get_template

FIX = Path(__file__).parent / "fixtures" / "align"
ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((FIX / "golden_alignment.json").read_text())
HAS_FAN = importlib.util.find_spec("face_alignment") is not None


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def hull_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    return m.astype(bool)


def test_templates_registry():
    assert {"ffhq", "utkface"} <= set(TEMPLATES)
    ffhq = get_template("ffhq")
    assert (ffhq.eye_scale, ffhq.mouth_scale, ffhq.centre_shift, ffhq.supersample) == (2.0, 1.8, 0.1, 4)
    assert get_template(ffhq) is ffhq
    with pytest.raises(UsageError, match="unknown alignment template"):
        get_template("nope")


# --- golden: the official recipe -------------------------------------------------------------------------

@pytest.mark.parametrize("entry", GOLDEN["photos"], ids=[p["photo"] for p in GOLDEN["photos"]])
def test_ffhq_reproduces_official_crops_and_detections(entry):
    img = load_photo(FIX / entry["photo"])
    assert [img.shape[1], img.shape[0]] == entry["size"]
    for f in entry["faces"]:
        ref = np.asarray(Image.open(FIX / f["aligned_256"]).convert("RGB"))
        got = align_face(img, np.array(f["landmarks68"], float), "ffhq", size=256)
        assert psnr(got.image, ref) >= 40.0
    faces = align_faces(img, template="ffhq", size=256)
    assert [tuple(f.box) for f in faces] == [tuple(f["box"]) for f in entry["faces"]]
    for got, f in zip(faces, entry["faces"]):
        assert np.abs(got.landmarks - np.array(f["landmarks68"])).max() <= 1.0
        ref = np.asarray(Image.open(FIX / f["aligned_256"]).convert("RGB"))
        assert psnr(got.image, ref) >= 40.0


@pytest.mark.slow
def test_ffhq_golden_all_photos():
    """Every golden crop (256 and 1024) and detection: set EDITKIT_GOLDEN_ALIGNMENT to
    shared/golden/alignment and EDITKIT_GOLDEN_PHOTOS to shared/data/photos/unaligned."""
    gdir, pdir = os.environ.get("EDITKIT_GOLDEN_ALIGNMENT"), os.environ.get("EDITKIT_GOLDEN_PHOTOS")
    if not gdir or not pdir:
        pytest.skip("EDITKIT_GOLDEN_ALIGNMENT / EDITKIT_GOLDEN_PHOTOS not set")
    doc = json.loads((Path(gdir) / "alignment.json").read_text())
    for entry in doc["photos"]:
        img = load_photo(Path(pdir) / entry["photo"])
        for f in entry["faces"]:
            for key, size in (("aligned_256", 256), ("aligned_1024", 1024)):
                if key in f:
                    ref = np.asarray(Image.open(Path(gdir) / f[key]).convert("RGB"))
                    got = align_face(img, np.array(f["landmarks68"], float), "ffhq", size=size)
                    assert psnr(got.image, ref) >= 40.0, f[key]
        dets = detect_faces(img)
        assert [d.box for d in dets] == [tuple(f["box"]) for f in entry["faces"]], entry["photo"]


def test_transform_maps_landmarks_to_ffhq_positions():
    img = load_photo(FIX / "fr_obama_240p.jpg")
    (face,) = align_faces(img, size=256)
    lm = face.landmarks_in_crop
    eyes = (lm[36:42].mean(0) + lm[42:48].mean(0)) / 2
    assert abs(eyes[0] / 256 - 0.5) < 0.03 and 0.42 < eyes[1] / 256 < 0.52
    assert 0.22 < np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0))) / 256 < 0.30
    back = apply_transform(face.transform, lm)
    assert np.allclose(back, face.landmarks, atol=1e-6)
    d = face.to_dict()
    assert np.allclose(np.array(d["crop_to_photo"]) @ np.array(d["photo_to_crop"]), np.eye(3), atol=1e-5)


# --- round trip on real FFHQ crops --------------------------------------------------------------------------

def _similarity(rng, scale):
    theta = np.radians(rng.uniform(-35, 35))
    c, s = np.cos(theta) * scale, np.sin(theta) * scale
    return np.array([[c, -s], [s, c]])


@pytest.mark.parametrize("name,seed,scale", [("ffhq_00000", 0, 1.3), ("ffhq_00003", 1, 2.2), ("ffhq_00000", 2, 4.6)])
def test_round_trip_random_similarity(name, seed, scale):
    """Warp a real FFHQ crop into a larger canvas by a known similarity; aligning recovers the crop."""
    rng = np.random.default_rng(seed)
    img = load_photo(FIX / f"{name}.png")
    lm = np.load(FIX / f"{name}_lm68.npy")
    ref = align_face(img, lm, "ffhq", size=256)  # the crop's own framing from its landmark file
    a = _similarity(rng, scale)
    canvas = int(256 * scale * 1.6)
    centre_in = np.array([127.5, 127.5])
    centre_out = np.array([canvas / 2, canvas / 2]) + rng.uniform(-0.1, 0.1, 2) * canvas
    t = centre_out - a @ centre_in
    m = np.hstack([a, t[:, None]])
    photo = cv2.warpAffine(img, m, (canvas, canvas), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
    got = align_face(photo, lm @ a.T + t, "ffhq", size=256)
    # the crop-to-photo transforms agree with the known warp
    assert np.allclose(got.transform[:2, :2], a @ ref.transform[:2, :2], rtol=1e-6, atol=1e-6)
    inside = hull_mask(ref.landmarks_in_crop, (256, 256))
    assert inside.mean() > 0.2
    assert psnr(got.image[inside], ref.image[inside]) >= 30.0
    # same framing up to the recipe's shrink step, which really moves content by <= 1 photo pixel
    assert np.abs(got.landmarks_in_crop - ref.landmarks_in_crop).max() < 0.2


@pytest.mark.parametrize("scale", [1.0, 4.6])
def test_transform_predicts_where_content_lands(scale):
    """A blob at photo point p appears in the crop at inverse_transform(p), with or without shrinking."""
    lm = np.load(FIX / "ffhq_00000_lm68.npy") * scale + 200.3
    size = int(256 * scale + 400)
    p = np.array([lm[30, 0] + 3.1, lm[30, 1] - 2.7])
    yy, xx = np.mgrid[:size, :size]
    blob = np.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2) / (2 * (3 * scale) ** 2))
    face = align_face(np.repeat((blob * 250).astype(np.uint8)[..., None], 3, 2), lm, "ffhq", size=256)
    c = face.image[..., 0].astype(float)
    c = np.where(c > c.max() * 0.2, c, 0)
    cy, cx = np.mgrid[:256, :256]
    centroid = np.array([(c * cx).sum() / c.sum(), (c * cy).sum() / c.sum()])
    assert np.abs(centroid - apply_transform(face.inverse_transform, p[None])[0]).max() < 0.1


# --- UTKFace template ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(FIX.glob("utkface_*.jpg")), ids=lambda p: p.stem)
def test_utkface_template_gives_back_the_crop_framing(path):
    crop = load_photo(path)
    pad = 100
    photo = np.pad(crop, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    photo = cv2.resize(photo, (800, 800), interpolation=cv2.INTER_CUBIC)  # ×2
    faces = align_faces(photo, template="utkface", size=200)
    face = max(faces, key=lambda f: f.score)
    quad_in_crop = (face.quad + 0.5) / 2 - 0.5 - pad
    true = np.array([[-0.5, -0.5], [-0.5, 199.5], [199.5, 199.5], [199.5, -0.5]])
    err = np.hypot(*(quad_in_crop - true).T).mean() / 200
    assert err < 0.08, err  # the measured template fits UTKFace crops to ~3 % (median)
    ffhq = align_faces(photo, template="ffhq", size=200)
    ffhq_err = np.hypot(*(((max(ffhq, key=lambda f: f.score).quad + 0.5) / 2 - 0.5 - pad) - true).T).mean() / 200
    assert ffhq_err > 0.2  # and the FFHQ framing is clearly not the UTKFace one
    lm = face.landmarks_in_crop
    assert 0.22 < (lm[36:48].mean(0)[1]) / 200 < 0.38  # eyes at ~0.30 H as in UTKFace


# --- detection edge cases -----------------------------------------------------------------------------------

def test_no_face_is_a_clear_error(tmp_path):
    blank = np.full((200, 300, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match="no face found"):
        align_faces(blank)
    p = tmp_path / "blank.png"
    Image.fromarray(blank).save(p)
    with pytest.raises(NoFaceError) as ei:
        align_faces(p)
    assert str(p) in str(ei.value)
    with pytest.raises(UsageError):
        align_faces(np.zeros((10, 10), np.float32))


def test_upsampling_finds_small_faces():
    img = load_photo(FIX / "fr_obama_240p.jpg")
    small = cv2.resize(img, (214, 120), interpolation=cv2.INTER_AREA)  # face ~35 px: below HOG's 80-px window
    with pytest.raises(NoFaceError, match="upsample"):
        align_faces(small, upsample=0)
    (face,) = align_faces(small, upsample=1, size=64)
    assert face.image.shape == (64, 64, 3)


def test_faces_sorted_and_max_faces():
    img = load_photo(FIX / "dlib_voc_2008_001009.jpg")
    faces = align_faces(img, size=64, max_faces=1)
    assert len(faces) == 1 and faces[0].image.shape == (64, 64, 3)
    both = align_faces(img, size=64)
    assert [f.box[0] for f in both] == sorted(f.box[0] for f in both)
    assert faces[0].score == max(f.score for f in both)


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_cnn_detector_option_finds_the_face():
    img = load_photo(FIX / "fr_obama_240p.jpg")
    sub = cv2.resize(img[0:130, 140:300], (320, 260), interpolation=cv2.INTER_CUBIC)
    (cnn,) = detect_faces(sub, detector="cnn", upsample=0)
    (hog,) = detect_faces(sub, detector="hog")
    assert _iou(cnn.box, hog.box) > 0.5 and cnn.landmarks.shape == (68, 2)
    with pytest.raises(UsageError, match="unknown face detector"):
        detect_faces(sub, detector="mtcnn")


# --- optional FAN backend -----------------------------------------------------------------------------------

def test_fan_backend_missing_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    img = load_photo(FIX / "fr_obama_240p.jpg")
    with pytest.raises(MissingWeightsError) as ei:
        detect_faces(img, landmarks="fan")
    msg = str(ei.value)
    assert ("pip install" in msg) if not HAS_FAN else ("2DFAN4" in msg and "not found" in msg)


@pytest.mark.skipif(not HAS_FAN, reason="face_alignment (extra 'fan') not installed")
def test_fan_backend_with_random_weights(tmp_path, monkeypatch):
    import torch
    from face_alignment.models import FAN

    from inversion.align.fan import weights_filename

    torch.manual_seed(0)
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(FAN(4).state_dict(), hub / weights_filename())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    img = load_photo(FIX / "fr_obama_240p.jpg")
    (det,) = detect_faces(img, landmarks="fan")
    l, t, r, b = det.box
    assert det.landmarks.shape == (68, 2) and np.isfinite(det.landmarks).all()
    w = r - l
    assert (det.landmarks[:, 0] > l - w).all() and (det.landmarks[:, 0] < r + w).all()
    # the same file given as a folder
    (det2,) = detect_faces(img, landmarks="fan", fan_weights=hub)
    assert np.allclose(det.landmarks, det2.landmarks)


# --- CLI ----------------------------------------------------------------------------------------------------

def _png_header_only(w: int, h: int) -> bytes:
    """A PNG that claims w×h pixels (a decompression bomb's header) with no real image data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    good = (FIX / "fr_obama_240p.jpg").read_bytes()
    files = {"empty": tmp / "empty.jpg", "truncated": tmp / "truncated.jpg", "text": tmp / "readme.jpg",
             "huge": tmp / "huge.png", "noface": tmp / "noface.png", "missing": tmp / "missing.jpg"}
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(good[: len(good) // 3])
    files["text"].write_text("not a picture\n")
    files["huge"].write_bytes(_png_header_only(50000, 50000))
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(files["noface"])
    return files


def _run_cli(argv, capsys):
    from editkit.cli import main

    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("case", ["empty", "truncated", "text", "huge", "noface", "missing"])
def test_cli_bad_input_one_line(tmp_path, capsys, case):
    path = _bad_inputs(tmp_path)[case]
    rc, out, err = _run_cli(["align", str(path), "-o", str(tmp_path / "out")], capsys)
    assert rc == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("editkit: error:") and str(path) in lines[0]
    assert "Traceback" not in err + out


def test_cli_usage_errors(tmp_path, capsys):
    rc, _, err = _run_cli(["align", str(FIX / "fr_obama_240p.jpg"), "-o", str(tmp_path), "--template", "x"], capsys)
    assert rc == 2 and "unknown alignment template" in err
    rc, _, err = _run_cli(["align", str(FIX / "fr_obama_240p.jpg"), "-o", str(tmp_path), "--detector", "x"], capsys)
    assert rc == 2 and "unknown face detector" in err


def test_cli_align_writes_crops_and_json(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["align", str(FIX / "dlib_voc_2008_001009.jpg"), str(FIX / "fr_obama_240p.jpg"), "-o", str(out),
            "--size", "128"]
    rc, stdout, err = _run_cli(argv, capsys)
    assert rc == 0, err
    doc = json.loads((out / "alignment.json").read_text())
    assert [len(p["faces"]) for p in doc["photos"]] == [2, 1] and doc["failed"] == []
    face = doc["photos"][0]["faces"][0]
    crop = load_photo(out / face["crop"])
    assert crop.shape == (128, 128, 3)
    assert len(face["landmarks"]) == 68 and np.array(face["crop_to_photo"]).shape == (3, 3)
    # the JSON transform maps crop landmarks back onto photo landmarks
    m = np.array(face["crop_to_photo"])
    assert np.allclose(apply_transform(m, np.array(face["landmarks_in_crop"])), face["landmarks"], atol=0.01)
    rc, _, err = _run_cli(argv, capsys)  # no silent overwrite
    assert rc == 2 and "--overwrite" in err
    rc, _, err = _run_cli(argv + ["--overwrite"], capsys)
    assert rc == 0, err


def test_cli_subprocess_folder_with_good_and_bad_files(tmp_path):
    """Through the installed console script: good photos are processed, bad ones reported at the end."""
    folder = tmp_path / "in"
    folder.mkdir()
    bad = _bad_inputs(folder)
    bad["missing"] = None
    (folder / "good.jpg").write_bytes((FIX / "fr_obama_240p.jpg").read_bytes())
    exe = Path(sys.executable).with_name("editkit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "editkit.cli"]
    res = subprocess.run(cmd + ["align", str(folder), "-o", str(tmp_path / "out")], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 3, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert (tmp_path / "out" / "good_face0.png").exists()
    doc = json.loads((tmp_path / "out" / "alignment.json").read_text())
    assert [Path(p["photo"]).name for p in doc["photos"]] == ["good.jpg"]
    failed = {Path(f["photo"]).name for f in doc["failed"]}
    assert failed == {p.name for p in bad.values() if p is not None}
    err_lines = res.stderr.strip().splitlines()
    assert all(line.startswith("editkit: error:") for line in err_lines)
    assert len(err_lines) == len(failed) + 1 and "5 of 6 photos failed" in err_lines[-1]
    # a single bad file: one line, exit code 3
    one = subprocess.run(cmd + ["align", str(bad["text"]), "-o", str(tmp_path / "o2")], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert one.returncode == 3 and len(one.stderr.strip().splitlines()) == 1 and "Traceback" not in one.stderr


def test_bad_input_error_classes():
    assert issubclass(NoFaceError, BadInputError)
