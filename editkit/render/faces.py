"""One entry point for rendering edited faces into their photo, by render mode."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError
from .paste import paste_back, paste_mask
from .transfer import TransferSettings, native_crop, native_size, transfer_back

if TYPE_CHECKING:
    from inversion.align import AlignedFace

RENDER_MODES = ("transfer", "generated")


def check_render_mode(mode: str) -> str:
    if mode not in RENDER_MODES:
        raise UsageError(f"unknown render mode '{mode}' (choose from {', '.join(RENDER_MODES)})")
    return mode


def render_faces(photo: np.ndarray, faces: Sequence[tuple[AlignedFace, np.ndarray, np.ndarray]],
                 mode: str = "transfer", settings: TransferSettings | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(face, reconstruction, edited)`` generator crops -> (the photo with the edits, the photo-size mask).

    ``transfer``: only the change between reconstruction and edit, on the photo's own pixels (the mask
    is where the change landed); ``generated``: the edited generator crops pasted back (the mask is
    the paste-back region).
    """
    check_render_mode(mode)
    if mode == "transfer":
        return transfer_back(photo, faces, settings)
    image = paste_back(photo, [(f, edited) for f, _, edited in faces])
    return image, paste_mask(np.shape(photo), [f for f, _, _ in faces])


def face_crops(image: np.ndarray, faces: Sequence[AlignedFace], max_size: int | None = 512) -> list[np.ndarray]:
    """Each face's aligned crop cut from ``image`` at its own resolution (capped at ``max_size``)."""
    out = []
    for f in faces:
        n = native_size(f)
        out.append(native_crop(image, f, min(n, max_size) if max_size else n))
    return out
