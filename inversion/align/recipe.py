"""The FFHQ alignment recipe, parameterised by an :class:`AlignmentTemplate`.

Reimplements NVlabs/ffhq-dataset ``recreate_aligned_images`` step by step (oriented quad from the
eye and mouth landmarks; shrink for large faces; crop with a border; reflect padding blended with
a blur and the median colour where the quad leaves the photo; PIL QUAD transform at
``size × supersample``; LANCZOS downsample), so that template ``ffhq`` reproduces the official
crops. All coordinates are pixel-index coordinates (pixel ``i`` has its centre at ``i``).
"""
from __future__ import annotations

import numpy as np
import scipy.ndimage
from PIL import Image

from .templates import AlignmentTemplate

_LANCZOS = Image.Resampling.LANCZOS
_BILINEAR = Image.Resampling.BILINEAR


def face_quad(landmarks: np.ndarray, template: AlignmentTemplate) -> np.ndarray:
    """The oriented crop square as 4×2 corners (NW, SW, SE, NE) in photo pixels."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68×2 landmarks, got {lm.shape}")
    eye_l = lm[36:42].mean(axis=0)
    eye_r = lm[42:48].mean(axis=0)
    eye_avg = (eye_l + eye_r) * 0.5
    eye_to_eye = eye_r - eye_l
    mouth_avg = (lm[48] + lm[54]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    if template.rotate:
        # x axis: eye direction combined with the eye-to-mouth direction turned by 90 degrees
        x = eye_to_eye + np.array([eye_to_mouth[1], -eye_to_mouth[0]])
        x = x / np.hypot(*x)
    else:
        x = np.array([1.0, 0.0])
    x = x * max(np.hypot(*eye_to_eye) * template.eye_scale, np.hypot(*eye_to_mouth) * template.mouth_scale)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * template.centre_shift
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def quad_to_matrix(quad: np.ndarray, size: int) -> np.ndarray:
    """3×3 matrix mapping crop pixels (of a ``size``-pixel crop) to photo pixels for this quad."""
    q = np.asarray(quad, dtype=np.float64)
    ax = (q[3] - q[0]) / size  # along the crop's x axis (NW -> NE)
    ay = (q[1] - q[0]) / size  # along the crop's y axis (NW -> SW)
    t = q[0] + 0.5 * (ax + ay)
    return np.array([[ax[0], ay[0], t[0]], [ax[1], ay[1], t[1]], [0.0, 0.0, 1.0]])


def warp_quad(image: np.ndarray, quad: np.ndarray, size: int, supersample: int = 4,
              padding: bool = True) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    """Cut the oriented square ``quad`` out of ``image`` as a ``size``×``size`` RGB crop.

    Returns ``(crop, effective_quad, blur_ramp)``: ``effective_quad`` is the quad the crop really
    samples (it differs from ``quad`` by the half-pixel offset of the recipe's shrink step);
    ``blur_ramp`` = (data_box, clean_box), two (x0, y0, x1, y1) boxes in photo pixels: the recipe
    also blurs real pixels near the edges of its working image, fully at ``data_box``'s edges and
    fading linearly to nothing at ``clean_box``'s edges (None when no padding was needed).
    """
    img = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB")
    quad = np.asarray(quad, dtype=np.float64).copy()
    transform_size = int(size) * int(supersample)
    qsize = np.hypot(*(quad[3] - quad[0]))
    scale = np.array([1.0, 1.0])  # original pixels per working pixel, per axis
    offset = np.array([0.0, 0.0])  # working-index -> original-index shift

    # Shrink very large faces first (box filter of the official recipe, here LANCZOS as Pillow's ANTIALIAS).
    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        rsize = (int(np.rint(img.size[0] / shrink)), int(np.rint(img.size[1] / shrink)))
        scale = np.array([image.shape[1] / rsize[0], image.shape[0] / rsize[1]])
        img = img.resize(rsize, _LANCZOS)
        quad /= shrink
        qsize /= shrink

    # Crop to the quad plus a border.
    border = max(int(np.rint(qsize * 0.1)), 3)
    lo = np.floor(quad.min(axis=0)).astype(int)
    hi = np.ceil(quad.max(axis=0)).astype(int)
    crop = (max(lo[0] - border, 0), max(lo[1] - border, 0),
            min(hi[0] + border, img.size[0]), min(hi[1] + border, img.size[1]))
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad -= crop[0:2]
        offset += crop[0:2]

    # Pad where the quad leaves the photo: reflect, then blend towards a blur and the median colour.
    lo = np.floor(quad.min(axis=0)).astype(int)
    hi = np.ceil(quad.max(axis=0)).astype(int)
    pad = (max(-lo[0] + border, 0), max(-lo[1] + border, 0),
           max(hi[0] - img.size[0] + border, 0), max(hi[1] - img.size[1] + border, 0))
    valid = None
    if padding and max(pad) > border - 4:
        pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
        arr = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
        h, w, _ = arr.shape
        yy, xx, _ = np.ogrid[:h, :w, :1]
        mask = np.maximum(1.0 - np.minimum(np.float32(xx) / pad[0], np.float32(w - 1 - xx) / pad[2]),
                          1.0 - np.minimum(np.float32(yy) / pad[1], np.float32(h - 1 - yy) / pad[3]))
        blur = qsize * 0.02
        arr += (scipy.ndimage.gaussian_filter(arr, [blur, blur, 0]) - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
        img = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB")
        quad += pad[:2]
        offset -= pad[:2]
        # blur weight = clip(3 * mask + 1): 1 at the first real pixel, 0 from 4/3 of the pad inwards
        def to_photo(pts: np.ndarray) -> list[float]:
            return [float(v) for v in ((pts.reshape(2, 2) + offset + 0.5) * scale - 0.5).ravel()]

        data = to_photo(np.array([pad[0], pad[1], w - 1 - pad[2], h - 1 - pad[3]], np.float64))
        clean = to_photo(np.array([pad[0] * 4 / 3, pad[1] * 4 / 3, w - 1 - pad[2] * 4 / 3, h - 1 - pad[3] * 4 / 3]))
        valid = (tuple(data), tuple(clean))

    # High-resolution quad transform, then downsample.
    out = img.transform((transform_size, transform_size), Image.Transform.QUAD, (quad + 0.5).flatten(), _BILINEAR)
    if size < transform_size:
        out = out.resize((size, size), _LANCZOS)
    # Working index i is original continuous (i + offset + 0.5) * scale.
    effective = (quad + offset + 0.5) * scale - 0.5
    return np.asarray(out, dtype=np.uint8), effective, valid
