"""The ``generated`` render mode: paste-back of generated aligned crops (editkit.render.paste)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from editkit.errors import UsageError
from editkit.photos import load_photo
from editkit.render import paste_back, paste_mask
from inversion.align import align_faces

FIX = Path(__file__).parent / "fixtures" / "align"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def hull_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    return m.astype(bool)


@pytest.mark.parametrize("photo_name", ["dlib_voc_2008_001009.jpg", "fr_obama_240p.jpg", "fa_aflw_test.jpg"])
def test_paste_back_unedited_is_identity(photo_name):
    img = load_photo(FIX / photo_name)
    faces = align_faces(img, size=256)
    out = paste_back(img, [(f, f.image) for f in faces])
    mask = paste_mask(img.shape, faces)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], img[mask == 0])
    inside = mask > 0
    for f in faces:  # every face is inside the mask
        assert inside[hull_mask(f.landmarks, img.shape[:2])].mean() > 0.99
    assert psnr(out[inside], img[inside]) >= 35.0


def test_paste_back_face_cut_by_border_and_edited_crop():
    img = load_photo(FIX / "fr_obama_240p.jpg")
    (face0,) = align_faces(img, size=256)
    cut = np.ascontiguousarray(img[:, int(face0.landmarks[:, 0].min()) + 15:])  # face cut by the left edge
    (face,) = align_faces(cut, size=256)
    out = paste_back(cut, [(face, face.image)])
    mask = paste_mask(cut.shape, [face])
    assert out.shape == cut.shape
    assert np.array_equal(out[mask == 0], cut[mask == 0])
    assert psnr(out[mask > 0], cut[mask > 0]) >= 35.0
    # an edited 64-px crop (colours inverted) changes the face and nothing outside the mask
    edited = cv2.resize(255 - face.image, (64, 64), interpolation=cv2.INTER_AREA)
    out2 = paste_back(cut, [(face, edited)])
    assert np.array_equal(out2[mask == 0], cut[mask == 0])
    full = mask >= 0.99
    assert full.sum() > 500 and np.abs(out2[full].astype(int) - (255 - cut[full].astype(int))).mean() < 25
    # near the border the edit fades out only where the recipe's padding blur touched the crop
    core = hull_mask(face.landmarks[[36, 45, 54, 48]], cut.shape[:2])
    assert np.abs(out2[core].astype(int) - cut[core]).mean() > 40
    assert mask[:, 0].max() == 0 and mask[:, 12:30].max() > 0.5
    with pytest.raises(UsageError):
        paste_back(cut[:-1], [(face, face.image)])
