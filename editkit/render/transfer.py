"""The ``transfer`` render mode: carry only the edit's change onto the photo's own pixels.

The generator sees a face at its own (often low) resolution; the photo has the face at its own.
Pasting the generated face back replaces a sharp face with a blurred reconstruction of someone
slightly different. Instead, the difference between the reconstruction ``G(w_inv)`` and the edit
``G(w_edit)`` is split in two and applied to the photo:

* geometry: a dense optical flow from the edit to the reconstruction (OpenCV DIS by default,
  chosen over Farneback in ``benchmarks/flow_choice.py``) warps the photo's own face pixels;
* appearance: what the warp does not explain (``G(w_edit) - warp(G(w_inv))``) is converted to
  CIE L*a*b*, low-pass filtered to the generator's true resolution (chroma more strongly than
  lightness, so generator colour noise does not tint the face), soft-clipped, and added.

Both live in the aligned crop's coordinates; every photo pixel of the face region is mapped into
the crop through the face's crop-to-photo transform, so the photo is resampled once, at its own
resolution (equivalent to aligning at the face's native size and mapping back, without the
second interpolation). The change's own mask (where the flow or the residual is significant,
feathered) times the face region decides where anything moves; elsewhere the photo is returned
bit-identical, and an edit that changes nothing (strength 0) returns the photo unchanged.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import UsageError
from .paste import crop_to_photo, face_mask, face_roi, face_scale

if TYPE_CHECKING:
    from inversion.align import AlignedFace

FLOW_METHODS = ("dis", "farneback")


@dataclass(frozen=True)
class TransferSettings:
    """How the change is split, filtered, limited and masked (sizes are fractions of the crop side)."""

    flow: str = "dis"  # 'dis' or 'farneback' (see benchmarks/flow_choice.py)
    detail: int | None = None  # the generator's true resolution in pixels (None: its output size)
    field_size: int = 256  # the change fields are computed at this crop size (at least the generator's)
    max_shift: float = 0.08  # largest warp
    max_light: float = 20.0  # largest lightness change (L*, 0..100), soft-clipped
    max_chroma: float = 12.0  # largest a*/b* change, soft-clipped
    light_range: tuple[float, float] = (4.0, 96.0)  # the edit may not push L* beyond these (nor beyond the photo's own)
    light_ratio: float = 0.6  # nor darken a pixel below this fraction of its L*, nor close more of its gap to white
    shift_significant: float = 0.006  # a warp of this size counts fully into the mask
    light_significant: float = 3.0  # L* change that counts fully into the mask
    chroma_significant: float = 4.0
    relative_significant: float = 0.2  # ... or this fraction of the change's 98th percentile, if larger
    feather: float = 0.025  # Gaussian feather of the change mask
    chroma_blur: float = 3.0  # chroma residual blur, in generator pixels (lightness: 0.7)
    flow_smooth: float = 1.5  # flow smoothing, in generator pixels

    def __post_init__(self):
        if self.flow not in FLOW_METHODS:
            raise UsageError(f"unknown flow method '{self.flow}' (choose from {', '.join(FLOW_METHODS)})")


@dataclass
class ChangeFields:
    """The edit's change in crop coordinates at ``size`` px: backward flow (crop px), ΔL*, Δa*b*, mask."""

    flow: np.ndarray  # size×size×2: the edit at x shows the reconstruction at x + flow
    light: np.ndarray  # size×size
    chroma: np.ndarray  # size×size×2
    mask: np.ndarray  # size×size in [0, 1]

    @property
    def size(self) -> int:
        return int(self.mask.shape[0])

    @property
    def empty(self) -> bool:
        return not bool(self.mask.any())


def _lab(rgb01: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb01, dtype=np.float32), cv2.COLOR_RGB2Lab)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(a, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) if sigma > 0.05 else a


def dense_flow(edited_gray: np.ndarray, recon_gray: np.ndarray, method: str = "dis") -> np.ndarray:
    """Backward flow (H×W×2 float32) so that ``recon(x + flow(x)) ≈ edited(x)``; 8-bit grey inputs."""
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(edited_gray, recon_gray, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(edited_gray, recon_gray, None, pyr_scale=0.5, levels=4, winsize=15,
                                            iterations=5, poly_n=5, poly_sigma=1.1, flags=0)
    raise UsageError(f"unknown flow method '{method}' (choose from {', '.join(FLOW_METHODS)})")


def warp(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``image(x + flow(x))`` (borders replicated)."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], interpolation, borderMode=cv2.BORDER_REPLICATE)


def warp_detail_preserving(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Sample ``image`` at (map_x, map_y) without the blur of sub-pixel interpolation.

    The image is split into a base (Gaussian, sigma 1 px) and its fine detail; the base is
    resampled with Lanczos (smooth edges), the detail with nearest neighbour (its pixels are
    copied, so skin and hair texture keep their contrast). Float32 RGB in 0..255 is returned.
    """
    img = image.astype(np.float32)
    base = cv2.GaussianBlur(img, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
    detail = img - base
    wb = cv2.remap(base, map_x, map_y, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
    wd = cv2.remap(detail, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
    return wb + wd


def change_fields(reconstruction: np.ndarray, edited: np.ndarray,
                  settings: TransferSettings | None = None) -> ChangeFields:
    """Split ``edited - reconstruction`` (two R×R×3 uint8 generator images) into warp and residual."""
    st = settings or TransferSettings()
    rec, edi = np.asarray(reconstruction), np.asarray(edited)
    if rec.shape != edi.shape or rec.ndim != 3 or rec.shape[2] != 3 or rec.shape[0] != rec.shape[1]:
        raise UsageError(f"reconstruction and edit must be two square H×W×3 images of one size, got "
                         f"{rec.shape} and {edi.shape}")
    r = rec.shape[0]
    n = max(int(st.field_size), r)
    if np.array_equal(rec, edi):
        z = np.zeros((n, n), np.float32)
        return ChangeFields(np.zeros((n, n, 2), np.float32), z, np.zeros((n, n, 2), np.float32), z.copy())
    detail = float(min(st.detail or r, r))
    gen_px = n / detail  # field pixels per generator pixel of true detail

    def up(img: np.ndarray) -> np.ndarray:
        x = img.astype(np.float32) / 255.0
        x = _blur(x, 0.5 * r / detail - 0.5 if detail < r else 0.0)
        return cv2.resize(x, (n, n), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0) if n != r else x

    rec_n, edi_n = up(rec), up(edi)
    gray = [np.rint(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) * 255).astype(np.uint8) for x in (edi_n, rec_n)]
    flow = dense_flow(gray[0], gray[1], st.flow)
    flow = _blur(flow, st.flow_smooth * gen_px)  # a warp has no structure finer than a few generator pixels
    mag = np.hypot(flow[..., 0], flow[..., 1])
    limit = st.max_shift * n
    flow *= (np.minimum(mag, limit) / np.maximum(mag, 1e-6))[..., None]
    # Keep the flow only where it explains the change: where warping the reconstruction brings it
    # closer to the edit (in flat regions or for pure colour changes, any flow is noise).
    lab_e, lab_r = _lab(edi_n), _lab(rec_n)
    err_none = _blur(np.linalg.norm(lab_e - lab_r, axis=-1), gen_px)
    err_flow = _blur(np.linalg.norm(lab_e - _lab(warp(rec_n, flow)), axis=-1), gen_px)
    conf = np.clip(2.0 * (err_none - err_flow) / np.maximum(err_none, st.light_significant), 0.0, 1.0)
    flow *= _blur(conf.astype(np.float32), st.flow_smooth * gen_px)[..., None]
    d = lab_e - _lab(warp(rec_n, flow))
    light = _blur(d[..., 0], 0.7 * gen_px)
    chroma = _blur(d[..., 1:], st.chroma_blur * gen_px)
    light = st.max_light * np.tanh(light / st.max_light)
    chroma = st.max_chroma * np.tanh(chroma / st.max_chroma)
    parts = [np.hypot(flow[..., 0], flow[..., 1]), np.abs(light), np.hypot(chroma[..., 0], chroma[..., 1])]
    floors = (st.shift_significant * n, st.light_significant, st.chroma_significant)
    # significant: above an absolute floor and above a fraction of the edit's own strong changes
    score = np.maximum.reduce([p / max(f, st.relative_significant * float(np.percentile(p, 98)))
                               for p, f in zip(parts, floors)])
    score = _blur(score.astype(np.float32), st.feather * n * 0.5)
    t = np.clip((score - 0.25) / 0.75, 0.0, 1.0)
    mask = _blur((t * t * (3.0 - 2.0 * t)).astype(np.float32), st.feather * n)
    mask[mask < 1.0 / 256.0] = 0.0
    return ChangeFields(flow.astype(np.float32), light.astype(np.float32), chroma.astype(np.float32),
                        mask.astype(np.float32))


def _face_roi(face: AlignedFace, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    return face_roi(face, shape, margin=0.3 * face_scale(np.asarray(face.landmarks)))


def transfer_face(photo: np.ndarray, face: AlignedFace, reconstruction: np.ndarray, edited: np.ndarray,
                  settings: TransferSettings | None = None,
                  fields: ChangeFields | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Apply one face's change to ``photo``; returns (new photo, the change's photo-size mask in [0, 1]).

    Pixels where the mask is 0 (everything outside the face region, and the face where the edit
    changed nothing) are returned bit-identical.
    """
    out = np.array(photo, dtype=np.uint8, copy=True)
    if out.ndim != 3 or out.shape[2] != 3:
        raise UsageError(f"transfer expects an H×W×3 uint8 photo, got shape {out.shape}")
    h, w = out.shape[:2]
    if tuple(face.photo_size) != (w, h):
        raise UsageError(f"face was aligned on a {face.photo_size[0]}x{face.photo_size[1]} photo, "
                         f"cannot render into {w}x{h}")
    full_mask = np.zeros((h, w), np.float32)
    f = fields if fields is not None else change_fields(reconstruction, edited, settings)
    st = settings or TransferSettings()
    x0, y0, x1, y1 = _face_roi(face, (h, w))
    if f.empty or x1 <= x0 or y1 <= y0:
        return out, full_mask
    n = f.size
    m = crop_to_photo(face, n)  # field pixels -> photo pixels
    inv = np.linalg.inv(m)
    gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    u = (inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]).astype(np.float32)
    v = (inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]).astype(np.float32)

    def sample(a: np.ndarray) -> np.ndarray:
        return cv2.remap(a, u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    region = face_mask(face, (h, w), roi=(x0, y0, x1, y1))  # the paste-back region (paste_mask)
    mask = sample(f.mask) * region
    mask[mask < 1.0 / 256.0] = 0.0
    if not mask.any():
        return out, full_mask
    flow = sample(f.flow) * mask[..., None]
    dx = m[0, 0] * flow[..., 0] + m[0, 1] * flow[..., 1]  # crop-pixel shift -> photo-pixel shift
    dy = m[1, 0] * flow[..., 0] + m[1, 1] * flow[..., 1]
    warped = warp_detail_preserving(out, (gx + dx).astype(np.float32), (gy + dy).astype(np.float32))
    lab = _lab(np.clip(warped, 0.0, 255.0) / 255.0)
    light0 = lab[..., 0].copy()
    lab[..., 0] += sample(f.light) * mask
    lab[..., 1:] += sample(f.chroma) * mask[..., None]
    lo, hi = st.light_range
    r = st.light_ratio
    floor = np.minimum(light0, np.maximum(lo, r * light0))  # a shadow cannot turn a feature black ...
    ceil = np.maximum(light0, np.minimum(hi, 100.0 - r * (100.0 - light0)))  # ... nor a highlight white
    lab[..., 0] = np.clip(lab[..., 0], floor, ceil)
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    new = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    region_px = out[y0:y1, x0:x1]
    out[y0:y1, x0:x1] = np.where(mask[..., None] > 0, new, region_px)
    full_mask[y0:y1, x0:x1] = mask
    return out, full_mask


def transfer_back(photo: np.ndarray, faces: Iterable[tuple[AlignedFace, np.ndarray, np.ndarray]],
                  settings: TransferSettings | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Apply every ``(face, reconstruction, edited)``'s change; returns (photo, union of the change masks)."""
    out = np.array(photo, dtype=np.uint8, copy=True)
    total = np.zeros(out.shape[:2], np.float32)
    for face, rec, edi in faces:
        out, mask = transfer_face(out, face, rec, edi, settings)
        np.maximum(total, mask, out=total)
    return out, total


def native_size(face: AlignedFace) -> int:
    """The side of the face's aligned crop in photo pixels (the face's own resolution)."""
    q = np.asarray(face.quad, dtype=np.float64)
    return max(int(round(np.hypot(*(q[3] - q[0])))), 8)


def native_crop(image: np.ndarray, face: AlignedFace, size: int | None = None) -> np.ndarray:
    """The face's aligned square crop cut from ``image`` at ``size`` px (default: its own resolution, 1:1)."""
    size = int(size or native_size(face))
    m = np.linalg.inv(crop_to_photo(face, size))
    return cv2.warpAffine(np.ascontiguousarray(image), m[:2], (size, size), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)
