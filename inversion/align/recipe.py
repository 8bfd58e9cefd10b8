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


def _reflect_pad_blend(img: Image.Image, pad: np.ndarray, side: float) -> tuple[Image.Image, tuple]:
    """Reflect-pad by ``pad`` (left, top, right, bottom) and blend the padding into a blur and the median.

    Returns the padded image and, in its pixels, the box of the first/last real pixels and the box
    inside which the blur left real pixels untouched (its weight reaches 0 at 4/3 of the pad width).
    """
    left, top, right, bottom = pad
    arr = np.pad(np.asarray(img, dtype=np.float32), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    h, w = arr.shape[:2]
    cols = np.arange(w)[None, :, None]
    rows = np.arange(h)[:, None, None]
    # 0 on the first real pixel, rising to 1 at the outer edge of the padding, negative inside
    out_x = 1.0 - np.minimum(np.float32(cols) / left, np.float32(w - 1 - cols) / right)
    out_y = 1.0 - np.minimum(np.float32(rows) / top, np.float32(h - 1 - rows) / bottom)
    outside = np.maximum(out_x, out_y)
    sigma = side * 0.02
    arr += (scipy.ndimage.gaussian_filter(arr, [sigma, sigma, 0]) - arr) * np.clip(outside * 3.0 + 1.0, 0.0, 1.0)
    arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(outside, 0.0, 1.0)
    data = np.array([left, top, w - 1 - right, h - 1 - bottom], dtype=np.float64)
    clean = np.array([left * 4 / 3, top * 4 / 3, w - 1 - right * 4 / 3, h - 1 - bottom * 4 / 3])
    return Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB"), (data, clean)


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
    side = np.hypot(*(quad[3] - quad[0]))
    scale = np.ones(2)  # original pixels per working pixel, per axis
    offset = np.zeros(2)  # working index + offset = (shrunk) original index

    # 1. Faces much larger than the output are first reduced by an integer factor.
    factor = int(np.floor(side / size * 0.5))
    if factor > 1:
        new_size = tuple(int(np.rint(v / factor)) for v in img.size)
        scale = np.array([image.shape[1] / new_size[0], image.shape[0] / new_size[1]])
        img = img.resize(new_size, _LANCZOS)
        quad /= factor
        side /= factor

    # 2. Keep only the quad's bounding box plus a margin of a tenth of its side.
    margin = max(int(np.rint(side * 0.1)), 3)
    x0, y0 = np.floor(quad.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + margin
    box = (max(x0, 0), max(y0, 0), min(x1, img.size[0]), min(y1, img.size[1]))
    if box[2] - box[0] < img.size[0] or box[3] - box[1] < img.size[1]:
        img = img.crop(box)
        quad -= box[:2]
        offset += box[:2]

    # 3. Where the quad (plus margin) leaves the photo, pad by reflection and fade to blur and median.
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    need = (max(margin - x0, 0), max(margin - y0, 0), max(x1 - img.size[0] + margin, 0), max(y1 - img.size[1] + margin, 0))
    ramp = None
    if padding and max(need) > margin - 4:
        pad = np.maximum(need, int(np.rint(side * 0.3)))  # left, top, right, bottom
        img, ramp_pad = _reflect_pad_blend(img, pad, side)
        quad += pad[:2]
        offset -= pad[:2]
        ramp = tuple(tuple(float(v) for v in ((b.reshape(2, 2) + offset + 0.5) * scale - 0.5).ravel())
                     for b in ramp_pad)

    # High-resolution quad transform, then downsample.
    transform_size = int(size) * int(supersample)
    out = img.transform((transform_size, transform_size), Image.Transform.QUAD, (quad + 0.5).flatten(), _BILINEAR)
    if size < transform_size:
        out = out.resize((size, size), _LANCZOS)
    # Working index i is original continuous (i + offset + 0.5) * scale.
    effective = (quad + offset + 0.5) * scale - 0.5
    return np.asarray(out, dtype=np.uint8), effective, ramp
