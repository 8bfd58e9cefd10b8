"""A direction's name is a promise: measure what each direction does to real, inverted faces.

A direction may carry a name (``smile``, ``age``, ``masculine``, ``yaw``, ...) only if, on real test
faces (inverted into W+, not generated), moving it by its recommended strength moves the named
attribute the named way on at least :data:`PASS_RATE` of the faces, each with an identity distance
(face-recognition descriptors, same person below 0.6) under :data:`MAX_IDENTITY` to the unedited
reconstruction. Otherwise it is listed by index with its measured top attributes.

Attributes come from the pretrained face networks (:mod:`editkit.facenets`: age, gender, the 7
expressions, 68 landmarks -> head pose, mouth and eye opening) and from image regions located by
those landmarks (skin, hair and background brightness). Both signs are measured; a direction whose
negative side keeps the promise is negated so that its positive strength does what its name says.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

PASS_RATE = 0.8
MAX_IDENTITY = 0.6


@dataclass(frozen=True)
class Promise:
    """What a name promises: ``attribute`` goes up by more than ``min_change`` (in its units)."""

    attribute: str
    label: str
    min_change: float
    unit: str


#: The nameable attributes, in the order used to break ties.
PROMISES = (
    Promise("happy", "smile", 0.05, "P(happy)"),
    Promise("age", "age", 2.0, "years"),
    Promise("male", "masculine", 0.05, "P(male)"),
    Promise("yaw", "yaw", 3.0, "degrees"),
    Promise("pitch", "pitch", 3.0, "degrees"),
    Promise("roll", "roll", 2.0, "degrees"),
    Promise("mouth_open", "mouth-open", 0.03, "lip gap / eye distance"),
    Promise("eye_open", "eyes-open", 0.02, "eye aspect ratio"),
    Promise("surprised", "surprise", 0.05, "P(surprised)"),
    Promise("sad", "sad", 0.05, "P(sad)"),
    Promise("angry", "angry", 0.05, "P(angry)"),
    Promise("fearful", "fear", 0.05, "P(fearful)"),
    Promise("disgusted", "disgust", 0.05, "P(disgusted)"),
    Promise("neutral", "neutral", 0.05, "P(neutral)"),
    Promise("skin_brightness", "skin-light", 0.02, "luma"),
    Promise("hair_brightness", "hair-light", 0.02, "luma"),
    Promise("background_brightness", "background-light", 0.02, "luma"),
)
ATTRIBUTES = tuple(p.attribute for p in PROMISES)
_BY_ATTR = {p.attribute: p for p in PROMISES}


@dataclass
class DirectionEffect:
    """The measured effect of one direction at its recommended strength on real faces."""

    index: int
    strength: float
    label: str | None
    attribute: str | None  # the promised attribute (None: no promise kept)
    sign: int  # +1, or -1 when the direction was negated to keep the promise
    pass_rate: float  # fraction of faces where the attribute moved the named way with identity < 0.6
    median_change: float  # median change of that attribute (its units)
    identity_distance: float  # median identity distance of the edit at that side
    faces: int
    top: list[dict] = field(default_factory=list)  # the best attributes: attribute, sign, pass_rate, median_change
    rates: dict[str, float] = field(default_factory=dict)  # pass rate of every attribute and side, "age+" / "age-"

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One line for tables: what the direction does and at what identity cost."""
        if self.attribute:
            p = _BY_ATTR[self.attribute]
            return (f"{p.unit} {self.median_change:+.3g} on {self.pass_rate:.0%} of {self.faces} faces")
        return ", ".join(f"{t['attribute']} {'+' if t['sign'] > 0 else '-'} ({t['pass_rate']:.0%})" for t in self.top)


class FaceAttributes:
    """Attributes of face images through the pretrained face networks: images [N,3,H,W] in [-1, 1]
    -> (values [N, len(ATTRIBUTES)] float64, descriptors [N, 128])."""

    names = ATTRIBUTES

    def __init__(self, batch_size: int = 32):
        self.batch_size = batch_size

    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        from navigator.probe import eye_openness, head_pose, mouth_openness, region_color, region_masks

        from . import facenets
        from .facenets.analyze import _results
        from .generator_quality import _resize_matrix

        u8 = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        n, _, h, w = u8.shape
        if h != w:
            raise ValueError(f"expected square aligned faces, got {h}x{w}")
        # The aligned crop is the networks' tight face box (the utkface framing, on which face-api's age
        # and gender were validated), so the whole image goes in, resized with face-api's legacy bilinear
        # as matrix products (see editkit.generator_quality.face_features).
        mats = {s: _resize_matrix(w, s) for s in (150, 112)}
        mean = torch.tensor(facenets.MEAN_RGB)[:, None, None]
        nets = {k: facenets.load(k) for k in facenets.ALL}
        raw: dict[str, list[torch.Tensor]] = {}
        with torch.inference_mode():
            for lo in range(0, n, self.batch_size):
                x = u8[lo:lo + self.batch_size].float()
                inp = {s: (R @ x @ R.T - mean) / 255.0 for s, R in mats.items()}
                age, logits = nets["age_gender"](inp[112])
                for k, v in (("descriptor", nets["recognition"](inp[150])), ("age", age), ("gender_logits", logits),
                             ("expression_logits", nets["expression"](inp[112])),
                             ("landmarks_raw", nets["landmarks68"](inp[112]))):
                    raw.setdefault(k, []).append(v)
            res = _results({k: torch.cat(v) for k, v in raw.items()}, [(0, 0, w, h)] * n)
        arr = u8.permute(0, 2, 3, 1).numpy()
        expr, lms = res.expression.double().numpy(), res.landmarks.double().numpy()
        vals = []
        for i in range(n):
            lm = lms[i]
            yaw, pitch, roll = head_pose(lm, w, h)
            masks = region_masks(lm, w, h)
            row = {"age": float(res.age[i]), "male": float(res.p_male[i]), "yaw": yaw, "pitch": pitch, "roll": roll,
                   "mouth_open": mouth_openness(lm), "eye_open": eye_openness(lm),
                   **{f"{r}_brightness": region_color(arr[i], masks[r])[0] for r in ("skin", "hair", "background")}}
            row.update({name: float(expr[i, j]) for j, name in enumerate(facenets.EXPRESSIONS)})
            vals.append([row[a] for a in ATTRIBUTES])
        return np.asarray(vals, dtype=np.float64), res.descriptor.double().numpy()


def _render(G, ws: torch.Tensor, batch: int = 16) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([G.synthesis(ws[i:i + batch], noise_mode="const") for i in range(0, len(ws), batch)])


def measure_directions(G, nav, ws: torch.Tensor, attributes: Callable | None = None,
                       strengths: Sequence[float] | None = None, directions: Sequence[int] | None = None,
                       progress: Callable[[int, int], None] | None = None) -> list[DirectionEffect]:
    """Measure every direction (or ``directions``) at ``strengths`` (default: the navigator's
    recommended upper strength) on the W+ codes ``ws`` [N, num_ws, w_dim] of inverted real faces."""
    attributes = attributes or FaceAttributes()
    ks = list(range(nav.num_directions)) if directions is None else list(directions)
    base_vals, base_desc = attributes(_render(G, ws))
    out = []
    for n, k in enumerate(ks):
        s = float(strengths[n] if strengths is not None else nav.strength_range[k][1])
        sides = {}
        for sign in (1, -1):
            with torch.no_grad():
                edited = nav.edit(ws, k, sign * s)
            vals, desc = attributes(_render(G, edited))
            ident = np.linalg.norm(desc - base_desc, axis=1)
            sides[sign] = (vals - base_vals, ident)
        out.append(_judge(k, s, sides))
        if progress is not None:
            progress(n + 1, len(ks))
    return out


def _judge(k: int, strength: float, sides: dict[int, tuple[np.ndarray, np.ndarray]]) -> DirectionEffect:
    """Pick the promise this direction keeps best (attribute, side) and whether it passes."""
    cands = []
    for sign, (delta, ident) in sides.items():
        ok_id = ident < MAX_IDENTITY
        for j, a in enumerate(ATTRIBUTES):
            d = delta[:, j]
            valid = np.isfinite(d)
            moved = valid & (d > _BY_ATTR[a].min_change) & ok_id
            rate = float(moved.sum() / max(len(d), 1))
            med = float(np.median(d[valid])) if valid.any() else float("nan")
            cands.append({"attribute": a, "sign": sign, "pass_rate": round(rate, 3), "median_change": round(med, 4),
                          "identity": float(np.median(ident)), "order": j,
                          "effect": abs(med) / _BY_ATTR[a].min_change if np.isfinite(med) else 0.0})
    cands.sort(key=lambda c: (-c["pass_rate"], -c["effect"], c["order"]))
    best = cands[0]
    top, seen = [], set()
    for c in cands:
        if c["attribute"] not in seen:
            seen.add(c["attribute"])
            top.append({key: c[key] for key in ("attribute", "sign", "pass_rate", "median_change")})
        if len(top) == 3:
            break
    faces = len(sides[1][1])
    rates = {f"{c['attribute']}{'+' if c['sign'] > 0 else '-'}": c["pass_rate"] for c in cands}
    kept = best["pass_rate"] >= PASS_RATE
    return DirectionEffect(index=k, strength=strength, label=None, attribute=best["attribute"] if kept else None,
                           sign=best["sign"] if kept else 1, pass_rate=best["pass_rate"],
                           median_change=best["median_change"], identity_distance=round(best["identity"], 4),
                           faces=faces, top=top, rates=rates)


def promised_attribute(label: str) -> Promise:
    """The promise behind a direction name (``smile``, ``smile-2``, ``mouth-open``, ...)."""
    import re

    base = re.sub(r"-\d+$", "", label)
    for p in PROMISES:
        if p.label == base:
            return p
    raise KeyError(f"no promise is named {label!r}")


def apply_labels(nav, effects: Sequence[DirectionEffect]):
    """Name the directions that keep a promise (negating those kept on their negative side), clear the
    other names, and store every measured effect in ``nav.info['promise']``. Returns ``nav``."""
    nav.negate([e.index for e in effects if e.sign < 0])
    labels = [None] * nav.num_directions
    seen: dict[str, int] = {}
    for e in sorted(effects, key=lambda e: (-e.pass_rate, e.index)):  # the best keeper gets the plain name
        if e.attribute is None:
            continue
        base = _BY_ATTR[e.attribute].label
        seen[base] = seen.get(base, 0) + 1
        e.label = base if seen[base] == 1 else f"{base}-{seen[base]}"
        labels[e.index] = e.label
    for e in effects:  # after negation the promised side is the positive one
        if e.sign < 0:
            e.top = [dict(t, sign=-t["sign"]) for t in e.top]
            e.rates = {k[:-1] + ("-" if k[-1] == "+" else "+"): v for k, v in e.rates.items()}
    nav.labels = labels
    info = dict(nav.info or {})
    info["promise"] = {"rule": f"named only if the attribute moves the named way on >= {PASS_RATE:.0%} of real "
                               f"inverted faces with identity distance < {MAX_IDENTITY} at the recommended strength",
                       "effects": {str(e.index): e.as_dict() for e in effects}}
    nav.info = info
    return nav


def real_faces(sources: Sequence[str | Path], template: str = "utkface", size: int = 64, min_score: float = 0.3,
               limit: int | None = None) -> tuple[torch.Tensor, list[str]]:
    """Faces aligned from photos (files or folders, sorted), as [N,3,size,size] in [-1, 1], and their names."""
    from inversion.align import align_faces

    from .errors import EditkitError
    from .photos import load_photo

    files: list[Path] = []
    for s in sources:
        p = Path(s)
        files += sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else [p]
    crops, names = [], []
    for f in files:
        try:
            faces = align_faces(load_photo(f), template=template, size=size)
        except EditkitError:
            continue
        for i, face in enumerate(faces):
            if face.score > min_score:
                crops.append(face.image)
                names.append(f"{f.name}#{i}")
        if limit is not None and len(crops) >= limit:
            break
    if not crops:
        raise ValueError("no faces found in the given photos")
    x = torch.from_numpy(np.stack(crops[:limit])).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, names[:limit]
