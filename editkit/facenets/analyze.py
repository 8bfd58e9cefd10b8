"""Whole-face analysis with the four face-api networks: identity descriptor, age, gender,
expression and 68 landmarks, on tight face crops cut the way face-api does.

Two entry points share one implementation:

* :func:`analyze` — uint8 images (H×W×3 RGB, any size) → numpy results, bit-exact preprocessing.
* :func:`analyze_tensor` — float tensors [N,3,H,W] (default range [-1, 1], editkit's generator
  convention) → torch results that are differentiable with respect to the pixels (for losses).

With 68 landmarks (image pixel coordinates) each face is cropped to face-api's aligned box: the
landmarks' bounding box grown by ``box_padding`` of its size (0.2 = face-api's ``minBoxPadding``,
half on each side), floored and clipped to the image. Without landmarks the whole image is taken
as the (tight) crop, unless ``locate`` > 0: then the landmark network finds the face itself, starting
from the whole image and re-cutting the box from its own landmarks ``locate`` times (for loose,
aligned crops with no landmarks at hand, e.g. generator outputs). These networks were trained on tight detector boxes: loose FFHQ-style crops
without landmarks give markedly worse age and gender (see benchmarks/facenets.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .dense import EXPRESSIONS
from .preprocess import _check_uint8, pad_to_square, normalize, resize_bilinear_legacy
from .weights import load

ALL = ("recognition", "age_gender", "expression", "landmarks68")
DEFAULT_BOX_PADDING = 0.2


@dataclass
class FaceAnalysis:
    """Per-face results (numpy from :func:`analyze`, tensors from :func:`analyze_tensor`).

    ``descriptor`` [N,128] raw identity descriptor (euclidean distance < 0.6: same person);
    ``age`` [N] years; ``p_male`` [N]; ``expression`` [N,7] probabilities in :data:`EXPRESSIONS`
    order; ``landmarks`` [N,68,2] (x, y) in input-image pixels; ``boxes`` [N,4] the crop used
    (left, top, right, bottom; right/bottom exclusive). Fields of networks not run are None.
    """

    descriptor: Any = None
    age: Any = None
    p_male: Any = None
    expression: Any = None
    landmarks: Any = None
    gender_logits: Any = None
    expression_logits: Any = None
    boxes: Any = None
    labels: tuple[str, ...] = field(default=EXPRESSIONS)

    def __len__(self) -> int:
        return len(self.boxes)

    def face(self, i: int) -> dict:
        """One face as plain JSON-able values (age, p_male, expression by name, top expression)."""
        out: dict[str, Any] = {}
        if self.age is not None:
            out["age"] = round(float(self.age[i]), 3)
            out["p_male"] = round(float(self.p_male[i]), 4)
        if self.expression is not None:
            probs = [float(p) for p in self.expression[i]]
            out["expression"] = {k: round(p, 4) for k, p in zip(self.labels, probs)}
            out["top_expression"] = self.labels[int(np.argmax(probs))]
        return out


def tight_box(landmarks: np.ndarray, height: int, width: int,
              padding: float = DEFAULT_BOX_PADDING) -> tuple[int, int, int, int]:
    """face-api's ``alignMinBbox``: the landmarks' bounding box grown by ``padding`` × its size
    (half each side), floored and clipped to the image; (left, top, right, bottom), exclusive."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(pts).all():
        raise ValueError("landmarks contain NaN or infinite values")
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    w, h = x1 - x0, y1 - y0
    x0, y0, x1, y1 = x0 - w * padding / 2, y0 - h * padding / 2, x1 + w * padding / 2, y1 + h * padding / 2
    left, top = int(np.floor(max(x0, 0))), int(np.floor(max(y0, 0)))
    right, bottom = int(np.floor(min(x1, width))), int(np.floor(min(y1, height)))
    if right - left < 2 or bottom - top < 2:
        raise ValueError(f"landmark box ({left}, {top}, {right}, {bottom}) is empty inside the "
                         f"{width}×{height} image")
    return left, top, right, bottom


def landmarks_from_raw(raw: torch.Tensor, height: int, width: int, size: int = 112) -> torch.Tensor:
    """face-api's landmark post-processing: raw fc [N,136] (units of the padded square) → [N,68,2]
    pixels of an H×W crop, undoing a symmetric diff/2 padding (as face-api does)."""
    s = size / max(height, width)
    w, h = width * s, height * s
    pad_x = abs(w - h) / 2 if w < h else 0.0
    pad_y = abs(w - h) / 2 if h < w else 0.0
    pts = raw.float().reshape(-1, 68, 2)
    pad = torch.tensor([pad_x, pad_y], dtype=torch.float32, device=raw.device)
    dim = torch.tensor([w, h], dtype=torch.float32, device=raw.device)
    rel = (pts * float(size) - pad) / dim
    return rel.double() * torch.tensor([width, height], dtype=torch.float64, device=raw.device)


def _boxes(sizes: Sequence[tuple[int, int]], landmarks, padding: float,
           strict: bool = True) -> list[tuple[int, int, int, int]]:
    """Crop boxes; with ``strict`` False (landmarks the network found itself) a degenerate box
    falls back to the whole image instead of raising."""
    if landmarks is None:
        return [(0, 0, w, h) for h, w in sizes]
    lms = [np.asarray(l.detach().cpu() if torch.is_tensor(l) else l, dtype=np.float64) for l in landmarks]
    if len(lms) != len(sizes):
        raise ValueError(f"{len(lms)} landmark sets for {len(sizes)} images")
    for lm in lms:
        if lm.shape != (68, 2):
            raise ValueError(f"expected 68×2 landmarks per face, got shape {lm.shape}")
    out = []
    for lm, (h, w) in zip(lms, sizes):
        try:
            out.append(tight_box(lm, h, w, padding))
        except ValueError:
            if strict:
                raise
            out.append((0, 0, w, h))
    return out


def _run(crops: list[torch.Tensor], networks: Iterable[str], device: torch.device,
         batch_size: int) -> dict[str, torch.Tensor]:
    """Network outputs for face crops [3,h,w] (float, 0..255; float64 for exact preprocessing)."""
    networks = tuple(networks)
    sizes = sorted({150 if n == "recognition" else 112 for n in networks})
    out: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(crops), batch_size):
        chunk = crops[start:start + batch_size]
        inputs = {s: torch.cat([normalize(resize_bilinear_legacy(pad_to_square(c[None]), s).float())
                                for c in chunk]).to(device) for s in sizes}
        for name in networks:
            net = load(name, device)
            if name == "recognition":
                res = {"descriptor": net(inputs[150])}
            elif name == "age_gender":
                age, logits = net(inputs[112])
                res = {"age": age, "gender_logits": logits}
            elif name == "expression":
                res = {"expression_logits": net(inputs[112])}
            else:
                res = {"landmarks_raw": net(inputs[112])}
            for k, v in res.items():
                out.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in out.items()}


def _results(raw: dict[str, torch.Tensor], boxes: list[tuple[int, int, int, int]]) -> FaceAnalysis:
    res = FaceAnalysis(boxes=boxes)
    if "descriptor" in raw:
        res.descriptor = raw["descriptor"]
    if "age" in raw:
        res.age, res.gender_logits = raw["age"], raw["gender_logits"]
        res.p_male = torch.softmax(raw["gender_logits"], dim=1)[:, 0]
    if "expression_logits" in raw:
        res.expression_logits = raw["expression_logits"]
        res.expression = torch.softmax(raw["expression_logits"], dim=1)
    if "landmarks_raw" in raw:
        pts = []
        for r, (left, top, right, bottom) in zip(raw["landmarks_raw"], boxes):
            p = landmarks_from_raw(r[None], bottom - top, right - left)[0]
            pts.append(p + torch.tensor([left, top], dtype=p.dtype, device=p.device))
        res.landmarks = torch.stack(pts)
    return res


def _check_networks(networks: Iterable[str]) -> tuple[str, ...]:
    networks = tuple(networks)
    bad = [n for n in networks if n not in ALL]
    if bad or not networks:
        raise ValueError(f"unknown face networks {bad} (choose from {', '.join(ALL)})")
    return networks


def analyze(images: np.ndarray | Sequence[np.ndarray], landmarks=None, *, networks: Iterable[str] = ALL,
            box_padding: float = DEFAULT_BOX_PADDING, locate: int = 0, device: str | torch.device = "cpu",
            batch_size: int = 32) -> FaceAnalysis:
    """Analyse face images (one H×W×3 uint8 RGB array, a list of them, or an [N,H,W,3] array).

    ``landmarks``: optional 68×2 points per image (image pixels) to crop each face's tight box;
    ``locate``: without landmarks, find them with the landmark network in that many passes.
    Returns numpy arrays in a :class:`FaceAnalysis`; preprocessing reproduces face-api exactly.
    """
    networks = _check_networks(networks)
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
        if landmarks is not None and np.asarray(landmarks).ndim == 2:
            landmarks = [landmarks]
    images = [_check_uint8(im) for im in images]
    strict = True
    if landmarks is None and locate > 0:
        for _ in range(locate):
            landmarks = _analyze_uint8(images, landmarks, ("landmarks68",), box_padding, device, batch_size,
                                       strict=False).landmarks
        strict = False
    return _analyze_uint8(images, landmarks, networks, box_padding, device, batch_size, strict)


def _analyze_uint8(images: list[np.ndarray], landmarks, networks: tuple[str, ...], box_padding: float,
                   device, batch_size: int, strict: bool) -> FaceAnalysis:
    boxes = _boxes([im.shape[:2] for im in images], landmarks, box_padding, strict)
    crops = [torch.from_numpy(im[t:b, l:r].copy()).permute(2, 0, 1).double() for im, (l, t, r, b) in zip(images, boxes)]
    with torch.inference_mode():
        res = _results(_run(crops, networks, torch.device(device), batch_size), boxes)
    for name in ("descriptor", "age", "p_male", "expression", "landmarks", "gender_logits", "expression_logits"):
        value = getattr(res, name)
        if value is not None:
            setattr(res, name, value.cpu().numpy())
    res.boxes = np.asarray(boxes, dtype=np.int64)
    return res


def analyze_tensor(images: torch.Tensor, landmarks: torch.Tensor | np.ndarray | None = None, *,
                   networks: Iterable[str] = ALL, value_range: tuple[float, float] = (-1.0, 1.0),
                   box_padding: float = DEFAULT_BOX_PADDING, locate: int = 0, batch_size: int = 64) -> FaceAnalysis:
    """Differentiable analysis of float images [N,3,H,W] (RGB, values in ``value_range``, default
    [-1, 1]; runs on ``images.device``). Gradients flow to the pixels; the crop boxes (from
    ``landmarks`` [N,68,2] in pixels, found in ``locate`` passes, or the whole image) are constants.
    Returns tensors."""
    networks = _check_networks(networks)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [N,3,H,W], got shape {tuple(images.shape)}")
    lo, hi = value_range
    rgb = (images - lo) * (255.0 / (hi - lo))
    h, w = images.shape[-2:]
    strict = True
    if landmarks is None and locate > 0:
        with torch.no_grad():
            for _ in range(locate):
                boxes = _boxes([(h, w)] * len(images), landmarks, box_padding, strict=False)
                crops = [x[:, t:b, l:r] for x, (l, t, r, b) in zip(rgb.detach(), boxes)]
                landmarks = _results(_run(crops, ("landmarks68",), images.device, batch_size), boxes).landmarks
        strict = False
    boxes = _boxes([(h, w)] * len(images), landmarks, box_padding, strict)
    crops = [x[:, t:b, l:r] for x, (l, t, r, b) in zip(rgb, boxes)]
    return _results(_run(crops, networks, images.device, batch_size), boxes)


def _descriptor(x) -> torch.Tensor:
    if isinstance(x, FaceAnalysis):
        x = x.descriptor
    return x if torch.is_tensor(x) else torch.as_tensor(np.asarray(x, dtype=np.float64))


def identity_distance(a, b):
    """Euclidean distance of descriptors ([..., 128] arrays/tensors or FaceAnalysis), face-api's
    convention: below 0.6 means the same person. Returns the type given (numpy for numpy)."""
    ta, tb = _descriptor(a), _descriptor(b)
    d = torch.linalg.vector_norm(ta - tb.to(ta.dtype), dim=-1)
    return d if torch.is_tensor(_raw(a)) else d.cpu().numpy()


def identity_similarity(a, b):
    """Cosine similarity of descriptors (1 = same direction). Returns the type given."""
    ta, tb = _descriptor(a), _descriptor(b)
    s = torch.nn.functional.cosine_similarity(ta, tb.to(ta.dtype), dim=-1)
    return s if torch.is_tensor(_raw(a)) else s.cpu().numpy()


def _raw(x):
    return x.descriptor if isinstance(x, FaceAnalysis) else x
