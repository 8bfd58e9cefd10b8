"""Rendering: everything between an edited W+ code and the files people look at.

* :mod:`.transfer`: the ``transfer`` render mode (default): only the change between the
  reconstruction and the edit is carried onto the photo's own pixels, at the face's own resolution.
* :mod:`.paste`: the ``generated`` render mode: the generated face pasted back with a feathered mask.
* :mod:`.images`: tensor -> uint8, grids, GIF/MP4 writers (atomic).

Faces are duck-typed (anything with the attributes of ``inversion.align.AlignedFace``), so this
package imports neither ``inversion`` nor ``navigator`` and both may use its image writers.
"""
from __future__ import annotations

import importlib
from typing import Any

from .images import VIDEO_SUFFIXES, RenderError, bounce, make_grid, save_animation, save_gif, save_mp4, side_by_side, to_uint8

_LAZY = {  # cv2-heavy modules load on first use (the CLI's --help stays light)
    "face_mask": ".paste", "paste_back": ".paste", "paste_mask": ".paste", "face_roi": ".paste",
    "crop_to_photo": ".paste", "face_scale": ".paste",
    "TransferSettings": ".transfer", "transfer_back": ".transfer", "transfer_face": ".transfer",
    "native_crop": ".transfer", "native_size": ".transfer", "FLOW_METHODS": ".transfer",
    "render_faces": ".faces", "face_crops": ".faces", "check_render_mode": ".faces", "RENDER_MODES": ".faces",
}

__all__ = ["VIDEO_SUFFIXES", "RenderError", "bounce", "make_grid", "save_animation", "save_gif", "save_mp4",
           "side_by_side", "to_uint8", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'editkit.render' has no attribute {name!r}")
