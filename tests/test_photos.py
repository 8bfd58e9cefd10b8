"""Photo loading/saving: formats, EXIF orientation, modes, decompression-bomb limit, bad files."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editkit.errors import BadInputError, UsageError
from editkit.photos import load_photo, max_pixels, read_photo, save_image, to_rgb_array

FIX = Path(__file__).parent / "fixtures" / "align"


def _gradient(w: int = 40, h: int = 30) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 256], -1).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp", ".jpg"])
def test_formats_load_as_rgb_uint8(tmp_path, suffix):
    arr = _gradient()
    path = tmp_path / f"img{suffix}"
    kw = {"lossless": True} if suffix == ".webp" else ({"quality": 100} if suffix == ".jpg" else {})
    Image.fromarray(arr).save(path, **kw)
    out = load_photo(path)
    assert out.dtype == np.uint8 and out.shape == (30, 40, 3)
    tol = 12 if suffix == ".jpg" else 0
    assert np.abs(out.astype(int) - arr).max() <= tol


def test_exif_orientation_is_applied_and_reset_on_save(tmp_path):
    arr = _gradient(40, 30)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW to display
    exif[0x010F] = "editkit-test-camera"
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif.tobytes(), quality=100)
    photo = read_photo(path)
    assert photo.array.shape == (40, 30, 3)  # displayed upright: width and height swapped
    expected = np.asarray(Image.fromarray(arr).transpose(Image.Transpose.ROTATE_270))
    assert np.abs(photo.array.astype(int) - expected).max() <= 12
    out = tmp_path / "out.jpg"
    save_image(out, photo.array, like=photo)
    saved = Image.open(out)
    assert saved.getexif().get(0x0112) == 1 and saved.getexif().get(0x010F) == "editkit-test-camera"
    assert load_photo(out).shape == (40, 30, 3)


def test_rgba_composited_on_white_and_other_modes():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0
    rgba[0, 0, 3] = 255
    out = to_rgb_array(Image.fromarray(rgba))
    assert tuple(out[0, 0]) == (200, 0, 0) and tuple(out[1, 1]) == (255, 255, 255)
    gray = to_rgb_array(Image.fromarray(np.full((3, 3), 77, np.uint8)))
    assert gray.shape == (3, 3, 3) and (gray == 77).all()
    pal = Image.fromarray(_gradient()).convert("P")
    assert to_rgb_array(pal).shape == (30, 40, 3)
    cmyk = to_rgb_array(Image.fromarray(_gradient()).convert("CMYK"))
    assert np.abs(cmyk.astype(int) - _gradient()).max() <= 2
    deep = Image.fromarray(np.full((2, 2), 65535, np.uint16))
    assert deep.mode.startswith("I")
    assert (to_rgb_array(deep) == 255).all()
    deep_mid = Image.fromarray(np.full((2, 2), 32768, np.uint16))
    assert (to_rgb_array(deep_mid) == 128).all()
    la = Image.fromarray(np.stack([np.full((2, 2), 10, np.uint8), np.zeros((2, 2), np.uint8)], -1))
    assert la.mode == "LA"
    assert (to_rgb_array(la) == 255).all()


def test_real_rgba_png_fixture():
    arr = load_photo(FIX / "fr_obama_rgba.png")
    assert arr.shape == (1200, 626, 3) and arr.dtype == np.uint8


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.jpg"
    Image.fromarray(_gradient(200, 150)).save(good, quality=90)
    files = {"empty": tmp_path / "empty.jpg", "truncated": tmp_path / "trunc.jpg",
             "text": tmp_path / "notes.jpg", "folder": tmp_path / "a_folder.png",
             "missing": tmp_path / "missing.png", "huge": tmp_path / "bomb.png",
             "truncated_png": tmp_path / "trunc.png"}
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(good.read_bytes()[:400])
    files["text"].write_text("this is not an image\n")
    files["folder"].mkdir()
    files["huge"].write_bytes(_png_header_only(40000, 40000))
    png = tmp_path / "full.png"
    Image.fromarray(_gradient(200, 150)).save(png)
    files["truncated_png"].write_bytes(png.read_bytes()[: len(png.read_bytes()) // 2])
    return files


@pytest.mark.parametrize("case,needle", [
    ("empty", "empty file"), ("truncated", "truncated"), ("text", "not an image"), ("folder", "folder"),
    ("missing", "no such file"), ("huge", "too large"), ("truncated_png", "truncated"),
])
def test_bad_inputs_raise_one_line_bad_input_error(tmp_path, case, needle):
    path = _bad_files(tmp_path)[case]
    with pytest.raises(BadInputError) as ei:
        load_photo(path)
    msg = str(ei.value)
    assert needle in msg.lower() and str(path) in msg and "\n" not in msg


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    p = tmp_path / "secret.png"
    Image.fromarray(_gradient()).save(p)
    p.chmod(0)
    try:
        with pytest.raises(BadInputError, match="permission denied"):
            load_photo(p)
    finally:
        p.chmod(0o644)


def test_pixel_limit_env(tmp_path, monkeypatch):
    p = tmp_path / "img.png"
    Image.fromarray(_gradient(40, 30)).save(p)
    monkeypatch.setenv("EDITKIT_MAX_PIXELS", "1000")
    assert max_pixels() == 1000
    with pytest.raises(BadInputError, match="too large"):
        load_photo(p)
    monkeypatch.setenv("EDITKIT_MAX_PIXELS", "lots")
    with pytest.raises(UsageError):
        load_photo(p)


def test_save_image_atomic_formats_and_errors(tmp_path):
    arr = _gradient()
    for suffix in (".png", ".jpg", ".webp", ".bmp", ".tif"):
        out = save_image(tmp_path / f"o{suffix}", arr)
        assert out.exists() and load_photo(out).shape == arr.shape
    assert np.array_equal(load_photo(tmp_path / "o.png"), arr)
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]  # no temporary files left
    with pytest.raises(UsageError, match="unsupported output format"):
        save_image(tmp_path / "o.xyz", arr)
    with pytest.raises(UsageError, match="uint8"):
        save_image(tmp_path / "o2.png", arr.astype(np.float32))


def test_16_bit_png_and_tiff(tmp_path):
    import cv2

    a = np.zeros((4, 5, 3), np.uint16)
    a[..., 0], a[..., 1], a[..., 2] = 65535, 32768, 256
    cv2.imwrite(str(tmp_path / "rgb16.png"), a[..., ::-1])
    cv2.imwrite(str(tmp_path / "rgb16.tif"), a[..., ::-1])
    cv2.imwrite(str(tmp_path / "gray16.png"), a[..., 1])
    for name in ("rgb16.png", "rgb16.tif"):
        assert tuple(load_photo(tmp_path / name)[0, 0]) == (255, 128, 1)
    assert tuple(load_photo(tmp_path / "gray16.png")[0, 0]) == (128, 128, 128)


def test_colour_profile_kept_on_save(tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "icc.png"
    Image.fromarray(_gradient()).save(src, icc_profile=icc)
    photo = read_photo(src)
    assert photo.icc_profile == icc
    for suffix in (".png", ".jpg"):
        out = save_image(tmp_path / f"out{suffix}", photo.array, like=photo)
        assert Image.open(out).info.get("icc_profile") == icc
