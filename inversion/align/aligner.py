"""``align_faces``: every face of a photo as an aligned square crop, with its transform."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from editkit.errors import NoFaceError, UsageError
from editkit.photos import load_photo

from .detection import detect_faces
from .recipe import face_quad, quad_to_matrix, warp_quad
from .templates import AlignmentTemplate, get_template


@dataclass
class AlignedFace:
    """One aligned face.

    ``image``: size×size×3 uint8 RGB crop; ``landmarks``: 68×2 in the original photo's pixels;
    ``box``: detector box (left, top, right, bottom) or None when landmarks were given;
    ``quad``: the crop's corners (NW, SW, SE, NE) in photo pixels; ``transform``: 3×3 matrix
    from crop pixels to photo pixels (``inverse_transform`` the other way); ``blur_ramp``: where
    the recipe's padding blur also altered real photo pixels (rendering back fades out there).
    """

    image: np.ndarray
    landmarks: np.ndarray
    box: tuple[int, int, int, int] | None
    score: float | None
    quad: np.ndarray
    transform: np.ndarray
    template: str
    photo_size: tuple[int, int]  # (width, height)
    index: int = 0
    blur_ramp: tuple | None = None  # (data_box, clean_box): where the padding blur touched real pixels

    @property
    def size(self) -> int:
        return int(self.image.shape[0])

    @property
    def inverse_transform(self) -> np.ndarray:
        return np.linalg.inv(self.transform)

    @property
    def landmarks_in_crop(self) -> np.ndarray:
        """The landmarks in crop pixels."""
        return apply_transform(self.inverse_transform, self.landmarks)

    def to_dict(self) -> dict:
        """JSON-able description (no pixels)."""
        return {
            "index": self.index,
            "box": list(self.box) if self.box is not None else None,
            "score": self.score,
            "template": self.template,
            "size": self.size,
            "photo_size": list(self.photo_size),
            "landmarks": np.round(self.landmarks, 3).tolist(),
            "landmarks_in_crop": np.round(self.landmarks_in_crop, 3).tolist(),
            "quad": np.round(self.quad, 4).tolist(),
            "crop_to_photo": np.round(self.transform, 8).tolist(),
            "photo_to_crop": np.round(self.inverse_transform, 8).tolist(),
            "blur_ramp": [[round(v, 3) for v in b] for b in self.blur_ramp] if self.blur_ramp else None,
        }


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 3×3 affine matrix to N×2 points."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:2, :2].T + matrix[:2, 2]


def align_face(image: np.ndarray, landmarks: np.ndarray, template: str | AlignmentTemplate = "ffhq",
               size: int | None = None, supersample: int | None = None) -> AlignedFace:
    """Align one face of ``image`` given its 68 landmarks (photo pixels)."""
    tpl = get_template(template)
    size = int(size or tpl.size)
    if size < 8:
        raise UsageError(f"alignment size must be at least 8 pixels, got {size}")
    ss = int(supersample or tpl.supersample)
    lm = np.asarray(landmarks, dtype=np.float64)
    quad = face_quad(lm, tpl)
    crop, effective, ramp = warp_quad(image, quad, size, supersample=ss, padding=tpl.padding)
    return AlignedFace(image=crop, landmarks=lm, box=None, score=None, quad=effective,
                       transform=quad_to_matrix(effective, size), template=tpl.name,
                       photo_size=(int(image.shape[1]), int(image.shape[0])), blur_ramp=ramp)


def align_faces(photo: str | Path | np.ndarray, template: str | AlignmentTemplate = "ffhq",
                size: int | None = 256, detector: str = "hog", upsample: int = 1, min_score: float = 0.0,
                landmarks: str = "dlib", fan_weights: str | Path | None = None,
                max_faces: int | None = None) -> list[AlignedFace]:
    """Detect every face of ``photo`` (path or H×W×3 uint8 RGB array) and align it.

    Faces come in a stable order (left edge, then top edge of the detector box). ``size=None``
    uses the template's own output size. Raises :class:`NoFaceError` when no face is found.
    """
    path = None
    if isinstance(photo, (str, Path)):
        path = Path(photo)
        image = load_photo(path)
    else:
        image = np.asarray(photo)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise UsageError(f"photo array must be H×W×3 uint8 RGB, got {image.dtype} {image.shape}")
    dets = detect_faces(image, detector=detector, upsample=upsample, min_score=min_score,
                        landmarks=landmarks, fan_weights=fan_weights)
    if not dets:
        raise NoFaceError(f"no face found (detector {detector}, upsample {upsample}); "
                          "try --upsample 2 for small faces or --detector cnn", path)
    if max_faces is not None:
        dets = sorted(dets, key=lambda d: -d.score)[:max_faces]
        dets.sort(key=lambda d: (d.box[0], d.box[1]))
    faces = []
    for i, d in enumerate(dets):
        face = align_face(image, d.landmarks, template=template, size=size)
        face.box, face.score, face.index = d.box, d.score, i
        faces.append(face)
    return faces
