"""The ``transfer`` render mode: known synthetic changes land where they should, at the photo's resolution."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from editkit.errors import UsageError
from editkit.render import TransferSettings, native_crop, native_size, paste_mask, render_faces, transfer_back
from editkit.render.paste import crop_to_photo
from editkit.render.transfer import change_fields
from inversion.align import align_face

FIX = Path(__file__).parent / "fixtures" / "align"
R = 32  # generator resolution of the synthetic changes
C0 = np.array([16.0, 18.0])  # where the synthetic change sits in the crop (the nose)


@pytest.fixture(scope="module")
def face_and_grid():
    """A 640×600 'photo' whose face (FFHQ landmarks ×2) is aligned into a 32-px crop; photo pixel -> crop coords."""
    lm = np.load(FIX / "ffhq_00000_lm68.npy") * 2.0 + [60.0, 40.0]
    h, w = 600, 640
    face = align_face(np.full((h, w, 3), 128, np.uint8), lm, template="ffhq", size=R)
    inv = np.linalg.inv(crop_to_photo(face, R))
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    u = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
    v = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
    return face, u, v


def _texture(shape, seed=0) -> np.ndarray:
    """Fine photo-resolution texture (what a 32-px generator cannot represent): noise correlated over ~1 px
    like a camera's (per-pixel white noise loses detail under any sub-pixel resampling)."""
    noise = np.random.default_rng(seed).normal(0, 16, shape).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 0.8)


def _blob(u, v, centre, sigma=2.5, depth=90.0, base=150.0):
    return base - depth * np.exp(-((u - centre[0]) ** 2 + (v - centre[1]) ** 2) / (2 * sigma**2))


def _crop_image(fn) -> np.ndarray:
    yy, xx = np.mgrid[0:R, 0:R].astype(np.float64)
    return np.repeat(np.clip(np.rint(fn(xx, yy)), 0, 255).astype(np.uint8)[..., None], 3, 2)


def _sharpness(img: np.ndarray, mask: np.ndarray) -> float:
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(g, cv2.CV_64F)[mask].var())


def test_shifted_blob_moves_the_photos_own_blob(face_and_grid):
    face, u, v = face_and_grid
    shift = np.array([2.0, 0.0])  # generator pixels
    photo = np.clip(_blob(u, v, C0)[..., None] + _texture(u.shape + (3,)), 0, 255).astype(np.uint8)
    rec = _crop_image(lambda x, y: _blob(x, y, C0))
    edi = _crop_image(lambda x, y: _blob(x, y, C0 + shift))
    out, mask = transfer_back(photo, [(face, rec, edi)])
    a = crop_to_photo(face, R)[:2, :2]
    expected = a @ shift  # photo pixels
    assert np.hypot(*expected) > 20  # the photo's face is much larger than the generator's

    def centroid(img):
        dark = np.clip(140.0 - cv2.GaussianBlur(img[..., 0].astype(np.float32), (0, 0), 3), 0, None)
        dark[np.hypot(u - C0[0], v - C0[1]) > 7] = 0
        ys, xs = np.nonzero(dark)
        wts = dark[ys, xs]
        return np.array([(xs * wts).sum(), (ys * wts).sum()]) / wts.sum()

    moved = centroid(out) - centroid(photo)
    assert np.hypot(*(moved - expected)) < 0.15 * np.hypot(*expected), (moved, expected)
    # the photo's own texture moved with it, not replaced by the generator's smooth blob
    core = (mask > 0.99) & (np.hypot(u - C0[0], v - C0[1]) < 8)
    assert core.sum() > 2000
    assert _sharpness(out, core) > 0.9 * _sharpness(photo, core)


def test_brightness_change_lands_at_the_photo_resolution(face_and_grid):
    face, u, v = face_and_grid
    tex = _texture(u.shape + (3,), seed=1)
    photo = np.clip(110.0 + tex, 0, 255).astype(np.uint8)

    def disk(x, y):
        r = np.hypot(x - C0[0], y - C0[1])
        return 110.0 + 25.0 * np.clip(6.0 - r, 0.0, 1.0)

    rec = _crop_image(lambda x, y: 110.0 + 0 * x)
    edi = _crop_image(disk)
    out, mask = transfer_back(photo, [(face, rec, edi)])
    r = np.hypot(u - C0[0], v - C0[1])
    centre = r < 3.5
    gain = out[centre].astype(float).mean() - photo[centre].astype(float).mean()
    assert 18 < gain < 30, gain  # +25 grey levels where the generator brightened
    far = (r > 11) & (r < 14)
    assert abs(out[far].astype(float).mean() - photo[far].astype(float).mean()) < 1.0
    # texture kept: the change is smooth (generator resolution), the photo's detail stays
    hp = lambda img: img[..., 1].astype(np.float32) - cv2.GaussianBlur(img[..., 1].astype(np.float32), (0, 0), 2)
    assert np.corrcoef(hp(out)[centre], hp(photo)[centre])[0, 1] > 0.97
    assert _sharpness(out, centre) > 0.9 * _sharpness(photo, centre)


def test_nothing_outside_the_mask_or_the_face_region_changes(face_and_grid):
    face, u, v = face_and_grid
    photo = np.clip(128 + _texture(u.shape + (3,), seed=2), 0, 255).astype(np.uint8)
    rec = _crop_image(lambda x, y: 100 + 2 * x)
    edi = _crop_image(lambda x, y: 100 + 2 * x + 40 * (x > 4))  # a change reaching well outside the face
    out, mask = transfer_back(photo, [(face, rec, edi)])
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert mask.shape == photo.shape[:2] and (mask > 0).any()
    assert np.array_equal(out[mask == 0], photo[mask == 0])
    assert not (mask[paste_mask(photo.shape, [face]) == 0] > 0).any()  # the change stays inside the face region
    assert (out != photo).any()


def test_no_change_returns_the_photo_and_far_out_changes_are_clipped(face_and_grid):
    face, u, v = face_and_grid
    photo = np.clip(128 + _texture(u.shape + (3,), seed=3), 0, 255).astype(np.uint8)
    rec = _crop_image(lambda x, y: 90 + 3 * y)
    out, mask = transfer_back(photo, [(face, rec, rec.copy())])
    assert np.array_equal(out, photo) and not mask.any()
    # an edit that paints the face white (a far-out strength) is limited, not a white disk
    white = np.full_like(rec, 255)
    out, mask = transfer_back(photo, [(face, rec, white)])
    inside = mask > 0.99
    assert inside.sum() > 5000
    lab0 = cv2.cvtColor(photo, cv2.COLOR_RGB2Lab).astype(float)[..., 0] * 100 / 255
    lab1 = cv2.cvtColor(out, cv2.COLOR_RGB2Lab).astype(float)[..., 0] * 100 / 255
    assert (lab1 - lab0)[inside].max() <= TransferSettings().max_light + 1.5
    assert (out[inside] == 255).all(axis=-1).mean() < 0.01


def test_fields_render_modes_and_native_crop(face_and_grid):
    face, u, v = face_and_grid
    rec = _crop_image(lambda x, y: _blob(x, y, C0))
    edi = _crop_image(lambda x, y: _blob(x, y, C0 + [0.0, 1.5]))
    f = change_fields(rec, edi)
    assert f.size == TransferSettings().field_size and not f.empty
    peak = np.unravel_index(np.argmax(np.hypot(f.flow[..., 0], f.flow[..., 1]) * f.mask), f.mask.shape)
    scale = f.size / R
    assert np.hypot(peak[1] / scale - C0[0], peak[0] / scale - C0[1] - 0.75) < 5  # the motion is at the blob
    dy = f.flow[int((C0[1] + 1.5) * scale), int(C0[0] * scale), 1] / scale
    assert -2.0 < dy < -0.8  # backward flow: the edit at x shows the reconstruction 1.5 px above
    photo = np.clip(_blob(u, v, C0)[..., None] + _texture(u.shape + (3,), seed=4), 0, 255).astype(np.uint8)
    gen, gmask = render_faces(photo, [(face, rec, edi)], "generated")
    assert np.array_equal(gen[gmask == 0], photo[gmask == 0])
    with pytest.raises(UsageError, match="render mode"):
        render_faces(photo, [(face, rec, edi)], "paint")
    with pytest.raises(UsageError, match="flow method"):
        TransferSettings(flow="lucas-kanade")
    with pytest.raises(UsageError, match="cannot render into"):
        transfer_back(photo[:-2], [(face, rec, edi)])
    crop = native_crop(photo, face)
    assert crop.shape == (native_size(face), native_size(face), 3) and native_size(face) > 8 * R


# --- through the Editor, on real photos ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def editor(tmp_path_factory):
    import editkit
    from product_helpers import build_tiny_bundle

    return editkit.Editor(build_tiny_bundle(tmp_path_factory.mktemp("tr") / "tiny"), method="encoder",
                          analyze_faces=False)


def test_editor_strength_zero_returns_the_photo_multi_face(editor):
    from editkit.photos import load_photo

    path = FIX / "dlib_voc_2008_001009.jpg"
    photo = load_photo(path)
    res0 = editor.edit(path, attr=0, strength=0.0)
    assert len(res0.faces) == 2 and res0.render == "transfer"
    assert np.abs(res0.image.astype(int) - photo.astype(int)).max() <= 1
    res = editor.edit(path, attr=[0, 1], strength=[2.0, -1.0])
    assert np.array_equal(res.image[res.mask == 0], photo[res.mask == 0])  # nothing outside the change's mask
    for f in res.faces:  # every face changed, inside its own region
        region = paste_mask(photo.shape, [f.face]) > 0.5
        assert np.abs(res.image[region].astype(int) - photo[region].astype(int)).mean() > 0.5
    assert not (res.mask[paste_mask(photo.shape, [f.face for f in res.faces]) == 0] > 0).any()
    gen = editor.edit(path, attr=0, strength=0.0, render="generated")  # the old paste-back is not identity
    assert np.abs(gen.image.astype(int) - photo.astype(int)).max() > 10
