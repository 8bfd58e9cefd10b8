"""What an edit did to each face, measured with the pretrained face networks (editkit.facenets):
identity distance to the input face and the predicted attributes before and after.

All three crops of a face (the aligned input, its reconstruction and the edited face) are analysed
at the generator's resolution with the same tight box (from the face's 68 landmarks), so the
numbers compare like with like. ``distance`` < 0.6 is face-api's "same person". With the
``transfer`` render mode the input and edited faces are instead the photo's own, before and after,
cut at one size from the photo and the output (the reconstruction stays the generator's).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def annotate_faces(faces: Sequence[Any], rendered: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> None:
    """Fill ``identity`` and ``attributes`` of each ``editor.FaceEdit`` in place (one batched pass).

    ``rendered``: per face, (before, after) square aligned crops of the photo and of the output (any
    one size each); measured instead of the generator's input and edited crops.
    """
    from . import facenets

    if not faces:
        return
    crops, lms = [], []
    for n, f in enumerate(faces):
        lm = np.asarray(f.face.landmarks_in_crop, dtype=np.float64)
        before, after = (f.before, f.after) if rendered is None else rendered[n]
        scale = np.asarray(before).shape[0] / np.asarray(f.before).shape[0]
        for img, mark in ((before, lm * scale), (f.reconstruction, lm), (after, lm * scale)):
            crops.append(np.asarray(img, dtype=np.uint8))
            lms.append(mark)
    try:
        res = facenets.analyze(crops, landmarks=lms)
    except ValueError as exc:  # a degenerate landmark box (face far outside its crop)
        for f in faces:
            f.identity, f.attributes = {"error": str(exc)}, {"error": str(exc)}
        return
    dist = lambda i, j: float(facenets.identity_distance(res.descriptor[i], res.descriptor[j]))
    for n, f in enumerate(faces):
        b, r, a = 3 * n, 3 * n + 1, 3 * n + 2
        d = dist(b, a)
        f.identity = {"distance": round(d, 4),
                      "similarity": round(float(facenets.identity_similarity(res.descriptor[b], res.descriptor[a])), 4),
                      "same_person": d < facenets.SAME_PERSON_DISTANCE,
                      "distance_reconstruction": round(dist(b, r), 4),
                      # the edit's own effect: from the unedited output (the reconstruction, or the photo itself with transfer)
                      "distance_edit": round(dist(r, a) if rendered is None else d, 4)}
        f.attributes = {"before": res.face(b), "reconstruction": res.face(r), "after": res.face(a)}


def edit_report(result: Any, labels: Sequence[str | None] = (), photo: str | Path | None = None,
                outputs: Sequence[str | Path] = ()) -> dict:
    """A JSON-able report of an ``EditResult``: the edits and, per face, identity and attributes."""
    lab = lambda k: (labels[k] if k < len(labels) else None) or f"attr{k}"
    return {
        "photo": str(photo) if photo is not None else None,
        "outputs": [str(p) for p in outputs],
        "edits": [{"direction": k, "label": lab(k), "strength": s} for k, s in result.edits],
        "identity_threshold": 0.6,
        "measured_with": "editkit.facenets (face-api recognition, age/gender, expression nets) on the aligned "
                         "faces, tight landmark box: with render 'transfer' the photo's face before and after "
                         "(cut from the photo and the output), with 'generated' the crops at the generator's "
                         "resolution",
        "faces": [{"index": f.index, "box": list(f.face.box) if getattr(f.face, "box", None) is not None else None,
                   "identity": f.identity, "attributes": f.attributes,
                   "inversion": {k: v for k, v in f.metrics.items() if isinstance(v, (int, float, str, bool))}}
                  for f in result.faces],
    }


def check_report_path(path: str | Path, overwrite: bool = False, inputs: tuple = ()) -> Path:
    """Before any work: the report must not clobber an input, a folder or (without ``overwrite``)
    an existing file, and its folder must be writable (created later if missing)."""
    import os

    from .atomic import check_writable
    from .errors import UsageError

    p = Path(path)
    if p.is_dir():
        raise UsageError("report path is a folder, expected a .json file", p)
    check_writable(p, overwrite, inputs)
    parent = p.resolve().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write the report: {parent} is not a writable folder", p)
    return p


def write_report(path: str | Path, report: dict) -> Path:
    """Write a report as JSON, atomically."""
    from .atomic import atomic_write_text

    return atomic_write_text(path, json.dumps(report, indent=2) + "\n")
