"""An offline attribute probe (no downloaded weights): geometry from the 68 dlib landmarks and
colour from image regions.

Attributes (:data:`ATTRIBUTES`): head yaw / pitch / roll (degrees, from ``cv2.solvePnP`` with a
generic 3-D face model), mouth openness (inner-lip gap / inter-ocular distance), smile width
(mouth-corner distance / inter-ocular distance), eye openness (eye aspect ratio), face size (jaw
width / image width), face position (landmark centroid / image size), and the mean brightness
(luma in [0, 1]) and hue (chroma-weighted circular mean, degrees in (-180, 180]) of the skin,
hair and background regions.

Landmarks come from dlib's HOG detector plus the 68-point predictor shipped by
``face_recognition_models`` (located without importing it). Aligned generator outputs in which no
face is detected use the FFHQ-alignment face box, so every image gets a value. Images smaller than
``min_size`` are upsampled (Lanczos) first, larger than ``max_size`` downsampled (all outputs are
ratios or means, so the scale does not change them beyond resampling).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from editkit.paths import dlib_model_path

ATTRIBUTES = ("yaw", "pitch", "roll", "mouth_open", "smile_width", "eye_open", "face_size", "face_x", "face_y",
              "skin_brightness", "skin_hue", "hair_brightness", "hair_hue",
              "background_brightness", "background_hue")

#: Face box of an FFHQ-aligned crop, as fractions of the image size (dlib HOG on aligned crops).
ALIGNED_FACE_BOX = (0.18, 0.316, 0.785, 0.92)

# Generic 3-D face model in the camera frame (x right, y down, z into the scene), arbitrary units:
# nose tip, chin, outer corner of the image-left eye, of the image-right eye, mouth corners.
MODEL_POINTS = np.array([(0.0, 0.0, 0.0), (0.0, 330.0, 65.0), (-225.0, -170.0, 135.0), (225.0, -170.0, 135.0),
                         (-150.0, 150.0, 125.0), (150.0, 150.0, 125.0)])
MODEL_LANDMARKS = (30, 8, 36, 45, 48, 54)


def predictor_path() -> Path:
    """The 68-point dlib model inside the ``face_recognition_models`` package (not imported)."""
    return dlib_model_path("shape_predictor_68_face_landmarks.dat")


# -- geometry from landmarks -----------------------------------------------------------------------

def euler_from_rotation(R: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees for R = Rz(roll)·Ry(yaw)·Rx(pitch)."""
    sy = float(np.hypot(R[0, 0], R[1, 0]))
    pitch = np.degrees(np.arctan2(R[2, 1], R[2, 2]))
    yaw = np.degrees(np.arctan2(-R[2, 0], sy))
    roll = np.degrees(np.arctan2(R[1, 0], R[0, 0]))
    return float(yaw), float(pitch), float(roll)


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Inverse of :func:`euler_from_rotation`."""
    y, p, r = np.radians([yaw, pitch, roll])
    Rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    Ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    Rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def camera_matrix(width: int, height: int) -> np.ndarray:
    return np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)


def head_pose(landmarks: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from 68 landmarks, via solvePnP with the generic model."""
    import cv2
    pts = np.asarray(landmarks, dtype=np.float64)[list(MODEL_LANDMARKS)]
    ok, rvec, _ = cv2.solvePnP(MODEL_POINTS, pts, camera_matrix(width, height), np.zeros(4),
                               flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return float("nan"), float("nan"), float("nan")
    R, _ = cv2.Rodrigues(rvec)
    return euler_from_rotation(R)


def _d(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, float) - np.asarray(b, float)))


def interocular(lm: np.ndarray) -> float:
    """Distance between the two eye centres."""
    return _d(lm[36:42].mean(0), lm[42:48].mean(0))


def mouth_openness(lm: np.ndarray) -> float:
    """Mean inner-lip gap (61-67, 62-66, 63-65) / inter-ocular distance."""
    gap = (_d(lm[61], lm[67]) + _d(lm[62], lm[66]) + _d(lm[63], lm[65])) / 3
    return gap / max(interocular(lm), 1e-6)


def smile_width(lm: np.ndarray) -> float:
    """Mouth-corner distance (48-54) / inter-ocular distance."""
    return _d(lm[48], lm[54]) / max(interocular(lm), 1e-6)


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """(|p2−p6| + |p3−p5|) / (2|p1−p4|) for the 6 points of one eye."""
    return (_d(eye[1], eye[5]) + _d(eye[2], eye[4])) / (2 * max(_d(eye[0], eye[3]), 1e-6))


def eye_openness(lm: np.ndarray) -> float:
    """Mean eye aspect ratio of both eyes."""
    return (eye_aspect_ratio(lm[36:42]) + eye_aspect_ratio(lm[42:48])) / 2


def face_geometry(lm: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """(jaw width / image width, centroid x / width, centroid y / height)."""
    c = np.asarray(lm, float).mean(0)
    return _d(lm[0], lm[16]) / width, float(c[0] / width), float(c[1] / height)


# -- colour regions --------------------------------------------------------------------------------

def region_masks(lm: np.ndarray, width: int, height: int) -> dict[str, np.ndarray]:
    """Boolean masks of the skin (face polygon minus eyes, brows and mouth), hair (a band above the
    forehead) and background (strips beside the head, above the chin)."""
    from PIL import Image, ImageDraw
    lm = np.asarray(lm, float)

    def poly(points, extra=None):
        im = Image.new("1", (width, height), 0)
        ImageDraw.Draw(im).polygon([tuple(p) for p in points], fill=1)
        return np.array(im, dtype=bool)

    face = poly(np.concatenate([lm[0:17], lm[26:16:-1]]))
    holes = poly(lm[36:42]) | poly(lm[42:48]) | poly(lm[48:60]) | poly(lm[17:22]) | poly(lm[22:27])
    skin = face & ~holes
    x0, x1 = lm[:, 0].min(), lm[:, 0].max()
    brow_y, chin_y = lm[17:27, 1].min(), lm[8, 1]
    fh = max(chin_y - brow_y, 1.0)
    yy, xx = np.mgrid[0:height, 0:width]
    hair = (yy >= brow_y - 0.85 * fh) & (yy <= brow_y - 0.45 * fh) & (xx >= x0) & (xx <= x1) & ~face
    margin = 0.15 * (x1 - x0)
    background = ((xx < x0 - margin) | (xx > x1 + margin)) & (yy < chin_y)
    return {"skin": skin, "hair": hair, "background": background}


def region_color(image: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(mean luma in [0, 1], chroma-weighted circular mean hue in degrees) of ``image[mask]``; NaN if empty."""
    px = image[mask].astype(np.float64) / 255.0
    if px.size == 0:
        return float("nan"), float("nan")
    r, g, b = px[:, 0], px[:, 1], px[:, 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    a, bb = 2 * r - g - b, np.sqrt(3) * (g - b)          # hue plane; angle = hue, length ∝ chroma
    hue = np.degrees(np.arctan2(bb.sum(), a.sum())) if (np.abs(a).sum() + np.abs(bb).sum()) > 0 else float("nan")
    return float(luma.mean()), float(hue)


# -- the probe -------------------------------------------------------------------------------------

class LandmarkProbe:
    """Callable attribute predictor: images [N, 3, H, W] in [-1, 1] -> [N, A] (see :data:`ATTRIBUTES`)."""

    names = ATTRIBUTES

    def __init__(self, min_size: int = 256, detect: bool = True, max_size: int = 512):
        import dlib
        self.min_size, self.max_size, self.detect = min_size, max_size, detect
        self.detector = dlib.get_frontal_face_detector() if detect else None
        self.predictor = dlib.shape_predictor(str(predictor_path()))

    def landmarks(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """68×2 landmarks of the largest face of a uint8 RGB image, and whether a face was detected."""
        import dlib
        h, w = image.shape[:2]
        found = False
        rect = None
        if self.detector is not None:
            dets = list(self.detector(image, 0))
            if dets:
                rect, found = max(dets, key=lambda d: d.area()), True
        if rect is None:
            bx = ALIGNED_FACE_BOX
            rect = dlib.rectangle(int(bx[0] * w), int(bx[1] * h), int(bx[2] * w), int(bx[3] * h))
        shape = self.predictor(image, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64), found

    def attributes(self, image: np.ndarray) -> np.ndarray:
        """[A] attribute values of one uint8 RGB image."""
        image = self._rescale(np.ascontiguousarray(image))
        h, w = image.shape[:2]
        lm, _ = self.landmarks(image)
        yaw, pitch, roll = head_pose(lm, w, h)
        size, fx, fy = face_geometry(lm, w, h)
        masks = region_masks(lm, w, h)
        colours = [v for name in ("skin", "hair", "background") for v in region_color(image, masks[name])]
        return np.array([yaw, pitch, roll, mouth_openness(lm), smile_width(lm), eye_openness(lm),
                         size, fx, fy, *colours], dtype=np.float64)

    def _rescale(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        if min(h, w) < self.min_size:
            s = self.min_size / min(h, w)
        elif max(h, w) > self.max_size:
            s = self.max_size / max(h, w)
        else:
            return image
        from PIL import Image
        return np.array(Image.fromarray(image).resize((round(w * s), round(h * s)), Image.LANCZOS))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        arr = x.permute(0, 2, 3, 1).cpu().numpy()
        return torch.from_numpy(np.stack([self.attributes(a) for a in arr])).float()


#: ``--probe`` choices: the pretrained face networks (default) or the original dlib landmark/colour probe
PROBES = ("facenets", "dlib")


def build_probe(name: str = "facenets", detect: bool = True, device: str | torch.device = "cpu"):
    """An attribute probe by name (see :data:`PROBES`); each has ``names`` and maps images in [-1, 1]
    [N, 3, H, W] to attribute values."""
    from editkit.errors import UsageError

    if name == "dlib":
        return LandmarkProbe(detect=detect)
    if name == "facenets":
        from .face_probe import FaceNetProbe

        return FaceNetProbe(device=device)
    raise UsageError(f"unknown probe {name!r} (choose from {', '.join(PROBES)})")
