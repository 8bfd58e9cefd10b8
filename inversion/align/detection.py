"""Face detection and 68-point landmarks with dlib (HOG or CNN detector, iBUG-68 shape predictor).

The model files come from the ``face-recognition-models`` package, located with
``importlib.util.find_spec`` (importing that package fails on current setuptools: it needs
``pkg_resources``). Loaded models are cached per process (the 68-point model takes ~1 s to load).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from editkit.errors import UsageError
from editkit.paths import dlib_model_path, dlib_models_dir

DETECTORS = ("hog", "cnn")

_lock = threading.Lock()
_cache: dict[str, object] = {}


models_dir = dlib_models_dir
model_path = dlib_model_path


def _cached(key: str, factory):
    with _lock:
        obj = _cache.get(key)
        if obj is None:
            obj = factory()
            _cache[key] = obj
        return obj


def hog_detector():
    """dlib's frontal HOG face detector (cached)."""
    import dlib

    return _cached("hog", dlib.get_frontal_face_detector)


def cnn_detector():
    """dlib's MMOD CNN face detector, ``mmod_human_face_detector.dat`` (cached; slow on CPU)."""
    import dlib

    return _cached("cnn", lambda: dlib.cnn_face_detection_model_v1(str(model_path("mmod_human_face_detector.dat"))))


def shape_predictor():
    """dlib's 68-point shape predictor, ``shape_predictor_68_face_landmarks.dat`` (cached)."""
    import dlib

    return _cached("sp68", lambda: dlib.shape_predictor(str(model_path("shape_predictor_68_face_landmarks.dat"))))


@dataclass
class Detection:
    """One detected face: box (left, top, right, bottom) in pixels, detector score, 68×2 landmarks."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray | None = None


def detect_boxes(image: np.ndarray, detector: str = "hog", upsample: int = 1,
                 min_score: float = 0.0) -> list[Detection]:
    """Every face box in an RGB uint8 image, sorted by left then top edge (no landmarks yet)."""
    import dlib

    img = np.ascontiguousarray(image, dtype=np.uint8)
    if upsample < 0:
        raise UsageError(f"upsample must be >= 0, got {upsample}")
    if detector == "hog":
        rects, scores, _ = hog_detector().run(img, int(upsample), float(min_score))
        found = [((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)]
    elif detector == "cnn":
        dets = cnn_detector()(img, int(upsample))
        found = [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), float(d.confidence))
                 for d in dets if d.confidence >= min_score]
    else:
        raise UsageError(f"unknown face detector {detector!r} (choose from {', '.join(DETECTORS)})")
    found.sort(key=lambda f: (f[0][0], f[0][1]))
    return [Detection(box=tuple(int(v) for v in b), score=s) for b, s in found]


def dlib_landmarks(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """68 (x, y) landmarks (float64, photo pixels) of the face in ``box``."""
    import dlib

    img = np.ascontiguousarray(image, dtype=np.uint8)
    shape = shape_predictor()(img, dlib.rectangle(*[int(v) for v in box]))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def detect_faces(image: np.ndarray, detector: str = "hog", upsample: int = 1, min_score: float = 0.0,
                 landmarks: str = "dlib", fan_weights: str | Path | None = None) -> list[Detection]:
    """Detect every face and its 68 landmarks (``landmarks='dlib'`` or ``'fan'``, see ``fan.py``)."""
    dets = detect_boxes(image, detector=detector, upsample=upsample, min_score=min_score)
    if landmarks == "dlib":
        for d in dets:
            d.landmarks = dlib_landmarks(image, d.box)
    elif landmarks == "fan":
        from .fan import fan_landmarks

        pts = fan_landmarks(image, [d.box for d in dets], weights=fan_weights) if dets else []
        for d, p in zip(dets, pts):
            d.landmarks = p
    else:
        raise UsageError(f"unknown landmark backend {landmarks!r} (choose from dlib, fan)")
    return dets
