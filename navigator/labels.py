"""Name discovered directions from their attribute responses (contrafeat.md §5 responses R)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

# Short, user-facing names for attribute-probe and predictor outputs.
SHORT_NAMES = {
    "yaw": "head-turn", "pitch": "head-tilt", "roll": "head-roll", "mouth_open": "mouth-open",
    "smile_width": "smile", "eye_open": "eyes-open", "face_size": "zoom", "face_x": "shift-x", "face_y": "shift-y",
    "skin_brightness": "skin-light", "skin_hue": "skin-hue", "hair_brightness": "hair-light", "hair_hue": "hair-hue",
    "background_brightness": "background-light", "background_hue": "background-hue", "age": "age",
    "female": "feminine", "identity_change": "identity", "neutral": "neutral", "happy": "happy", "sad": "sad",
    "angry": "angry", "fearful": "fearful", "disgusted": "disgusted", "surprised": "surprised",
}


@dataclass
class DirectionLabel:
    """What one direction changes: its top attributes (name, normalised response) and a short name
    when one attribute clearly dominates. ``sign`` is the sign of the raw response of the top attribute."""

    index: int
    name: str | None
    sign: int
    top: list[tuple[str, float]] = field(default_factory=list)


def label_directions(R: torch.Tensor, attributes: Sequence[str], dominance: float = 1.5, top: int = 2,
                     min_response: float = 0.0) -> list[DirectionLabel]:
    """Label each row of R [K, A] (signed responses, attributes on comparable scales).

    A direction gets a short name when its largest |response| is at least ``dominance`` times the
    second largest and above ``min_response``; repeated names get a numeric suffix (``age-2``).
    """
    if R.ndim != 2 or R.shape[1] != len(attributes):
        raise ValueError(f"R must be [K, {len(attributes)}], got {tuple(R.shape)}")
    out: list[DirectionLabel] = []
    seen: dict[str, int] = {}
    A = R.abs()
    norm = A / A.max(dim=1, keepdim=True).values.clamp_min(1e-12)
    for k in range(R.shape[0]):
        order = torch.argsort(A[k], descending=True).tolist()
        first = order[0]
        second = A[k, order[1]].item() if len(order) > 1 else 0.0
        tops = [(attributes[i], round(float(norm[k, i]), 3)) for i in order[:top]]
        sign = 1 if R[k, first] >= 0 else -1
        name = None
        if A[k, first].item() > min_response and A[k, first].item() >= dominance * second:
            base = SHORT_NAMES.get(attributes[first], attributes[first])
            seen[base] = seen.get(base, 0) + 1
            name = base if seen[base] == 1 else f"{base}-{seen[base]}"
        out.append(DirectionLabel(k, name, sign, tops))
    return out
