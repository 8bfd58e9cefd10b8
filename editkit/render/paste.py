"""Paste generated aligned faces back into the original photo (inverse transform + feathered mask).

This is the ``generated`` render mode: the face becomes the generator's picture of it. The
``transfer`` mode (:mod:`editkit.render.transfer`) keeps the photo's pixels instead.

The mask is the convex hull of the face (jaw line plus the eyebrows raised to cover the forehead),
dilated and blurred, and limited to the part of the photo the crop actually covers, so only the face
changes and no seam shows. Pixels where the mask is zero are returned bit-identical.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import UsageError

if TYPE_CHECKING:  # faces are duck-typed: anything with the attributes of inversion.align.AlignedFace
    from inversion.align import AlignedFace


def face_scale(landmarks: np.ndarray) -> float:
    span = landmarks.max(axis=0) - landmarks.min(axis=0)
    return float(max(np.hypot(*span) / np.sqrt(2.0), 4.0))


def _hull_points(face: AlignedFace) -> np.ndarray:
    lm = np.asarray(face.landmarks, dtype=np.float64)
    eyes = (lm[36:42].mean(axis=0) + lm[42:48].mean(axis=0)) * 0.5
    mouth = (lm[48] + lm[54]) * 0.5
    up = eyes - mouth
    brows = lm[17:27] + up * 0.7  # forehead: eyebrows raised by ~0.7 eye-to-mouth distances
    return np.concatenate([lm[0:17], lm[17:27], brows])


def face_roi(face: AlignedFace, shape: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    pts = np.concatenate([face.quad, _hull_points(face)])
    lo = np.floor(pts.min(axis=0) - margin).astype(int)
    hi = np.ceil(pts.max(axis=0) + margin).astype(int) + 1
    h, w = shape
    return max(lo[0], 0), max(lo[1], 0), min(hi[0], w), min(hi[1], h)


def crop_to_photo(face: AlignedFace, crop_size: int) -> np.ndarray:
    """3×3 matrix from pixels of a ``crop_size`` crop (any size) to photo pixels."""
    r = face.size / crop_size
    rescale = np.array([[r, 0.0, 0.5 * r - 0.5], [0.0, r, 0.5 * r - 0.5], [0.0, 0.0, 1.0]])
    return face.transform @ rescale


def _unblurred_weight(face: AlignedFace, roi: tuple[int, int, int, int]) -> np.ndarray | float:
    """1 where the crop shows real photo pixels, fading to 0 where the recipe's padding blur altered them."""
    if not face.blur_ramp:
        return 1.0
    (d0x, d0y, d1x, d1y), (c0x, c0y, c1x, c1y) = face.blur_ramp
    x0, y0, x1, y1 = roi
    xs = np.arange(x0, x1, dtype=np.float64)
    ys = np.arange(y0, y1, dtype=np.float64)

    def ramp(v: np.ndarray, d0: float, c0: float, c1: float, d1: float) -> np.ndarray:
        lo = np.clip((v - d0) / max(c0 - d0, 1e-6), 0.0, 1.0)
        hi = np.clip((d1 - v) / max(d1 - c1, 1e-6), 0.0, 1.0)
        return np.minimum(lo, hi)

    wx = ramp(xs, d0x, c0x, c1x, d1x)
    wy = ramp(ys, d0y, c0y, c1y, d1y)
    return np.minimum(wy[:, None], wx[None, :]).astype(np.float32)


def face_mask(face: AlignedFace, shape: tuple[int, int], crop_size: int | None = None,
              roi: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Feathered float32 mask in [0, 1] of the face region, for the photo (or ``roi`` of it)."""
    h, w = shape
    x0, y0, x1, y1 = roi if roi is not None else (0, 0, w, h)
    rw, rh = x1 - x0, y1 - y0
    fs = face_scale(np.asarray(face.landmarks))
    radius = max(int(round(0.06 * fs)), 1)
    sigma = max(0.05 * fs, 1.0)
    hull = cv2.convexHull(np.round((_hull_points(face) - [x0, y0]) * 16).astype(np.int32))
    mask = np.zeros((rh, rw), np.uint8)
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA, shift=4)
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    mask = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)
    # Only where the crop has real data: its coverage, shrunk by 2 sigma and blurred alike.
    size = crop_size or face.size
    m = crop_to_photo(face, size)
    m[:2, 2] -= [x0, y0]
    cover = cv2.warpAffine(np.ones((size, size), np.float32), m[:2], (rw, rh), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    cover = cover > 0.999
    cover = cv2.erode(cover.astype(np.uint8),
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (4 * int(sigma) + 1, 4 * int(sigma) + 1)))
    cover = cv2.GaussianBlur(cover.astype(np.float32), (0, 0), sigma)
    mask = np.clip(mask * cover * _unblurred_weight(face, (x0, y0, x1, y1)), 0.0, 1.0)
    mask[mask < 1.0 / 512.0] = 0.0
    return mask


def paste_back(photo: np.ndarray, faces: Iterable[tuple[AlignedFace, np.ndarray]]) -> np.ndarray:
    """Return a copy of ``photo`` with each ``(aligned_face, edited_crop)`` blended back in.

    ``edited_crop`` is a square H×W×3 uint8 RGB crop of the aligned face (any size: it is mapped
    through the face's crop-to-photo transform). Faces near the border and several faces per
    photo are handled; the result has the photo's size.
    """
    out = np.array(photo, dtype=np.uint8, copy=True)
    if out.ndim != 3 or out.shape[2] != 3:
        raise UsageError(f"paste_back expects an H×W×3 uint8 photo, got shape {out.shape}")
    h, w = out.shape[:2]
    for face, crop in faces:
        crop = np.asarray(crop)
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] != crop.shape[1]:
            raise UsageError(f"edited crop must be a square H×W×3 uint8 image, got {crop.dtype} {crop.shape}")
        if face.photo_size != (w, h):
            raise UsageError(f"face was aligned on a {face.photo_size[0]}x{face.photo_size[1]} photo, "
                             f"cannot paste into {w}x{h}")
        size = crop.shape[0]
        fs = face_scale(np.asarray(face.landmarks))
        roi = face_roi(face, (h, w), margin=0.3 * fs)
        x0, y0, x1, y1 = roi
        if x1 <= x0 or y1 <= y0:
            continue
        m = crop_to_photo(face, size)
        pixels_per_crop_px = float(np.sqrt(abs(np.linalg.det(m[:2, :2]))))
        src = crop
        if pixels_per_crop_px < 1 / 3:  # strong shrinking: antialias down to 2 crop px per photo px first
            small = max(int(round(size * pixels_per_crop_px * 2)), 2)
            src = cv2.resize(crop, (small, small), interpolation=cv2.INTER_AREA)
            m = crop_to_photo(face, small)
        m[:2, 2] -= [x0, y0]
        warped = cv2.warpAffine(src, m[:2], (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC,
                                borderMode=cv2.BORDER_REPLICATE)
        mask = face_mask(face, (h, w), crop_size=size, roi=roi)[..., None]
        region = out[y0:y1, x0:x1].astype(np.float32)
        blended = region + (warped.astype(np.float32) - region) * mask
        out[y0:y1, x0:x1] = np.where(mask > 0, np.clip(np.rint(blended), 0, 255), region).astype(np.uint8)
    return out


def paste_mask(photo_shape: tuple[int, ...], faces: Iterable[AlignedFace]) -> np.ndarray:
    """The combined paste-back mask (float32 H×W in [0, 1]) of ``faces`` on a photo of this shape."""
    h, w = photo_shape[:2]
    total = np.zeros((h, w), np.float32)
    for face in faces:
        fs = face_scale(np.asarray(face.landmarks))
        x0, y0, x1, y1 = face_roi(face, (h, w), margin=0.3 * fs)
        if x1 > x0 and y1 > y0:
            sub = face_mask(face, (h, w), roi=(x0, y0, x1, y1))
            total[y0:y1, x0:x1] = np.maximum(total[y0:y1, x0:x1], sub)
    return total
